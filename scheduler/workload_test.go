package scheduler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// daemonPods returns the live pods of the test DaemonSet by node.
func (e *env) daemonPods() (map[string][]corev1.Pod, error) {
	pods, err := e.activePods("default", "app=agent")
	out := map[string][]corev1.Pod{}
	for _, p := range pods {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
	}
	return out, err
}

func TestDaemonSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "2", "4Gi", nil)
	e.node("n2", "2", "4Gi", nil)
	// n3 is NotReady from the start: a daemon pod started while a node
	// was Ready stays when it turns NotReady.
	if _, err := e.c.CoreV1().Nodes().Create(e.ctx, fakeNode("n3", "2", "4Gi", notReady), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: podTemplate("agent", "agent:1"),
		},
	}
	ds, err := e.c.AppsV1().DaemonSets("default").Create(e.ctx, ds, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	onNodes := func(want ...string) func() (bool, error) {
		return func() (bool, error) {
			byNode, err := e.daemonPods()
			if err != nil || len(byNode) != len(want) {
				return false, err
			}
			for _, n := range want {
				if len(byNode[n]) != 1 {
					return false, nil
				}
			}
			return true, nil
		}
	}
	e.eventually("one pod on each ready node", onNodes("n1", "n2"))
	byNode, _ := e.daemonPods()
	checkControllerRef(t, byNode["n1"][0].OwnerReferences, "DaemonSet", "agent", ds.UID)

	e.node("n4", "2", "4Gi", nil)
	e.eventually("a pod on the new node", onNodes("n1", "n2", "n4"))
	e.eventually("status", daemonSetDone(e, 3))

	ds, _ = e.c.AppsV1().DaemonSets("default").Get(e.ctx, "agent", metav1.GetOptions{})
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2"
	if _, err := e.c.AppsV1().DaemonSets("default").Update(e.ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("rolling update", func() (bool, error) {
		byNode, err := e.daemonPods()
		if err != nil || len(byNode) != 3 {
			return false, err
		}
		for _, pods := range byNode {
			if len(pods) != 1 || pods[0].Spec.Containers[0].Image != "agent:2" {
				return false, nil
			}
		}
		return true, nil
	})
	e.eventually("status after update", daemonSetDone(e, 3))
}

// daemonSetDone is kubectl rollout status for the test DaemonSet.
func daemonSetDone(e *env, n int32) func() (bool, error) {
	return func() (bool, error) {
		ds, err := e.c.AppsV1().DaemonSets("default").Get(e.ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := ds.Status
		return st.ObservedGeneration == ds.Generation && st.DesiredNumberScheduled == n && st.CurrentNumberScheduled == n &&
			st.UpdatedNumberScheduled == n && st.NumberReady == n && st.NumberAvailable == n && st.NumberUnavailable == 0, nil
	}
}

func newReplicaSet(name string, n int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "nginx:1"),
		},
	}
}

// TestReplicaSetReplacesFailedPod fails one pod of a ReplicaSet: a
// replacement is created and the failed pod no longer counts.
func TestReplicaSetReplacesFailedPod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "2", "4Gi", nil)
	if _, err := e.c.AppsV1().ReplicaSets("default").Create(e.ctx, newReplicaSet("rs", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("2 ready pods", readyPods(e, "app=rs", 2))
	pods, _ := e.activePods("default", "app=rs")
	failed := pods[0].DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	if _, err := e.c.CoreV1().Pods("default").UpdateStatus(e.ctx, failed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("replacement", func() (bool, error) {
		active, err := e.activePods("default", "app=rs")
		if err != nil || len(active) != 2 {
			return false, err
		}
		for _, p := range active {
			if p.UID == failed.UID {
				return false, nil
			}
		}
		rs, err := e.c.AppsV1().ReplicaSets("default").Get(e.ctx, "rs", metav1.GetOptions{})
		return err == nil && rs.Status.Replicas == 2 && rs.Status.ReadyReplicas == 2 && rs.Status.FullyLabeledReplicas == 2, err
	})
	e.eventually("a SuccessfulCreate event per pod", func() (bool, error) {
		msgs, err := e.events("default", "rs", "SuccessfulCreate")
		return len(msgs) == 3, err
	})
}

// TestReplicaSetAdoptsAndReleases checks ownership by selector: a matching
// orphan is adopted (and the surplus deleted), a pod relabelled out of the
// selector is released (and replaced).
func TestReplicaSetAdoptsAndReleases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "2", "4Gi", nil)
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "own"}},
		Spec: podTemplate("own", "nginx:1").Spec}
	if _, err := e.c.CoreV1().Pods("default").Create(e.ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.c.AppsV1().ReplicaSets("default").Create(e.ctx, newReplicaSet("own", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("orphan adopted", func() (bool, error) {
		p, err := e.c.CoreV1().Pods("default").Get(e.ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ref := metav1.GetControllerOf(p)
		return ref != nil && ref.UID == rs.UID, nil
	})
	e.eventually("2 ready pods", readyPods(e, "app=own", 2))

	p, err := e.c.CoreV1().Pods("default").Get(e.ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "elsewhere"
	if _, err := e.c.CoreV1().Pods("default").Update(e.ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("pod released", func() (bool, error) {
		p, err := e.c.CoreV1().Pods("default").Get(e.ctx, "orphan", metav1.GetOptions{})
		return err == nil && len(p.OwnerReferences) == 0, err
	})
	e.eventually("released pod replaced", readyPods(e, "app=own", 2))
}

// readyPods waits for n active, ready pods whose owner is a ReplicaSet.
func readyPods(e *env, selector string, n int) func() (bool, error) {
	return func() (bool, error) {
		pods, err := e.activePods("default", selector)
		if err != nil || len(pods) != n {
			return false, err
		}
		owners := map[types.UID]bool{}
		for _, p := range pods {
			if !isPodReady(&p) || metav1.GetControllerOf(&p) == nil {
				return false, nil
			}
			owners[metav1.GetControllerOf(&p).UID] = true
		}
		return len(owners) == 1, nil
	}
}
