package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// NodeReady passes nodes whose Ready condition is True.
type NodeReady struct{}

// Name implements Filter.
func (NodeReady) Name() string { return "NodeReady" }

// Check implements Filter.
func (NodeReady) Check(_ *PodInfo, n *NodeInfo) bool { return nodeReady(n.Node) }

// Explain implements Filter.
func (NodeReady) Explain(nodes int) string { return fmt.Sprintf("%d node(s) were not ready", nodes) }

// NodeUnschedulable rejects cordoned nodes (spec.unschedulable) unless the
// pod tolerates the node.kubernetes.io/unschedulable taint.
type NodeUnschedulable struct{}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Name implements Filter.
func (NodeUnschedulable) Name() string { return "NodeUnschedulable" }

// Check implements Filter.
func (NodeUnschedulable) Check(p *PodInfo, n *NodeInfo) bool {
	if !n.Node.Spec.Unschedulable {
		return true
	}
	_, bad := untoleratedTaint([]corev1.Taint{unschedulableTaint}, p.Pod.Spec.Tolerations, corev1.TaintEffectNoSchedule)
	return !bad
}

// Explain implements Filter.
func (NodeUnschedulable) Explain(nodes int) string {
	return fmt.Sprintf("%d node(s) were unschedulable", nodes)
}

// TaintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate.
type TaintToleration struct{}

// Name implements Filter.
func (TaintToleration) Name() string { return "TaintToleration" }

// Check implements Filter.
func (TaintToleration) Check(p *PodInfo, n *NodeInfo) bool {
	_, bad := untoleratedTaint(n.Node.Spec.Taints, p.Pod.Spec.Tolerations, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute)
	return !bad
}

// Explain implements Filter.
func (TaintToleration) Explain(nodes int) string {
	return fmt.Sprintf("%d node(s) had untolerated taint(s)", nodes)
}

// NodeAffinity passes nodes matching the pod's nodeSelector and required
// node affinity.
type NodeAffinity struct{}

// Name implements Filter.
func (NodeAffinity) Name() string { return "NodeAffinity" }

// Check implements Filter.
func (NodeAffinity) Check(p *PodInfo, n *NodeInfo) bool {
	ok, err := p.affinity.Match(n.Node)
	return err == nil && ok
}

// Explain implements Filter.
func (NodeAffinity) Explain(nodes int) string {
	return fmt.Sprintf("%d node(s) didn't match Pod's node affinity/selector", nodes)
}

// PodCount rejects nodes that already run as many pods as they allow.
type PodCount struct{}

// Name implements Filter.
func (PodCount) Name() string { return "PodCount" }

// Check implements Filter.
func (PodCount) Check(_ *PodInfo, n *NodeInfo) bool { return n.Requested.Pods+1 <= n.Allocatable.Pods }

// Explain implements Filter.
func (PodCount) Explain(nodes int) string { return fmt.Sprintf("%d Too many pods", nodes) }

// CPUFit rejects nodes without room for the pod's cpu request.
type CPUFit struct{}

// Name implements Filter.
func (CPUFit) Name() string { return "CPUFit" }

// Check implements Filter.
func (CPUFit) Check(p *PodInfo, n *NodeInfo) bool {
	return p.Requests.MilliCPU == 0 || p.Requests.MilliCPU <= n.Allocatable.MilliCPU-n.Requested.MilliCPU
}

// Explain implements Filter.
func (CPUFit) Explain(nodes int) string { return fmt.Sprintf("%d Insufficient cpu", nodes) }

// MemoryFit rejects nodes without room for the pod's memory request.
type MemoryFit struct{}

// Name implements Filter.
func (MemoryFit) Name() string { return "MemoryFit" }

// Check implements Filter.
func (MemoryFit) Check(p *PodInfo, n *NodeInfo) bool {
	return p.Requests.Memory == 0 || p.Requests.Memory <= n.Allocatable.Memory-n.Requested.Memory
}

// Explain implements Filter.
func (MemoryFit) Explain(nodes int) string { return fmt.Sprintf("%d Insufficient memory", nodes) }
