package scheduler

import (
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pod creates an unbound pod with requests and a node selector.
func (e *env) pod(name, cpu, mem string, selector map[string]string) *corev1.Pod {
	e.t.Helper()
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"test": "sched"}},
		Spec: corev1.PodSpec{NodeSelector: selector, Containers: []corev1.Container{{
			Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: req},
		}}},
	}
	out, err := e.c.CoreV1().Pods("default").Create(e.ctx, p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating pod %s: %v", name, err)
	}
	return out
}

// boundTo waits until the pod is bound and returns its node.
func (e *env) boundTo(name string) string {
	e.t.Helper()
	var node string
	e.eventually("binding of "+name, func() (bool, error) {
		p, err := e.c.CoreV1().Pods("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", nil
	})
	return node
}

func TestSchedulerPlacesByResourcesAndSelector(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.node("small", "1", "1Gi", map[string]string{"disk": "hdd"})
	e.node("big", "8", "16Gi", map[string]string{"disk": "hdd"})
	e.node("ssd", "2", "2Gi", map[string]string{"disk": "ssd"})
	cases := []struct {
		name, cpu, mem string
		selector       map[string]string
		want           string
	}{
		{"needs-cpu", "4", "", nil, "big"},
		{"needs-memory", "", "8Gi", nil, "big"},
		{"needs-ssd", "", "", map[string]string{"disk": "ssd"}, "ssd"},
		{"ssd-and-cpu", "1500m", "1Gi", map[string]string{"disk": "ssd"}, "ssd"},
		{"best-effort-least-allocated", "", "", map[string]string{"disk": "hdd"}, "small"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.pod(tc.name, tc.cpu, tc.mem, tc.selector)
			if got := e.boundTo(tc.name); got != tc.want {
				t.Fatalf("bound to %q, want %q", got, tc.want)
			}
		})
	}
	e.eventually("Scheduled event", func() (bool, error) {
		msgs, err := e.events("default", "needs-cpu", "Scheduled")
		return len(msgs) == 1 && msgs[0] == "Successfully assigned default/needs-cpu to big", err
	})
}

// TestSchedulerExplainsAndRetries checks the explanation of a pod that
// fits nowhere and that it is placed once a suitable node joins.
func TestSchedulerExplainsAndRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.node("a1", "2", "1Gi", map[string]string{"zone": "a"})
	e.node("a2", "2", "1Gi", map[string]string{"zone": "a"})
	e.node("b1", "8", "16Gi", map[string]string{"zone": "b"})
	e.pod("hungry", "", "4Gi", map[string]string{"zone": "a"})
	const want = "0/3 nodes are available: 2 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector."
	e.eventually("PodScheduled=False", func() (bool, error) {
		p, err := e.c.CoreV1().Pods("default").Get(e.ctx, "hungry", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == want, nil
	})
	e.eventually("FailedScheduling event", func() (bool, error) {
		msgs, err := e.events("default", "hungry", "FailedScheduling")
		for _, m := range msgs {
			if m == want {
				return true, nil
			}
		}
		return false, fmt.Errorf("events %q (%v)", msgs, err)
	})
	e.node("a3", "4", "8Gi", map[string]string{"zone": "a"})
	if got := e.boundTo("hungry"); got != "a3" {
		t.Fatalf("bound to %q, want a3", got)
	}
	e.eventually("PodScheduled=True without the old reason", func() (bool, error) {
		p, err := e.c.CoreV1().Pods("default").Get(e.ctx, "hungry", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == "" && c.Message == "", nil
	})
}

// TestSchedulerAccountsAssumedPods creates more pods than fit at once,
// with several scheduler workers: pods placed but not yet seen bound must
// count, so exactly the ones that fit are bound.
func TestSchedulerAccountsAssumedPods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SchedulerWorkers = 4 })
	e.node("only", "1", "4Gi", nil)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.pod(fmt.Sprintf("p%d", i), "300m", "", nil)
		}()
	}
	wg.Wait()
	const want = "0/1 nodes are available: 1 Insufficient cpu."
	e.eventually("3 bound, 2 explained", func() (bool, error) {
		pods, err := e.pods("default", "test=sched")
		if err != nil {
			return false, err
		}
		bound, unschedulable := 0, 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				bound++
			} else if c := podCondition(&p, corev1.PodScheduled); c != nil && c.Message == want {
				unschedulable++
			}
		}
		if bound > 3 {
			return false, fmt.Errorf("%d pods bound to a node with room for 3", bound)
		}
		return bound == 3 && unschedulable == 2, nil
	})
}
