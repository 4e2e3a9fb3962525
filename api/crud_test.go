package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

// typedClient is the method set every client-go typed client shares.
type typedClient[T proto.Object, L runtime.Object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
	List(context.Context, metav1.ListOptions) (L, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// crud erases the type parameters of a typedClient.
type crud interface {
	create(context.Context, proto.Object) (proto.Object, error)
	get(context.Context, string) (proto.Object, error)
	list(context.Context) (runtime.Object, error)
	update(context.Context, proto.Object) (proto.Object, error)
	patch(context.Context, string, types.PatchType, string) (proto.Object, error)
	remove(context.Context, string) error
}

type typed[T proto.Object, L runtime.Object] struct{ c typedClient[T, L] }

func (t typed[T, L]) create(ctx context.Context, o proto.Object) (proto.Object, error) {
	return t.c.Create(ctx, o.(T), metav1.CreateOptions{})
}
func (t typed[T, L]) get(ctx context.Context, n string) (proto.Object, error) {
	return t.c.Get(ctx, n, metav1.GetOptions{})
}
func (t typed[T, L]) list(ctx context.Context) (runtime.Object, error) {
	return t.c.List(ctx, metav1.ListOptions{})
}
func (t typed[T, L]) update(ctx context.Context, o proto.Object) (proto.Object, error) {
	return t.c.Update(ctx, o.(T), metav1.UpdateOptions{})
}
func (t typed[T, L]) patch(ctx context.Context, n string, pt types.PatchType, p string) (proto.Object, error) {
	return t.c.Patch(ctx, n, pt, []byte(p), metav1.PatchOptions{})
}
func (t typed[T, L]) remove(ctx context.Context, n string) error {
	return t.c.Delete(ctx, n, metav1.DeleteOptions{})
}

// typedFor returns the client-go typed client of a kind.
func typedFor(cs kubernetes.Interface, k *proto.Kind, ns string) crud {
	core, apps := cs.CoreV1(), cs.AppsV1()
	return map[string]crud{
		"namespaces": typed[*corev1.Namespace, *corev1.NamespaceList]{core.Namespaces()},
		"nodes":      typed[*corev1.Node, *corev1.NodeList]{core.Nodes()},
		"pods":       typed[*corev1.Pod, *corev1.PodList]{core.Pods(ns)},
		"services":   typed[*corev1.Service, *corev1.ServiceList]{core.Services(ns)},
		//lint:ignore SA1019 skiff serves core/v1 Endpoints, which the endpoints controller and DNS use
		"endpoints":           typed[*corev1.Endpoints, *corev1.EndpointsList]{core.Endpoints(ns)},
		"configmaps":          typed[*corev1.ConfigMap, *corev1.ConfigMapList]{core.ConfigMaps(ns)},
		"secrets":             typed[*corev1.Secret, *corev1.SecretList]{core.Secrets(ns)},
		"events":              typed[*corev1.Event, *corev1.EventList]{core.Events(ns)},
		"deployments":         typed[*appsv1.Deployment, *appsv1.DeploymentList]{apps.Deployments(ns)},
		"replicasets":         typed[*appsv1.ReplicaSet, *appsv1.ReplicaSetList]{apps.ReplicaSets(ns)},
		"daemonsets":          typed[*appsv1.DaemonSet, *appsv1.DaemonSetList]{apps.DaemonSets(ns)},
		"controllerrevisions": typed[*appsv1.ControllerRevision, *appsv1.ControllerRevisionList]{apps.ControllerRevisions(ns)},
	}[k.Resource]
}

func accessor(t testing.TB, obj runtime.Object) metav1.Object {
	t.Helper()
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rv(t testing.TB, obj runtime.Object) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(accessor(t, obj).GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion: %v", err)
	}
	return n
}

// TestCRUDTyped runs create, get, list, update, three kinds of patch and
// delete for every kind through client-go's typed clients, which speak
// protobuf.
func TestCRUDTyped(t *testing.T) {
	s := apitest.New(t)
	s.CreateNamespace(t, "crud")
	ctx := context.Background()
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			c := typedFor(s.Client, k, "crud")
			name := "typed-" + k.Singular
			created, err := c.create(ctx, prototest.Sample(k, "crud", name))
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			m := accessor(t, created)
			if ts := m.GetCreationTimestamp(); m.GetUID() == "" || ts.IsZero() || m.GetResourceVersion() == "" {
				t.Fatalf("create did not set uid, timestamp and resourceVersion: %+v", m)
			}
			got, err := c.get(ctx, name)
			if err != nil || accessor(t, got).GetUID() != m.GetUID() {
				t.Fatalf("get: %v", err)
			}
			list, err := c.list(ctx)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if !listHas(t, list, name) {
				t.Fatalf("list does not hold %s", name)
			}
			checkUpdatesAndPatches(t, ctx, c, got)
			checkDelete(t, ctx, c, k, name)
		})
	}
}

func listHas(t testing.TB, list runtime.Object, name string) bool {
	t.Helper()
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	lm, _ := meta.ListAccessor(list)
	if lm.GetResourceVersion() == "" {
		t.Fatal("list has no resourceVersion")
	}
	for _, it := range items {
		if accessor(t, it).GetName() == name {
			return true
		}
	}
	return false
}

func checkUpdatesAndPatches(t *testing.T, ctx context.Context, c crud, cur proto.Object) {
	name := accessor(t, cur).GetName()
	next := cur.DeepCopyObject().(proto.Object)
	accessor(t, next).SetLabels(map[string]string{"app": "sample", "step": "update"})
	updated, err := c.update(ctx, next)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if rv(t, updated) <= rv(t, cur) || accessor(t, updated).GetLabels()["step"] != "update" {
		t.Fatalf("update: rv %d -> %d, labels %v", rv(t, cur), rv(t, updated), accessor(t, updated).GetLabels())
	}
	if _, err := c.update(ctx, next); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want a conflict", err)
	}
	patches := []struct {
		pt    types.PatchType
		patch string
		label string
	}{
		{types.MergePatchType, `{"metadata":{"labels":{"merge":"yes"}}}`, "merge"},
		{types.StrategicMergePatchType, `{"metadata":{"labels":{"strategic":"yes"}}}`, "strategic"},
		{types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/json","value":"yes"}]`, "json"},
	}
	for _, p := range patches {
		got, err := c.patch(ctx, name, p.pt, p.patch)
		if err != nil {
			t.Fatalf("%s patch: %v", p.pt, err)
		}
		if accessor(t, got).GetLabels()[p.label] != "yes" || accessor(t, got).GetLabels()["step"] != "update" {
			t.Fatalf("%s patch: labels %v", p.pt, accessor(t, got).GetLabels())
		}
	}
}

func checkDelete(t *testing.T, ctx context.Context, c crud, k *proto.Kind, name string) {
	if err := c.remove(ctx, name); err != nil {
		t.Fatalf("delete: %v", err)
	}
	got, err := c.get(ctx, name)
	if k.Resource == "namespaces" {
		// The namespace controller finishes the job; until then it is
		// Terminating.
		if err != nil || got.(*corev1.Namespace).Status.Phase != corev1.NamespaceTerminating || accessor(t, got).GetDeletionTimestamp() == nil {
			t.Fatalf("deleted namespace: %v %+v", err, got)
		}
		return
	}
	if !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
	if err := c.remove(ctx, name); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: %v, want NotFound", err)
	}
}

// TestCRUDJSON does the same with raw JSON over HTTP.
func TestCRUDJSON(t *testing.T) {
	s := apitest.New(t)
	s.CreateNamespace(t, "crud")
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			name := "json-" + k.Singular
			obj := prototest.Sample(k, "crud", name)
			coll, path := collectionPath(k, "crud"), objectPath(k, "crud", name)
			var created map[string]interface{}
			call{method: "POST", path: coll, body: mustJSON(t, obj)}.do(t, s).want(t, http.StatusCreated).into(t, &created)
			if created["kind"] != k.GVK.Kind || created["apiVersion"] != k.APIVersion() {
				t.Fatalf("created object says %v %v", created["apiVersion"], created["kind"])
			}
			call{method: "POST", path: coll, body: mustJSON(t, obj)}.do(t, s).want(t, http.StatusConflict)

			var got map[string]interface{}
			call{method: "GET", path: path}.do(t, s).want(t, http.StatusOK).into(t, &got)
			var list struct {
				Kind     string                   `json:"kind"`
				Metadata metav1.ListMeta          `json:"metadata"`
				Items    []map[string]interface{} `json:"items"`
			}
			call{method: "GET", path: coll}.do(t, s).want(t, http.StatusOK).into(t, &list)
			if list.Kind != k.GVK.Kind+"List" || list.Metadata.ResourceVersion == "" || len(list.Items) == 0 {
				t.Fatalf("list: kind %s rv %q items %d", list.Kind, list.Metadata.ResourceVersion, len(list.Items))
			}

			meta := got["metadata"].(map[string]interface{})
			meta["labels"] = map[string]interface{}{"app": "sample", "step": "put"}
			call{method: "PUT", path: path, body: mustJSON(t, got)}.do(t, s).want(t, http.StatusOK)
			call{method: "PUT", path: path, body: mustJSON(t, got)}.do(t, s).want(t, http.StatusConflict)
			delete(meta, "resourceVersion") // unconditional update
			call{method: "PUT", path: path, body: mustJSON(t, got)}.do(t, s).want(t, http.StatusOK)

			patches := map[string]string{
				"application/merge-patch+json":           `{"metadata":{"labels":{"merge":"yes"}}}`,
				"application/strategic-merge-patch+json": `{"metadata":{"labels":{"strategic":"yes"}}}`,
				"application/json-patch+json":            `[{"op":"add","path":"/metadata/labels/json","value":"yes"}]`,
			}
			for ct, p := range patches {
				call{method: "PATCH", path: path, ctype: ct, body: p}.do(t, s).want(t, http.StatusOK)
			}
			var patched struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			call{method: "GET", path: path, accept: "application/yaml"}.do(t, s).want(t, http.StatusOK)
			call{method: "GET", path: path}.do(t, s).into(t, &patched)
			for _, l := range []string{"merge", "strategic", "json"} {
				if patched.Metadata.Labels[l] != "yes" || patched.Metadata.Labels["step"] != "put" {
					t.Fatalf("labels after patches: %v", patched.Metadata.Labels)
				}
			}
			call{method: "DELETE", path: path}.do(t, s).want(t, http.StatusOK)
			if k.Resource != "namespaces" {
				call{method: "GET", path: path}.do(t, s).want(t, http.StatusNotFound)
			}
		})
	}
}
