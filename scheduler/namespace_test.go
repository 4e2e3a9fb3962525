package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBootstrapNamespaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		e.eventually("namespace "+name, func() (bool, error) {
			_, err := e.c.CoreV1().Namespaces().Get(e.ctx, name, metav1.GetOptions{})
			return err == nil, err
		})
	}
	// A deleted system namespace comes back (after the namespace
	// controller has finished deleting it).
	old, err := e.c.CoreV1().Namespaces().Get(e.ctx, "kube-node-lease", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.CoreV1().Namespaces().Delete(e.ctx, "kube-node-lease", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("kube-node-lease recreated", func() (bool, error) {
		ns, err := e.c.CoreV1().Namespaces().Get(e.ctx, "kube-node-lease", metav1.GetOptions{})
		return err == nil && ns.UID != old.UID && ns.DeletionTimestamp == nil, nil
	})
}

// TestNamespaceDeletion deletes a namespace with a Deployment, its pods
// (bound, so deleted gracefully) and other objects: they go first, then
// the namespace itself.
func TestNamespaceDeletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	e.srv.CreateNamespace(t, "team")
	e.deployment("team", "app", 2, "nginx:1")
	e.eventually("rollout", e.rolledOut("team", "app", 2))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"}}
	if _, err := e.c.CoreV1().ConfigMaps("team").Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, StringData: map[string]string{"k": "v"}}
	if _, err := e.c.CoreV1().Secrets("team").Create(e.ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.CoreV1().Namespaces().Delete(e.ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("namespace gone", gone(func() error {
		_, err := e.c.CoreV1().Namespaces().Get(e.ctx, "team", metav1.GetOptions{})
		return err
	}))
	// The namespace is finalized only once it is empty.
	pods, err := e.pods("team", "")
	if err != nil || len(pods) != 0 {
		t.Fatalf("pods left in deleted namespace: %d (%v)", len(pods), err)
	}
	rss, err := e.replicaSets("team", "")
	if err != nil || len(rss) != 0 {
		t.Fatalf("replicasets left in deleted namespace: %d (%v)", len(rss), err)
	}
}
