package scheduler

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"
)

var deploymentGK = schema.GroupKind{Group: "apps", Kind: "Deployment"}

func TestDeploymentCreatesReplicaSetAndPods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	d := e.deployment("default", "web", 3, "nginx:1")
	e.eventually("rollout", e.rolledOut("default", "web", 3))

	rss, err := e.replicaSets("default", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 {
		t.Fatalf("got %d replicasets, want 1", len(rss))
	}
	rs := rss[0]
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if want := "web-" + hash; hash == "" || rs.Name != want {
		t.Fatalf("replicaset name %q, want %q", rs.Name, want)
	}
	if want := computeHash(&d.Spec.Template, nil); hash != want {
		t.Fatalf("pod-template-hash %q, want %q", hash, want)
	}
	checkControllerRef(t, rs.OwnerReferences, "Deployment", d.Name, d.UID)
	if got := rs.Annotations[revisionAnnotation]; got != "1" {
		t.Fatalf("replicaset revision %q, want 1", got)
	}
	pods, err := e.activePods("default", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 3 {
		t.Fatalf("got %d pods, want 3", len(pods))
	}
	for _, p := range pods {
		if p.Spec.NodeName != "n1" {
			t.Fatalf("pod %s on node %q, want n1", p.Name, p.Spec.NodeName)
		}
		if !strings.HasPrefix(p.Name, rs.Name+"-") || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Fatalf("pod %s (labels %v) does not belong to %s", p.Name, p.Labels, rs.Name)
		}
		checkControllerRef(t, p.OwnerReferences, "ReplicaSet", rs.Name, rs.UID)
	}
	got, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := deploymentCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonNewRSAvailable {
		t.Fatalf("Progressing condition %+v, want reason %s", c, reasonNewRSAvailable)
	}
	if c := deploymentCondition(got.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("Available condition %+v, want True", c)
	}
	if got.Annotations[revisionAnnotation] != "1" {
		t.Fatalf("deployment revision %q, want 1", got.Annotations[revisionAnnotation])
	}
	msg, done, err := kubectlRolloutStatus(got)
	if err != nil || !done {
		t.Fatalf("kubectl rollout status: %q done=%v err=%v", msg, done, err)
	}
	e.eventually("ScalingReplicaSet event", func() (bool, error) {
		msgs, err := e.events("default", "web", "ScalingReplicaSet")
		want := fmt.Sprintf("Scaled up replica set %s from 0 to 3", rs.Name)
		return len(msgs) == 1 && msgs[0] == want, err
	})
}

func checkControllerRef(t *testing.T, refs []metav1.OwnerReference, kind, name string, uid interface{}) {
	t.Helper()
	if len(refs) != 1 {
		t.Fatalf("got %d owner references, want 1: %+v", len(refs), refs)
	}
	r := refs[0]
	if r.Kind != kind || r.Name != name || fmt.Sprint(r.UID) != fmt.Sprint(uid) || r.Controller == nil || !*r.Controller ||
		r.BlockOwnerDeletion == nil || !*r.BlockOwnerDeletion {
		t.Fatalf("owner reference %+v, want controller %s %s %v blocking", r, kind, name, uid)
	}
}

func kubectlRolloutStatus(d *appsv1.Deployment) (string, bool, error) {
	v, err := polymorphichelpers.StatusViewerFor(deploymentGK)
	if err != nil {
		return "", false, err
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		return "", false, err
	}
	return v.Status(&unstructured.Unstructured{Object: obj}, 0)
}

func TestDeploymentScale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	e.deployment("default", "scaled", 3, "nginx:1")
	e.eventually("rollout of 3", e.rolledOut("default", "scaled", 3))
	first, err := e.replicaSets("default", "app=scaled")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int32{5, 1} {
		sc, err := e.c.AppsV1().Deployments("default").GetScale(e.ctx, "scaled", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc.Spec.Replicas = n
		if _, err := e.c.AppsV1().Deployments("default").UpdateScale(e.ctx, "scaled", sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.eventually(fmt.Sprintf("rollout of %d", n), e.rolledOut("default", "scaled", n))
		e.eventually(fmt.Sprintf("%d active pods", n), func() (bool, error) {
			pods, err := e.activePods("default", "app=scaled")
			return len(pods) == int(n), err
		})
		rss, err := e.replicaSets("default", "app=scaled")
		if err != nil {
			t.Fatal(err)
		}
		if len(rss) != 1 || rss[0].UID != first[0].UID || *rss[0].Spec.Replicas != n {
			t.Fatalf("after scaling to %d: %d replicasets (want the same one resized)", n, len(rss))
		}
		if got := rss[0].Annotations[desiredReplicasAnnotation]; got != fmt.Sprint(n) {
			t.Fatalf("desired-replicas annotation %q, want %d", got, n)
		}
	}
}

// watchActivePods tracks the most pods of a selector that were active at
// once, from the store's ordered event stream.
func watchActivePods(t *testing.T, e *env, selector string) func() int {
	w, err := e.c.CoreV1().Pods("default").Watch(e.ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	active, peak := map[string]bool{}, 0
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			active[p.Name] = ev.Type != watch.Deleted && isPodActive(p)
			n := 0
			for _, a := range active {
				if a {
					n++
				}
			}
			peak = max(peak, n)
			mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// TestDeploymentRollingUpdateAndRollback rolls a new image out, checks
// surge limits, revisions and history, then rolls back with kubectl's own
// rollback code, which must reuse the first ReplicaSet.
func TestDeploymentRollingUpdateAndRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "8", "16Gi", nil)
	e.deployment("default", "roll", 4, "nginx:1", func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{"kubernetes.io/change-cause": "v1"}
	})
	e.eventually("first rollout", e.rolledOut("default", "roll", 4))
	peak := watchActivePods(t, e, "app=roll")
	v1, _ := e.replicaSets("default", "app=roll")

	d, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "roll", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Annotations["kubernetes.io/change-cause"] = "v2"
	d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	if _, err := e.c.AppsV1().Deployments("default").Update(e.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("second rollout", e.rolledOut("default", "roll", 4))
	e.eventually("only new pods", onlyImage(e, "app=roll", "nginx:2", 4))
	if p := peak(); p > 5 {
		t.Fatalf("%d pods ran at once, want at most replicas+maxSurge = 5", p)
	}
	old, cur := splitByUID(t, e, "app=roll", v1[0].UID)
	checkRS(t, old, 0, "1", "v1")
	checkRS(t, cur, 4, "2", "v2")

	history := kubectlHistory(t, e, "roll")
	for _, want := range []string{`(?m)^1\s+v1$`, `(?m)^2\s+v2$`} {
		if !regexp.MustCompile(want).MatchString(history) {
			t.Fatalf("kubectl rollout history:\n%s\nlacks %q", history, want)
		}
	}

	rb, err := polymorphichelpers.RollbackerFor(deploymentGK, e.c)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = e.c.AppsV1().Deployments("default").Get(e.ctx, "roll", metav1.GetOptions{})
	if _, err := rb.Rollback(d, nil, 0, cmdutil.DryRunNone); err != nil {
		t.Fatalf("kubectl rollout undo: %v", err)
	}
	e.eventually("rollback", e.rolledOut("default", "roll", 4))
	e.eventually("only old pods", onlyImage(e, "app=roll", "nginx:1", 4))
	old, cur = splitByUID(t, e, "app=roll", v1[0].UID)
	checkRS(t, old, 4, "3", "v1")
	checkRS(t, cur, 0, "2", "v2")
	if got := old.Annotations[revisionHistoryAnnotation]; got != "1" {
		t.Fatalf("revision-history %q, want 1", got)
	}
	d, _ = e.c.AppsV1().Deployments("default").Get(e.ctx, "roll", metav1.GetOptions{})
	if got := d.Annotations[revisionAnnotation]; got != "3" {
		t.Fatalf("deployment revision %q, want 3", got)
	}
}

func onlyImage(e *env, selector, image string, n int) func() (bool, error) {
	return func() (bool, error) {
		pods, err := e.activePods("default", selector)
		if err != nil || len(pods) != n {
			return false, err
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return false, nil
			}
		}
		return true, nil
	}
}

// splitByUID returns the ReplicaSet with uid and the other one.
func splitByUID(t *testing.T, e *env, selector string, uid interface{}) (appsv1.ReplicaSet, appsv1.ReplicaSet) {
	t.Helper()
	rss, err := e.replicaSets("default", selector)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 2 {
		t.Fatalf("got %d replicasets, want 2", len(rss))
	}
	if fmt.Sprint(rss[0].UID) == fmt.Sprint(uid) {
		return rss[0], rss[1]
	}
	return rss[1], rss[0]
}

func checkRS(t *testing.T, rs appsv1.ReplicaSet, replicas int32, rev, cause string) {
	t.Helper()
	if *rs.Spec.Replicas != replicas || rs.Annotations[revisionAnnotation] != rev || rs.Annotations["kubernetes.io/change-cause"] != cause {
		t.Fatalf("replicaset %s: replicas %d revision %q change-cause %q, want %d %q %q", rs.Name, *rs.Spec.Replicas,
			rs.Annotations[revisionAnnotation], rs.Annotations["kubernetes.io/change-cause"], replicas, rev, cause)
	}
}

func kubectlHistory(t *testing.T, e *env, name string) string {
	t.Helper()
	hv, err := polymorphichelpers.HistoryViewerFor(deploymentGK, e.c)
	if err != nil {
		t.Fatal(err)
	}
	out, err := hv.ViewHistory("default", name, 0)
	if err != nil {
		t.Fatalf("kubectl rollout history: %v", err)
	}
	return out
}

func TestDeploymentRecreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "4", "8Gi", nil)
	e.deployment("default", "rec", 2, "nginx:1", func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	})
	e.eventually("first rollout", e.rolledOut("default", "rec", 2))
	peak := watchActivePods(t, e, "app=rec")
	d, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "rec", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	if _, err := e.c.AppsV1().Deployments("default").Update(e.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("second rollout", e.rolledOut("default", "rec", 2))
	e.eventually("only new pods", onlyImage(e, "app=rec", "nginx:2", 2))
	if p := peak(); p > 2 {
		t.Fatalf("%d pods ran at once, want at most 2 with Recreate", p)
	}
}

// TestDeploymentPausedAndHistoryLimit pauses a Deployment, changes and
// scales it while paused (only the size follows), resumes it, and checks
// that old ReplicaSets beyond revisionHistoryLimit are deleted.
func TestDeploymentPausedAndHistoryLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "8", "16Gi", nil)
	e.deployment("default", "paused", 2, "nginx:1", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptr.To[int32](1) })
	e.eventually("first rollout", e.rolledOut("default", "paused", 2))
	update := func(f func(*appsv1.Deployment)) *appsv1.Deployment {
		t.Helper()
		d, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "paused", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f(d)
		out, err := e.c.AppsV1().Deployments("default").Update(e.ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	d := update(func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Replicas = ptr.To[int32](3)
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	})
	e.eventually("paused status", func() (bool, error) {
		got, err := e.c.AppsV1().Deployments("default").Get(e.ctx, "paused", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := deploymentCondition(got.Status, appsv1.DeploymentProgressing)
		return got.Status.ObservedGeneration == d.Generation && got.Status.AvailableReplicas == 3 &&
			c != nil && c.Reason == reasonPaused && c.Status == corev1.ConditionUnknown, nil
	})
	if rss, err := e.replicaSets("default", "app=paused"); err != nil || len(rss) != 1 || *rss[0].Spec.Replicas != 3 {
		t.Fatalf("while paused: %d replicasets (%v), want the first one scaled to 3", len(rss), err)
	}
	e.eventually("only old pods", onlyImage(e, "app=paused", "nginx:1", 3))

	update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	e.eventually("rollout after resume", e.rolledOut("default", "paused", 3))
	e.eventually("only new pods", onlyImage(e, "app=paused", "nginx:2", 3))
	update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:3" })
	e.eventually("third rollout", e.rolledOut("default", "paused", 3))
	e.eventually("history trimmed to one old replicaset", func() (bool, error) {
		rss, err := e.replicaSets("default", "app=paused")
		if err != nil || len(rss) != 2 {
			return false, err
		}
		for _, rs := range rss {
			if rs.Annotations[revisionAnnotation] == "1" {
				return false, nil
			}
		}
		return true, nil
	})
}
