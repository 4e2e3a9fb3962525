// Package prototest builds valid sample objects of every served kind for the
// tests of proto, fsm and api, so each test suite covers proto.Kinds()
// without its own fixture table.
package prototest

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proto"
)

// Labels are the labels every sample carries (and that workload selectors
// select).
var Labels = map[string]string{"app": "sample"}

// Sample returns a valid object of kind named name; namespace is ignored for
// cluster-scoped kinds. The object carries apiVersion and kind.
func Sample(kind *proto.Kind, namespace, name string) proto.Object {
	if !kind.Namespaced {
		namespace = ""
	}
	om := metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: copyLabels()}
	var obj proto.Object
	switch kind.Resource {
	case "namespaces":
		obj = &corev1.Namespace{ObjectMeta: om}
	case "nodes":
		obj = sampleNode(om)
	case "pods":
		obj = &corev1.Pod{ObjectMeta: om, Spec: PodSpec()}
	case "services":
		obj = &corev1.Service{ObjectMeta: om, Spec: corev1.ServiceSpec{
			Selector: copyLabels(),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		}}
	case "endpoints":
		//lint:ignore SA1019 skiff serves core/v1 Endpoints, which the endpoints controller and DNS use
		obj = &corev1.Endpoints{ObjectMeta: om, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		}}}
	case "configmaps":
		obj = &corev1.ConfigMap{ObjectMeta: om, Data: map[string]string{"key": "value"}}
	case "secrets":
		obj = &corev1.Secret{ObjectMeta: om, Data: map[string][]byte{"password": []byte("s3cret")}}
	case "events":
		obj = sampleEvent(om)
	case "deployments":
		obj = &appsv1.Deployment{ObjectMeta: om, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2), Selector: Selector(), Template: Template()}}
	case "replicasets":
		obj = &appsv1.ReplicaSet{ObjectMeta: om, Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2), Selector: Selector(), Template: Template()}}
	case "daemonsets":
		obj = &appsv1.DaemonSet{ObjectMeta: om, Spec: appsv1.DaemonSetSpec{Selector: Selector(), Template: Template()}}
	case "controllerrevisions":
		obj = &appsv1.ControllerRevision{ObjectMeta: om, Revision: 1,
			Data: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`)}}
	default:
		panic(fmt.Sprintf("prototest: no sample for %s", kind.Resource))
	}
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	return obj
}

// Name returns the name of obj.
func Name(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetName()
}

func copyLabels() map[string]string {
	out := make(map[string]string, len(Labels))
	for k, v := range Labels {
		out[k] = v
	}
	return out
}

// Selector returns a label selector matching Labels.
func Selector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: copyLabels()}
}

// Template returns a pod template labelled with Labels.
func Template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: copyLabels()}, Spec: PodSpec()}
}

// PodSpec returns a one-container pod spec.
func PodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "busybox:1.36",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}},
	}}}
}

func sampleNode(om metav1.ObjectMeta) *corev1.Node {
	return &corev1.Node{ObjectMeta: om, Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
			NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.37.2-skiff", OSImage: "Debian GNU/Linux 13", KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://2.1.0"},
		}}
}

func sampleEvent(om metav1.ObjectMeta) *corev1.Event {
	return &corev1.Event{ObjectMeta: om,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: om.Namespace, Name: "web-0", APIVersion: "v1"},
		Reason:         "Started", Message: "Started container app", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "skiff-agent"}, Count: 1,
	}
}
