package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDeleteDeploymentCascades deletes a Deployment with each cascading
// propagation policy: its ReplicaSet and pods must go, and with Foreground
// the Deployment must outlive them.
func TestDeleteDeploymentCascades(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground} {
		t.Run(string(policy), func(t *testing.T) {
			name := "cascade-" + map[metav1.DeletionPropagation]string{"Background": "bg", "Foreground": "fg"}[policy]
			e.deployment("default", name, 2, "nginx:1")
			e.eventually("rollout", e.rolledOut("default", name, 2))
			rss, err := e.replicaSets("default", "app="+name)
			if err != nil || len(rss) != 1 {
				t.Fatalf("replicasets: %d, %v", len(rss), err)
			}
			rs := rss[0]
			if policy == metav1.DeletePropagationForeground {
				watchForegroundOrder(t, e, name, rs.Name)
			}
			err = e.c.AppsV1().Deployments("default").Delete(e.ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(policy)})
			if err != nil {
				t.Fatal(err)
			}
			e.eventually("deployment gone", gone(func() error {
				_, err := e.c.AppsV1().Deployments("default").Get(e.ctx, name, metav1.GetOptions{})
				return err
			}))
			e.eventually("replicaset gone", gone(func() error {
				_, err := e.c.AppsV1().ReplicaSets("default").Get(e.ctx, rs.Name, metav1.GetOptions{})
				return err
			}))
			e.eventually("pods gone", func() (bool, error) {
				pods, err := e.pods("default", "app="+name)
				return len(pods) == 0, err
			})
		})
	}
}

// watchForegroundOrder fails the test if the Deployment disappears while
// its ReplicaSet still exists.
func watchForegroundOrder(t *testing.T, e *env, deployment, rs string) {
	w, err := e.c.AppsV1().Deployments("default").Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + deployment})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	errs := make(chan error, 1)
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != "DELETED" {
				continue
			}
			_, err := e.c.AppsV1().ReplicaSets("default").Get(e.ctx, rs, metav1.GetOptions{})
			if err == nil {
				errs <- fmt.Errorf("deployment %s deleted before its replicaset %s", deployment, rs)
			}
			close(errs)
			return
		}
	}()
	t.Cleanup(func() {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	})
}

// TestOrphanDelete deletes a Deployment with propagationPolicy=Orphan:
// the ReplicaSet stays, without an owner, and keeps its pods.
func TestOrphanDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	e.deployment("default", "orphans", 3, "nginx:1")
	e.eventually("rollout", e.rolledOut("default", "orphans", 3))
	rss, err := e.replicaSets("default", "app=orphans")
	if err != nil || len(rss) != 1 {
		t.Fatalf("replicasets: %d, %v", len(rss), err)
	}
	err = e.c.AppsV1().Deployments("default").Delete(e.ctx, "orphans", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("deployment gone", gone(func() error {
		_, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "orphans", metav1.GetOptions{})
		return err
	}))
	rs, err := e.c.AppsV1().ReplicaSets("default").Get(e.ctx, rss[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("orphaned replicaset: %v", err)
	}
	if len(rs.OwnerReferences) != 0 {
		t.Fatalf("orphaned replicaset still has owners %+v", rs.OwnerReferences)
	}
	pods, err := e.activePods("default", "app=orphans")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 3 {
		t.Fatalf("got %d pods, want the orphaned replicaset's 3", len(pods))
	}
	for _, p := range pods {
		checkControllerRef(t, p.OwnerReferences, "ReplicaSet", rs.Name, rs.UID)
	}
}

// TestGarbageCollectorDeletesDanglingDependents checks dependents whose
// owner is gone by UID: one owned only by a vanished owner is deleted,
// one that also has a live owner only loses the dangling reference.
func TestGarbageCollectorDeletesDanglingDependents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner, err := e.c.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live, err := e.c.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "live"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(cm *corev1.ConfigMap) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
	}
	for name, refs := range map[string][]metav1.OwnerReference{"only": {ref(owner)}, "both": {ref(owner), ref(live)}} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: refs}}
		if _, err := e.c.CoreV1().Secrets("default").Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.c.CoreV1().ConfigMaps("default").Delete(e.ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("secret only gone", gone(func() error {
		_, err := e.c.CoreV1().Secrets("default").Get(e.ctx, "only", metav1.GetOptions{})
		return err
	}))
	e.eventually("dangling reference dropped", func() (bool, error) {
		s, err := e.c.CoreV1().Secrets("default").Get(e.ctx, "both", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(s.OwnerReferences) == 1 && s.OwnerReferences[0].UID == live.UID, nil
	})
}
