package proto

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is what the store keeps: a Kubernetes API object that also knows its
// own protobuf encoding (every k8s.io/api type implements both halves).
type Object interface {
	runtime.Object
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Kind describes one resource that skiff serves.
type Kind struct {
	// GVK is the group, version and kind, e.g. apps/v1 Deployment.
	GVK schema.GroupVersionKind
	// Resource is the lower-case plural used in URLs, e.g. "deployments".
	Resource string
	// Singular is the lower-case singular name, e.g. "deployment".
	Singular string
	// ShortNames are the kubectl abbreviations, e.g. "deploy".
	ShortNames []string
	// Namespaced is true when objects live in a namespace.
	Namespaced bool
	// HasStatus is true when the kind has a status subresource.
	HasStatus bool
	// HasScale is true when the kind has a scale subresource.
	HasScale bool
	// Categories groups kinds for `kubectl get all`.
	Categories []string
	// New returns an empty object of this kind.
	New func() Object
	// NewList returns an empty list of this kind.
	NewList func() runtime.Object
}

// GroupVersionResource returns the resource's GVR.
func (k *Kind) GroupVersionResource() schema.GroupVersionResource {
	return k.GVK.GroupVersion().WithResource(k.Resource)
}

// APIVersion returns "v1" or "apps/v1".
func (k *Kind) APIVersion() string { return k.GVK.GroupVersion().String() }

var all = []string{"all"}

// kinds is the fixed table of served kinds; it is never mutated.
var kinds = []*Kind{
	{GVK: corev1.SchemeGroupVersion.WithKind("Namespace"), Resource: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
		HasStatus: true, New: func() Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Node"), Resource: "nodes", Singular: "node", ShortNames: []string{"no"},
		HasStatus: true, New: func() Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Pod"), Resource: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true,
		HasStatus: true, Categories: all, New: func() Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Service"), Resource: "services", Singular: "service", ShortNames: []string{"svc"}, Namespaced: true,
		HasStatus: true, Categories: all, New: func() Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Endpoints"), Resource: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"}, Namespaced: true,
		//lint:ignore SA1019 skiff serves core/v1 Endpoints, which the endpoints controller and DNS use
		New: func() Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Resource: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true,
		New: func() Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Secret"), Resource: "secrets", Singular: "secret", Namespaced: true,
		New: func() Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Event"), Resource: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
		New: func() Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Resource: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, Namespaced: true,
		HasStatus: true, HasScale: true, Categories: all, New: func() Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), Resource: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"}, Namespaced: true,
		HasStatus: true, HasScale: true, Categories: all, New: func() Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Resource: "daemonsets", Singular: "daemonset", ShortNames: []string{"ds"}, Namespaced: true,
		HasStatus: true, Categories: all, New: func() Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("ControllerRevision"), Resource: "controllerrevisions", Singular: "controllerrevision", Namespaced: true,
		New: func() Object { return &appsv1.ControllerRevision{} }, NewList: func() runtime.Object { return &appsv1.ControllerRevisionList{} }},
}

// Lookup tables built once from kinds; read-only afterwards.
var (
	byResource = map[string]*Kind{}
	byGVK      = map[schema.GroupVersionKind]*Kind{}
	byType     = map[reflect.Type]*Kind{}
)

func init() {
	for _, k := range kinds {
		byResource[k.GVK.Group+"/"+k.Resource] = k
		byGVK[k.GVK] = k
		byType[reflect.TypeOf(k.New())] = k
	}
}

// Kinds returns every served kind in a stable order. Callers must not modify
// the returned kinds.
func Kinds() []*Kind { return kinds }

// KindForResource finds a kind by API group ("" for core) and plural.
func KindForResource(group, resource string) (*Kind, bool) {
	k, ok := byResource[group+"/"+resource]
	return k, ok
}

// KindFor finds a kind by group, version and kind.
func KindFor(gvk schema.GroupVersionKind) (*Kind, bool) {
	k, ok := byGVK[gvk]
	return k, ok
}

// KindOf returns the kind of a typed object.
func KindOf(obj runtime.Object) (*Kind, error) {
	if k, ok := byType[reflect.TypeOf(obj)]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("proto: %T is not a served kind", obj)
}

// GroupVersions returns the served group versions, core first.
func GroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	for _, k := range kinds {
		gv := k.GVK.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Group == "" && out[j].Group != "" })
	return out
}

// KindsIn returns the kinds served in one group version.
func KindsIn(gv schema.GroupVersion) []*Kind {
	var out []*Kind
	for _, k := range kinds {
		if k.GVK.GroupVersion() == gv {
			out = append(out, k)
		}
	}
	return out
}

// Key is the store key of an object: "namespace/name", or "name" for
// cluster-scoped kinds.
func Key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// SplitKey is the inverse of Key.
func SplitKey(key string) (namespace, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}
