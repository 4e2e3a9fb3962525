package agent

import (
	"context"
	"fmt"
	"maps"
	"net"
	"runtime"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RuntimeVersioner is an optional Runtime capability: the runtime's name
// and version as a Node reports them, e.g. "containerd://1.6.20".
type RuntimeVersioner interface {
	RuntimeVersion(ctx context.Context) (string, error)
}

// nodeReporter keeps the Node object current. It writes only when
// something changed (capacity, addresses, readiness, ...): liveness is
// gossip's job, so there are no periodic heartbeat writes into Raft.
type nodeReporter struct {
	a    *Agent
	port int32
	info corev1.NodeSystemInfo
	wake chan struct{}

	mu         sync.Mutex
	runtimeErr error
}

func newNodeReporter(a *Agent, ln net.Listener) *nodeReporter {
	return &nodeReporter{a: a, port: listenPort(ln), info: hostNodeInfo(), wake: make(chan struct{}, 1)}
}

// setRuntimeHealth records the runtime's health; a change updates the
// Node's Ready condition.
func (n *nodeReporter) setRuntimeHealth(err error) {
	n.mu.Lock()
	changed := (err == nil) != (n.runtimeErr == nil)
	n.runtimeErr = err
	n.mu.Unlock()
	if changed {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
}

// run registers the Node and re-checks it every NodeStatusInterval.
func (n *nodeReporter) run(ctx context.Context) {
	a := n.a
	t := a.clock.NewTicker(a.cfg.NodeStatusInterval)
	defer t.Stop()
	failures := 0
	for {
		if err := n.sync(ctx); err != nil && ctx.Err() == nil {
			failures++
			a.log.Warn("node status", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-a.clock.After(doubling(time.Second, 30*time.Second, failures)):
			}
			continue
		}
		failures = 0
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-n.wake:
		}
	}
}

// sync creates the Node or updates what differs.
func (n *nodeReporter) sync(ctx context.Context) error {
	want, err := n.desired(ctx)
	if err != nil {
		return err
	}
	nodes := n.a.client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err = nodes.Create(ctx, want, metav1.CreateOptions{}); err == nil {
			n.a.log.Info("registered node", "ip", n.a.nodeIP, "port", n.port)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	labels := maps.Clone(cur.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want.Labels)
	if !maps.Equal(labels, cur.Labels) {
		cur = cur.DeepCopy()
		cur.Labels = labels
		if cur, err = nodes.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update node labels: %w", err)
		}
	}
	status := mergeNodeStatus(cur.Status, want.Status)
	if apiequality.Semantic.DeepEqual(withoutHeartbeats(status), withoutHeartbeats(cur.Status)) {
		return nil
	}
	cur = cur.DeepCopy()
	cur.Status = status
	if _, err := nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node status: %w", err)
	}
	n.a.log.Info("updated node status", "ready", readyOf(status))
	return nil
}

// desired builds the Node as this agent sees it.
func (n *nodeReporter) desired(ctx context.Context) (*corev1.Node, error) {
	a := n.a
	capacityOf := a.cfg.Capacity
	if capacityOf == nil {
		capacityOf = func() (corev1.ResourceList, error) { return HostCapacity(a.cfg.DataDir) }
	}
	capacity, err := capacityOf()
	if err != nil {
		return nil, fmt.Errorf("node capacity: %w", err)
	}
	capacity = capacity.DeepCopy()
	capacity[corev1.ResourcePods] = *resource.NewQuantity(a.cfg.MaxPods, resource.DecimalSI)
	info := n.info
	info.ContainerRuntimeVersion = n.runtimeVersion(ctx)
	labels := map[string]string{
		corev1.LabelHostname: a.cfg.NodeName, corev1.LabelOSStable: runtime.GOOS, corev1.LabelArchStable: runtime.GOARCH,
	}
	maps.Copy(labels, a.cfg.NodeLabels)
	now := metav1.NewTime(a.clock.Now().Truncate(time.Second))
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable(capacity, a.cfg.SystemReserved),
			Conditions:  n.conditions(now),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: a.nodeIP},
				{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: n.port}},
			NodeInfo:        info,
		},
	}, nil
}

// runtimeVersion asks the runtime, when it can tell.
func (n *nodeReporter) runtimeVersion(ctx context.Context) string {
	if v, ok := n.a.rt.(RuntimeVersioner); ok {
		if s, err := v.RuntimeVersion(ctx); err == nil {
			return s
		}
	}
	return "containerd://unknown"
}

// conditions are the kubelet's node conditions; Ready follows the
// runtime's health.
func (n *nodeReporter) conditions(now metav1.Time) []corev1.NodeCondition {
	n.mu.Lock()
	rtErr := n.runtimeErr
	n.mu.Unlock()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	ready := cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	if rtErr != nil {
		ready = cond(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", "container runtime is down: "+rtErr.Error())
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
}

// allocatable is capacity minus reserved, never below zero.
func allocatable(capacity, reserved corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	for name, r := range reserved {
		if q, ok := out[name]; ok {
			q.Sub(r)
			if q.Sign() < 0 {
				q = *resource.NewQuantity(0, q.Format)
			}
			out[name] = q
		}
	}
	return out
}

// mergeNodeStatus lays the agent's view over the current status: fields
// the agent does not own are kept, and conditions keep their transition
// (and heartbeat) times while their status is unchanged.
func mergeNodeStatus(cur, want corev1.NodeStatus) corev1.NodeStatus {
	out := *cur.DeepCopy()
	out.Capacity, out.Allocatable, out.Addresses = want.Capacity, want.Allocatable, want.Addresses
	out.DaemonEndpoints, out.NodeInfo = want.DaemonEndpoints, want.NodeInfo
	conds := make([]corev1.NodeCondition, 0, len(want.Conditions))
	for _, w := range want.Conditions {
		for _, c := range cur.Conditions {
			if c.Type == w.Type && c.Status == w.Status && c.Reason == w.Reason && c.Message == w.Message {
				w.LastTransitionTime, w.LastHeartbeatTime = c.LastTransitionTime, c.LastHeartbeatTime
			} else if c.Type == w.Type && c.Status == w.Status {
				w.LastTransitionTime = c.LastTransitionTime
			}
		}
		conds = append(conds, w)
	}
	for _, c := range cur.Conditions {
		if !hasNodeCondition(conds, c.Type) {
			conds = append(conds, c)
		}
	}
	out.Conditions = conds
	return out
}

func hasNodeCondition(list []corev1.NodeCondition, t corev1.NodeConditionType) bool {
	for _, c := range list {
		if c.Type == t {
			return true
		}
	}
	return false
}

// withoutHeartbeats blanks the heartbeat times for comparison.
func withoutHeartbeats(st corev1.NodeStatus) corev1.NodeStatus {
	out := *st.DeepCopy()
	for i := range out.Conditions {
		out.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	return out
}

func readyOf(st corev1.NodeStatus) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}
