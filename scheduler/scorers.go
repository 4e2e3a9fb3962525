package scheduler

import "math"

// LeastAllocated prefers nodes with the most cpu and memory left after
// placing the pod (Kubernetes' NodeResourcesFit LeastAllocated).
type LeastAllocated struct{}

// Name implements Scorer.
func (LeastAllocated) Name() string { return "LeastAllocated" }

// Score implements Scorer.
func (LeastAllocated) Score(p *PodInfo, n *NodeInfo) int64 {
	used := n.NonZeroRequested.Add(p.NonZero)
	return (freeScore(used.MilliCPU, n.Allocatable.MilliCPU) + freeScore(used.Memory, n.Allocatable.Memory)) / 2
}

func freeScore(used, capacity int64) int64 {
	if capacity <= 0 || used >= capacity {
		return 0
	}
	return (capacity - used) * MaxScore / capacity
}

// BalancedAllocation prefers nodes whose cpu and memory would be used in
// the same proportion, so neither runs out while the other idles
// (Kubernetes' NodeResourcesBalancedAllocation).
type BalancedAllocation struct{}

// Name implements Scorer.
func (BalancedAllocation) Name() string { return "BalancedAllocation" }

// Score implements Scorer.
func (BalancedAllocation) Score(p *PodInfo, n *NodeInfo) int64 {
	used := n.NonZeroRequested.Add(p.NonZero)
	cpu := fraction(used.MilliCPU, n.Allocatable.MilliCPU)
	mem := fraction(used.Memory, n.Allocatable.Memory)
	std := math.Abs(cpu-mem) / 2 // standard deviation of two values
	return int64((1 - std) * MaxScore)
}

func fraction(used, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	return math.Min(float64(used)/float64(capacity), 1)
}

// Spread prefers nodes running fewer pods of the pod's controller, so a
// node failure takes out as few replicas as possible.
type Spread struct{}

// Name implements Scorer.
func (Spread) Name() string { return "Spread" }

// Score implements Scorer.
func (Spread) Score(p *PodInfo, n *NodeInfo) int64 {
	if p.Owner == "" {
		return MaxScore
	}
	return MaxScore / int64(1+n.PodsOf(p.Owner))
}
