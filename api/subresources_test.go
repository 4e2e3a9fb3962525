package api_test

import (
	"context"
	"net/http"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto/prototest"
)

func createDeployment(t *testing.T, s *apitest.Server, name string) *appsv1.Deployment {
	t.Helper()
	d := prototest.Sample(kindFor(t, "apps", "deployments"), "default", name).(*appsv1.Deployment)
	out, err := s.Client.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStatusSubresource(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	deploys := s.Client.AppsV1().Deployments("default")
	d := createDeployment(t, s, "web")
	if d.Generation != 1 {
		t.Fatalf("generation %d after create, want 1", d.Generation)
	}

	// Status is ignored on the main resource, and metadata-only changes
	// keep the generation.
	d.Status.Replicas = 5
	d.Labels["tier"] = "front"
	d, err := deploys.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 0 || d.Generation != 1 || d.Labels["tier"] != "front" {
		t.Fatalf("main update: status.replicas %d generation %d labels %v", d.Status.Replicas, d.Generation, d.Labels)
	}

	// Spec is ignored on /status.
	d.Spec.Replicas = ptrInt32(9)
	d.Status.Replicas = 2
	d.Status.ObservedGeneration = 1
	d, err = deploys.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 || d.Status.Replicas != 2 || d.Generation != 1 {
		t.Fatalf("status update: spec.replicas %d status.replicas %d generation %d", *d.Spec.Replicas, d.Status.Replicas, d.Generation)
	}

	// A spec change bumps the generation.
	d.Spec.Replicas = ptrInt32(3)
	d, err = deploys.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 || d.Status.Replicas != 2 {
		t.Fatalf("spec update: generation %d status.replicas %d", d.Generation, d.Status.Replicas)
	}

	// PATCH and GET on /status.
	path := "/apis/apps/v1/namespaces/default/deployments/web/status"
	call{method: "PATCH", path: path, ctype: "application/merge-patch+json", body: `{"spec":{"replicas":7},"status":{"readyReplicas":1}}`}.do(t, s).want(t, http.StatusOK)
	var got appsv1.Deployment
	call{method: "GET", path: path}.do(t, s).want(t, http.StatusOK).into(t, &got)
	if got.Status.ReadyReplicas != 1 || *got.Spec.Replicas != 3 || got.Generation != 2 {
		t.Fatalf("after status patch: ready %d replicas %d generation %d", got.Status.ReadyReplicas, *got.Spec.Replicas, got.Generation)
	}
	call{method: "DELETE", path: path}.do(t, s).want(t, http.StatusMethodNotAllowed)
}

func ptrInt32(n int32) *int32 { return &n }

func TestNamespaceStatusAndFinalize(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	nss := s.Client.CoreV1().Namespaces()
	s.CreateNamespace(t, "team")
	ns, err := nss.Get(ctx, "team", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes || ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("new namespace: %+v", ns)
	}
	// A plain update may not drop the finalizer.
	ns.Spec.Finalizers = nil
	ns.Labels = map[string]string{"x": "y"}
	if ns, err = nss.Update(ctx, ns, metav1.UpdateOptions{}); err != nil || len(ns.Spec.Finalizers) != 1 {
		t.Fatalf("update: %v, finalizers %v", err, ns.Spec.Finalizers)
	}
	ns.Status.Conditions = []corev1.NamespaceCondition{{Type: "NamespaceContentRemaining", Status: corev1.ConditionTrue}}
	if ns, err = nss.UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil || len(ns.Status.Conditions) != 1 {
		t.Fatalf("status update: %v %+v", err, ns.Status)
	}
	if err := nss.Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Client.CoreV1().ConfigMaps("team").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in a terminating namespace: %v, want Forbidden", err)
	}
	ns, _ = nss.Get(ctx, "team", metav1.GetOptions{})
	ns.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if _, err := nss.Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("finalized namespace: %v, want NotFound", err)
	}
}

func TestScaleSubresource(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	deploys := s.Client.AppsV1().Deployments("default")
	createDeployment(t, s, "web")

	sc, err := deploys.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Replicas != 2 || sc.Status.Selector != "app=sample" || sc.Name != "web" {
		t.Fatalf("scale %+v", sc)
	}
	sc.Spec.Replicas = 4
	if sc, err = deploys.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil || sc.Spec.Replicas != 4 {
		t.Fatalf("update scale: %v %+v", err, sc)
	}
	if _, err := deploys.UpdateScale(ctx, "web", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", ResourceVersion: "1"}, Spec: autoscalingv1.ScaleSpec{Replicas: 1}}, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale scale: %v, want Conflict", err)
	}
	patches := []struct {
		pt    types.PatchType
		patch string
		want  int32
	}{
		{types.MergePatchType, `{"spec":{"replicas":5}}`, 5},
		{types.StrategicMergePatchType, `{"spec":{"replicas":6}}`, 6},
		{types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":7}]`, 7},
	}
	for _, p := range patches {
		d, err := deploys.Patch(ctx, "web", p.pt, []byte(p.patch), metav1.PatchOptions{}, "scale")
		if err != nil {
			t.Fatalf("%s scale patch: %v", p.pt, err)
		}
		_ = d
		got, _ := deploys.Get(ctx, "web", metav1.GetOptions{})
		if *got.Spec.Replicas != p.want {
			t.Fatalf("%s: replicas %d, want %d", p.pt, *got.Spec.Replicas, p.want)
		}
	}
	got, _ := deploys.Get(ctx, "web", metav1.GetOptions{})
	if got.Generation != 5 {
		t.Fatalf("generation %d after four scales, want 5", got.Generation)
	}
	st := call{method: "PUT", path: "/apis/apps/v1/namespaces/default/deployments/web/scale",
		body: `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web"},"spec":{"replicas":-1}}`}.do(t, s).want(t, http.StatusUnprocessableEntity).status(t)
	contains(t, st.Message, "spec.replicas")

	rs := prototest.Sample(kindFor(t, "apps", "replicasets"), "default", "rs").(*appsv1.ReplicaSet)
	if _, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Client.AppsV1().ReplicaSets("default").GetScale(ctx, "rs", metav1.GetOptions{}); err != nil || sc.Spec.Replicas != 2 {
		t.Fatalf("replicaset scale: %v %+v", err, sc)
	}
	call{method: "GET", path: "/apis/apps/v1/namespaces/default/daemonsets/x/scale"}.do(t, s).want(t, http.StatusNotFound)
	call{method: "GET", path: "/apis/apps/v1/namespaces/default/deployments/nope/scale"}.do(t, s).want(t, http.StatusNotFound)
}

func TestBinding(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	pod := prototest.Sample(kindFor(t, "", "pods"), "default", "p").(*corev1.Pod)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	if err := pods.Bind(ctx, binding, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run bind: %v", err)
	}
	if got, _ := pods.Get(ctx, "p", metav1.GetOptions{}); got.Spec.NodeName != "" || len(got.Status.Conditions) != 0 {
		t.Fatalf("dry-run bind changed the pod: %q %v", got.Spec.NodeName, got.Status.Conditions)
	}
	if err := pods.Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	got, _ := pods.Get(ctx, "p", metav1.GetOptions{})
	if got.Spec.NodeName != "node-1" || len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != corev1.PodScheduled {
		t.Fatalf("bound pod: node %q conditions %v", got.Spec.NodeName, got.Status.Conditions)
	}
	if err := pods.Bind(ctx, binding, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: %v, want Conflict", err)
	}
	call{method: "POST", path: "/api/v1/namespaces/default/pods/p/binding", body: `{"target":{}}`}.do(t, s).want(t, http.StatusBadRequest)
}
