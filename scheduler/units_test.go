package scheduler

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/api/apitest"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.RESTConfig = &rest.Config{Host: "http://x"}
	cases := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults with a REST config", func(*Config) {}, true},
		{"no REST config", func(c *Config) { c.RESTConfig = nil }, false},
		{"no clock", func(c *Config) { c.Clock = nil }, false},
		{"zero workers", func(c *Config) { c.GCWorkers = 0 }, false},
		{"backoff above its maximum", func(c *Config) { c.SchedulingBackoff = 2 * c.MaxSchedulingBackoff }, false},
		{"no scheduler name", func(c *Config) { c.SchedulerName = "" }, false},
		{"negative resync", func(c *Config) { c.Resync = -time.Second }, false},
		{"no resync", func(c *Config) { c.Resync = 0 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.mutate(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// leaked returns the stacks of goroutines the Manager may have started.
func leaked() []string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	var out []string
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		for _, mark := range []string{"skiff/scheduler.(*", "client-go/tools/cache.", "client-go/util/workqueue.", "client-go/tools/record.", "apimachinery/pkg/watch.(*Broadcaster)"} {
			if strings.Contains(g, mark) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestManagerStopsCleanly runs a Manager and ends its context: Run must
// return and every goroutine it started must end. It is not parallel, so
// no other test's goroutines are around.
func TestManagerStopsCleanly(t *testing.T) {
	srv := apitest.New(t)
	cfg := DefaultConfig()
	cfg.RESTConfig = srv.Config
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	err = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := srv.Client.CoreV1().Namespaces().Get(context.Background(), "kube-public", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("manager never bootstrapped: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	var left []string
	_ = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		left = leaked()
		return len(left) == 0, nil
	})
	if len(left) != 0 {
		t.Fatalf("%d goroutines left after Run returned:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	if err := m.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestExpectations(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	e := newExpectations(clk, time.Minute)
	if !e.satisfied("k") {
		t.Fatal("unknown key not satisfied")
	}
	e.expect("k", 2, []string{"ns/a"})
	steps := []struct {
		do   func()
		want bool
	}{
		{func() {}, false},
		{func() { e.creationObserved("k") }, false},
		{func() { e.creationObserved("k") }, false},
		{func() { e.deletionObserved("k", "ns/a") }, true},
		{func() { e.deletionObserved("k", "ns/a") }, true}, // seen twice: graceful mark, then removal
		{func() { e.expect("k", 1, nil) }, false},
		{func() { clk.Step(2 * time.Minute) }, true}, // expired
	}
	for i, s := range steps {
		s.do()
		if got := e.satisfied("k"); got != s.want {
			t.Fatalf("step %d: satisfied = %v, want %v", i, got, s.want)
		}
	}
}

func TestRankPodsForDeletion(t *testing.T) {
	at := func(sec int64) metav1.Time { return metav1.NewTime(time.Unix(sec, 0)) }
	mk := func(name, node string, phase corev1.PodPhase, ready bool, created int64) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: at(created)},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at(created)}}
		}
		return p
	}
	pods := []*corev1.Pod{
		mk("old-ready", "n1", corev1.PodRunning, true, 10),
		mk("new-ready", "n2", corev1.PodRunning, true, 20),
		mk("not-ready", "n3", corev1.PodRunning, false, 5),
		mk("pending", "n4", corev1.PodPending, false, 5),
		mk("unscheduled", "", corev1.PodPending, false, 1),
		mk("doubled", "n1", corev1.PodRunning, true, 5),
	}
	rankPodsForDeletion(pods)
	// old-ready and doubled share node n1, so both go before new-ready;
	// of those two, the one ready for less time goes first.
	want := []string{"unscheduled", "pending", "not-ready", "old-ready", "doubled", "new-ready"}
	for i, p := range pods {
		if p.Name != want[i] {
			got := make([]string, len(pods))
			for j, q := range pods {
				got[j] = q.Name
			}
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestComputeHash(t *testing.T) {
	a := podTemplate("web", "nginx:1")
	b := podTemplate("web", "nginx:2")
	if computeHash(&a, nil) != computeHash(a.DeepCopy(), nil) {
		t.Fatal("hash is not deterministic")
	}
	if computeHash(&a, nil) == computeHash(&b, nil) {
		t.Fatal("different templates share a hash")
	}
	if computeHash(&a, nil) == computeHash(&a, ptr.To[int32](1)) {
		t.Fatal("collision count does not change the hash")
	}
}

func TestResolveFenceposts(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	cases := []struct {
		surge, unavailable *intstr.IntOrString
		desired            int32
		wantS, wantU       int32
	}{
		{pct("25%"), pct("25%"), 4, 1, 1},
		{pct("25%"), pct("25%"), 10, 3, 2}, // surge rounds up, unavailable down
		{num(0), pct("10%"), 3, 0, 1},      // both zero: unavailable becomes 1
		{num(2), num(0), 3, 2, 0},
	}
	for _, tc := range cases {
		s, u := resolveFenceposts(&appsv1.RollingUpdateDeployment{MaxSurge: tc.surge, MaxUnavailable: tc.unavailable}, tc.desired)
		if s != tc.wantS || u != tc.wantU {
			t.Fatalf("resolveFenceposts(%v, %v, %d) = %d, %d; want %d, %d", tc.surge, tc.unavailable, tc.desired, s, u, tc.wantS, tc.wantU)
		}
	}
}

func TestNewReplicaSetAnnotations(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		"kubernetes.io/change-cause": "undo", lastAppliedAnnotation: "{}", revisionAnnotation: "5",
	}}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{revisionAnnotation: "2", revisionHistoryAnnotation: "1"}}}
	if !setNewReplicaSetAnnotations(d, rs, "6", true) {
		t.Fatal("nothing changed")
	}
	want := map[string]string{"kubernetes.io/change-cause": "undo", revisionAnnotation: "6", revisionHistoryAnnotation: "1,2"}
	if len(rs.Annotations) != len(want) {
		t.Fatalf("annotations %v, want %v", rs.Annotations, want)
	}
	for k, v := range want {
		if rs.Annotations[k] != v {
			t.Fatalf("annotations %v, want %v", rs.Annotations, want)
		}
	}
	if setNewReplicaSetAnnotations(d, rs, "6", true) {
		t.Fatal("second call changed something")
	}
}

func TestNodeShouldRun(t *testing.T) {
	ds := func(mutate func(*corev1.PodSpec)) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: podTemplate("agent", "agent:1")}}
		if mutate != nil {
			mutate(&d.Spec.Template.Spec)
		}
		return d
	}
	noExecute := func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "evict", Effect: corev1.TaintEffectNoExecute})
	}
	cases := []struct {
		name               string
		node               *corev1.Node
		ds                 *appsv1.DaemonSet
		run, keepOnRunning bool
	}{
		{"ready node", fakeNode("n", "1", "1Gi"), ds(nil), true, true},
		{"not ready: no new pod, keep the old", fakeNode("n", "1", "1Gi", notReady), ds(nil), false, true},
		{"cordoned: no new pod, keep the old", fakeNode("n", "1", "1Gi", cordoned), ds(nil), false, true},
		{"selector mismatch", fakeNode("n", "1", "1Gi"), ds(func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"role": "edge"} }), false, false},
		{"selector match", fakeNode("n", "1", "1Gi", labelled("role", "edge")), ds(func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"role": "edge"} }), true, true},
		{"NoSchedule taint: keep the old", fakeNode("n", "1", "1Gi", tainted("gpu")), ds(nil), false, true},
		{"NoExecute taint: evict", fakeNode("n", "1", "1Gi", noExecute), ds(nil), false, false},
		{"tolerated taint", fakeNode("n", "1", "1Gi", tainted("gpu")), ds(func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
		}), true, true},
		{"not-ready taint is tolerated by daemons", fakeNode("n", "1", "1Gi", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}}
		}), ds(nil), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run, keep := nodeShouldRun(tc.node, tc.ds)
			if run != tc.run || keep != tc.keepOnRunning {
				t.Fatalf("nodeShouldRun = %v, %v; want %v, %v", run, keep, tc.run, tc.keepOnRunning)
			}
		})
	}
}
