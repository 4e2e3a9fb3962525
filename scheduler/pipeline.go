package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Placement is a pipeline over a read-only snapshot of the cluster, in the
// manner of Nomad's and swarmkit's schedulers:
//
//	State.Nodes() ──► filters (Check; first failure per node is recorded)
//	              ──► scorers (weighted sum, 0..MaxScore each)
//	              ──► the feasible node with the best score
//
// Filters run cheapest and most selective first: a node that is not ready
// or cordoned is not worth a resource computation. When no node passes,
// every filter Explains its failures and the FitError reads like
// Kubernetes': "0/3 nodes are available: 2 Insufficient memory, 1 node(s)
// didn't match Pod's node affinity/selector."

// MaxScore is the best score a Scorer gives.
const MaxScore = 100

// Default requests used for scoring pods that request nothing, as in
// Kubernetes, so that best-effort pods still spread.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 << 20
)

// ErrNoNodes is the placement error when the cluster has no node at all.
var ErrNoNodes = errors.New("no nodes available to schedule pods")

// Resources is an amount of the resources placement accounts for.
type Resources struct {
	MilliCPU int64 // thousandths of a core
	Memory   int64 // bytes
	Pods     int64 // number of pods
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, Memory: r.Memory + o.Memory, Pods: r.Pods + o.Pods}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, Memory: r.Memory - o.Memory, Pods: r.Pods - o.Pods}
}

// ResourcesOf converts a resource list (node allocatable, pod requests).
func ResourcesOf(l corev1.ResourceList) Resources {
	return Resources{MilliCPU: l.Cpu().MilliValue(), Memory: l.Memory().Value(), Pods: l.Pods().Value()}
}

// NodeInfo is one node as placement sees it: the node and what the pods
// bound (or about to be bound) to it request.
type NodeInfo struct {
	Node        *corev1.Node
	Allocatable Resources
	// Requested sums the requests of the node's pods; Pods counts them.
	Requested Resources
	// NonZeroRequested is Requested with default sizes for pods that
	// request no cpu or memory; scorers use it.
	NonZeroRequested Resources
	// owners counts the node's pods per controller UID.
	owners map[types.UID]int
}

// NewNodeInfo returns the NodeInfo of a node without pods.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	n := &NodeInfo{owners: map[types.UID]int{}}
	n.SetNode(node)
	return n
}

// SetNode replaces the node object, keeping the pod accounting.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.Node = node
	if node != nil {
		n.Allocatable = ResourcesOf(node.Status.Allocatable)
	}
}

// Name returns the node's name.
func (n *NodeInfo) Name() string { return n.Node.Name }

// PodsOf returns how many of the node's pods the controller owner owns.
func (n *NodeInfo) PodsOf(owner types.UID) int { return n.owners[owner] }

// AddPod counts a pod on the node.
func (n *NodeInfo) AddPod(p *PodInfo) {
	n.Requested = n.Requested.Add(p.Requests)
	n.NonZeroRequested = n.NonZeroRequested.Add(p.NonZero)
	if p.Owner != "" {
		n.owners[p.Owner]++
	}
}

// RemovePod stops counting a pod on the node.
func (n *NodeInfo) RemovePod(p *PodInfo) {
	n.Requested = n.Requested.Sub(p.Requests)
	n.NonZeroRequested = n.NonZeroRequested.Sub(p.NonZero)
	if p.Owner != "" {
		if n.owners[p.Owner]--; n.owners[p.Owner] <= 0 {
			delete(n.owners, p.Owner)
		}
	}
}

// PodInfo is a pod with what placement needs computed once.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests are the pod's effective requests (init containers,
	// overhead); Pods is 1.
	Requests Resources
	// NonZero is Requests with default cpu and memory sizes when unset.
	NonZero Resources
	// Owner is the UID of the pod's controller, "" when it has none.
	Owner    types.UID
	affinity nodeaffinity.RequiredNodeAffinity
}

// NewPodInfo computes a pod's PodInfo.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	req := ResourcesOf(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	req.Pods = 1
	nz := req
	if nz.MilliCPU == 0 {
		nz.MilliCPU = defaultMilliCPURequest
	}
	if nz.Memory == 0 {
		nz.Memory = defaultMemoryRequest
	}
	p := &PodInfo{Pod: pod, Requests: req, NonZero: nz, affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
	for _, r := range pod.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			p.Owner = r.UID
		}
	}
	return p
}

// State is the read-only view of the cluster placement works on. The
// caller owns it (the scheduler's cache, or a fake in tests) and must keep
// it unchanged while Place runs; Place never modifies it.
type State interface {
	// Nodes returns every schedulable candidate in a stable order.
	Nodes() []*NodeInfo
}

// Filter decides whether a pod may run on a node.
type Filter interface {
	// Name identifies the filter in logs and tests.
	Name() string
	// Check reports whether the pod may run on the node.
	Check(pod *PodInfo, node *NodeInfo) bool
	// Explain says why the given number of nodes failed Check, in
	// Kubernetes' words: "2 Insufficient memory".
	Explain(nodes int) string
}

// Scorer rates a feasible node for a pod.
type Scorer interface {
	// Name identifies the scorer in logs and tests.
	Name() string
	// Score returns 0 (worst) to MaxScore (best).
	Score(pod *PodInfo, node *NodeInfo) int64
}

// WeightedScorer is a scorer and how much it counts.
type WeightedScorer struct {
	Scorer
	Weight int64
}

// Pipeline is an ordered list of filters and weighted scorers. It has no
// state and is safe for concurrent use.
type Pipeline struct {
	filters []Filter
	scorers []WeightedScorer
}

// NewPipeline returns a pipeline running filters in order, then scorers.
func NewPipeline(filters []Filter, scorers []WeightedScorer) *Pipeline {
	return &Pipeline{filters: filters, scorers: scorers}
}

// DefaultPipeline is skiff's placement: node ready, not cordoned, taints
// tolerated, node selector and affinity, then pod count, cpu and memory
// fit; scored by least allocation, balance between cpu and memory, and
// spreading a controller's pods across nodes.
func DefaultPipeline() *Pipeline {
	return NewPipeline(
		[]Filter{NodeReady{}, NodeUnschedulable{}, TaintToleration{}, NodeAffinity{}, PodCount{}, CPUFit{}, MemoryFit{}},
		[]WeightedScorer{{LeastAllocated{}, 1}, {BalancedAllocation{}, 1}, {Spread{}, 2}},
	)
}

// Place returns the best node for the pod, or a *FitError (or ErrNoNodes)
// explaining why none fits. Ties go to the earlier node in State order.
func (p *Pipeline) Place(pod *PodInfo, st State) (*NodeInfo, error) {
	nodes := st.Nodes()
	if len(nodes) == 0 {
		return nil, ErrNoNodes
	}
	failed := make([]int, len(p.filters))
	var best *NodeInfo
	var bestScore int64
	for _, n := range nodes {
		if i := p.firstFailure(pod, n); i >= 0 {
			failed[i]++
			continue
		}
		if s := p.Score(pod, n); best == nil || s > bestScore {
			best, bestScore = n, s
		}
	}
	if best == nil {
		return nil, p.fitError(len(nodes), failed)
	}
	return best, nil
}

func (p *Pipeline) firstFailure(pod *PodInfo, n *NodeInfo) int {
	for i, f := range p.filters {
		if !f.Check(pod, n) {
			return i
		}
	}
	return -1
}

// Score returns the weighted score of a feasible node.
func (p *Pipeline) Score(pod *PodInfo, n *NodeInfo) int64 {
	var total int64
	for _, s := range p.scorers {
		total += s.Weight * s.Score(pod, n)
	}
	return total
}

func (p *Pipeline) fitError(nodes int, failed []int) *FitError {
	e := &FitError{Nodes: nodes}
	for i, n := range failed {
		if n > 0 {
			e.Reasons = append(e.Reasons, Reason{Filter: p.filters[i].Name(), Nodes: n, Message: p.filters[i].Explain(n)})
		}
	}
	sort.SliceStable(e.Reasons, func(i, j int) bool {
		if e.Reasons[i].Nodes != e.Reasons[j].Nodes {
			return e.Reasons[i].Nodes > e.Reasons[j].Nodes
		}
		return e.Reasons[i].Message < e.Reasons[j].Message
	})
	return e
}

// Reason is one filter's share of a FitError.
type Reason struct {
	Filter  string // the filter's Name
	Nodes   int    // how many nodes it rejected
	Message string // its Explain
}

// FitError says why a pod fits no node; reasons are ordered by how many
// nodes they rejected.
type FitError struct {
	Nodes   int
	Reasons []Reason
}

// Error reads like Kubernetes' FitError.
func (e *FitError) Error() string {
	parts := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		parts[i] = r.Message
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", e.Nodes, strings.Join(parts, ", "))
}
