package scheduler

import (
	"errors"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// fakeState is a State built by hand.
type fakeState []*NodeInfo

func (s fakeState) Nodes() []*NodeInfo { return s }

type nodeOpt func(*corev1.Node)

func labelled(k, v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func maxPods(p string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse(p) }
}
func tainted(key string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
	}
}

func fakeNode(name, cpu, mem string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourcePods: resource.MustParse("10")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func fakePod(name, cpu, mem string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func ownedBy(uid types.UID) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", UID: uid, Controller: ptr.To(true)}}
	}
}

// state builds a fakeState with pods already on nodes (by node name).
func state(nodes []*corev1.Node, placed map[string][]*corev1.Pod) fakeState {
	var s fakeState
	for _, n := range nodes {
		info := NewNodeInfo(n)
		for _, p := range placed[n.Name] {
			info.AddPod(NewPodInfo(p))
		}
		s = append(s, info)
	}
	return s
}

func TestPipelinePlace(t *testing.T) {
	rsUID := types.UID("rs-1")
	cases := []struct {
		name    string
		nodes   []*corev1.Node
		placed  map[string][]*corev1.Pod
		pod     *corev1.Pod
		want    string // node, or the error text
		wantErr bool
	}{
		{name: "fits the only node", nodes: []*corev1.Node{fakeNode("a", "1", "1Gi")}, pod: fakePod("p", "500m", "512Mi"), want: "a"},
		{name: "cpu request picks the big node", nodes: []*corev1.Node{fakeNode("a", "1", "8Gi"), fakeNode("b", "4", "8Gi")},
			pod: fakePod("p", "2", ""), want: "b"},
		{name: "existing pods use the room", nodes: []*corev1.Node{fakeNode("a", "4", "8Gi"), fakeNode("b", "4", "8Gi")},
			placed: map[string][]*corev1.Pod{"a": {fakePod("x", "3", "")}}, pod: fakePod("p", "2", ""), want: "b"},
		{name: "node selector", nodes: []*corev1.Node{fakeNode("a", "4", "8Gi"), fakeNode("b", "4", "8Gi", labelled("disk", "ssd"))},
			pod: fakePod("p", "", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), want: "b"},
		{name: "least allocated", nodes: []*corev1.Node{fakeNode("a", "4", "8Gi"), fakeNode("b", "4", "8Gi")},
			placed: map[string][]*corev1.Pod{"a": {fakePod("x", "1", "1Gi")}}, pod: fakePod("p", "100m", "100Mi"), want: "b"},
		{name: "spread replicas", nodes: []*corev1.Node{fakeNode("a", "64", "256Gi"), fakeNode("b", "64", "256Gi")},
			placed: map[string][]*corev1.Pod{"a": {fakePod("x", "", "", ownedBy(rsUID))}, "b": {fakePod("y", "", ""), fakePod("z", "", "")}},
			pod:    fakePod("p", "", "", ownedBy(rsUID)), want: "b"},
		{name: "tolerated taint", nodes: []*corev1.Node{fakeNode("a", "4", "8Gi", tainted("gpu"))},
			pod: fakePod("p", "", "", func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
			}), want: "a"},
		{name: "no nodes", pod: fakePod("p", "", ""), want: ErrNoNodes.Error(), wantErr: true},
		{name: "every reason", wantErr: true,
			nodes: []*corev1.Node{fakeNode("r", "4", "8Gi", notReady), fakeNode("u", "4", "8Gi", cordoned), fakeNode("t", "4", "8Gi", tainted("gpu")),
				fakeNode("s", "4", "8Gi", labelled("zone", "b")), fakeNode("m", "4", "8Gi", labelled("zone", "a"), maxPods("1")),
				fakeNode("c", "1", "8Gi", labelled("zone", "a")), fakeNode("c2", "1", "8Gi", labelled("zone", "a")), fakeNode("mem", "4", "1Gi", labelled("zone", "a"))},
			placed: map[string][]*corev1.Pod{"m": {fakePod("x", "", "")}},
			pod:    fakePod("p", "2", "2Gi", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }),
			want: "0/8 nodes are available: 2 Insufficient cpu, 1 Insufficient memory, 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector, " +
				"1 node(s) had untolerated taint(s), 1 node(s) were not ready, 1 node(s) were unschedulable."},
	}
	pl := DefaultPipeline()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := state(tc.nodes, tc.placed)
			got, err := pl.Place(NewPodInfo(tc.pod), st)
			if tc.wantErr {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.want)
				}
				return
			}
			if err != nil || got.Name() != tc.want {
				t.Fatalf("got %v, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestFitErrorCounts checks the histogram behind the message.
func TestFitErrorCounts(t *testing.T) {
	st := state([]*corev1.Node{fakeNode("a", "1", "1Gi"), fakeNode("b", "1", "1Gi"), fakeNode("c", "1", "1Gi", notReady)}, nil)
	_, err := DefaultPipeline().Place(NewPodInfo(fakePod("p", "", "2Gi")), st)
	var fit *FitError
	if !errors.As(err, &fit) {
		t.Fatalf("got %v, want a *FitError", err)
	}
	got := map[string]int{}
	for _, r := range fit.Reasons {
		got[r.Filter] = r.Nodes
	}
	if len(got) != 2 || got["MemoryFit"] != 2 || got["NodeReady"] != 1 || fit.Nodes != 3 {
		t.Fatalf("reasons %+v over %d nodes, want MemoryFit 2 and NodeReady 1 over 3", fit.Reasons, fit.Nodes)
	}
}

func TestScorers(t *testing.T) {
	empty := NewNodeInfo(fakeNode("a", "4", "4Gi"))
	half := NewNodeInfo(fakeNode("b", "4", "4Gi"))
	half.AddPod(NewPodInfo(fakePod("x", "2", "2Gi")))
	lopsided := NewNodeInfo(fakeNode("c", "4", "4Gi"))
	lopsided.AddPod(NewPodInfo(fakePod("y", "3900m", "")))
	pod := NewPodInfo(fakePod("p", "", ""))
	cases := []struct {
		name         string
		scorer       Scorer
		better, than *NodeInfo
	}{
		{"least allocated prefers empty", LeastAllocated{}, empty, half},
		{"balanced prefers even use", BalancedAllocation{}, half, lopsided},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if b, w := tc.scorer.Score(pod, tc.better), tc.scorer.Score(pod, tc.than); b <= w || b > MaxScore || w < 0 {
				t.Fatalf("scores %d and %d, want first higher and both in 0..%d", b, w, MaxScore)
			}
		})
	}
}

// TestClusterCacheAssumedPods checks that a placed pod counts before the
// informer shows it, that a failed binding releases it, and that an
// assumed pod the informer never confirms expires.
func TestClusterCacheAssumedPods(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	c := newClusterCache(clk, 30*time.Second)
	c.setNode(fakeNode("a", "1", "1Gi"))
	pl := DefaultPipeline()
	place := func(name string) error {
		_, err := c.place(pl, NewPodInfo(fakePod(name, "600m", "")))
		return err
	}
	if err := place("p1"); err != nil {
		t.Fatalf("first pod: %v", err)
	}
	if err := place("p2"); err == nil {
		t.Fatalf("second pod fit beside an assumed one")
	}
	c.forget("uid-p1") // binding failed
	if err := place("p2"); err != nil {
		t.Fatalf("after forget: %v", err)
	}
	c.finishBinding("uid-p2")
	clk.Step(31 * time.Second) // the informer never showed p2
	if err := place("p3"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if !c.isAssumed("uid-p3") {
		t.Fatalf("p3 is not assumed")
	}
	bound := fakePod("p3", "600m", "")
	bound.Spec.NodeName = "a"
	c.addPod(bound) // the informer shows the binding
	if c.isAssumed("uid-p3") {
		t.Fatalf("p3 still assumed after the informer showed it")
	}
	clk.Step(time.Hour)
	if err := place("p4"); err == nil {
		t.Fatalf("a confirmed pod expired")
	}
	nodes := c.Nodes()
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name()
	}
	if !sort.StringsAreSorted(names) || len(names) != 1 || nodes[0].Requested.Pods != 1 {
		t.Fatalf("nodes %v, requested %+v", names, nodes[0].Requested)
	}
}
