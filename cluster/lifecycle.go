package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Node lifecycle reasons.
const (
	ReasonNodeUnreachable = "NodeUnreachable"
	ReasonNodeReachable   = "KubeletReady"
	taintUnreachable      = "node.kubernetes.io/unreachable"
)

// LifecycleConfig tunes the node lifecycle controller.
type LifecycleConfig struct {
	// EvictAfter is how long a dead node's pods are left before they are
	// deleted so their controllers replace them elsewhere.
	EvictAfter time.Duration
	// UnknownGrace is how long a new leader waits for gossip to report on
	// a node it has never heard of before calling it unreachable.
	UnknownGrace time.Duration
	// Interval is the reconcile period without gossip changes.
	Interval time.Duration
	// Roles, when set, returns each node's current control-plane role
	// (voter, standby or worker), shown as a node-role.kubernetes.io label.
	Roles func() map[string]string
}

// DefaultLifecycleConfig returns the defaults.
func DefaultLifecycleConfig() LifecycleConfig {
	return LifecycleConfig{EvictAfter: 0, UnknownGrace: 5 * time.Second, Interval: 500 * time.Millisecond}
}

// lifecycle turns gossip's verdicts into Node conditions and evictions.
// It runs on the leader only.
type lifecycle struct {
	cfg     LifecycleConfig
	client  kubernetes.Interface
	gossip  *Gossip
	log     *slog.Logger
	started time.Time
	nodes   cache.Indexer
	pods    cache.Indexer
	reach   reachability
}

// RunNodeLifecycle runs the controller until ctx ends.
func RunNodeLifecycle(ctx context.Context, rc *rest.Config, g *Gossip, cfg LifecycleConfig, log *slog.Logger) error {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactory(client, 0)
	nodeInf := f.Core().V1().Nodes().Informer()
	podInf := f.Core().V1().Pods().Informer()
	if err := podInf.AddIndexers(cache.Indexers{"node": func(obj interface{}) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.HasSynced, podInf.HasSynced) {
		return ctx.Err()
	}
	l := &lifecycle{cfg: cfg, client: client, gossip: g, log: log, started: time.Now(), nodes: nodeInf.GetIndexer(), pods: podInf.GetIndexer()}
	changes, unsubscribe := g.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		l.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		case <-tick.C:
		}
	}
}

func (l *lifecycle) reconcile(ctx context.Context) {
	for _, obj := range l.nodes.List() {
		node := obj.(*corev1.Node)
		dead, since, why := l.verdict(node.Name)
		ready := readyStatus(node)
		switch {
		case dead && ready != corev1.ConditionUnknown:
			l.setReady(ctx, node.Name, corev1.ConditionUnknown, ReasonNodeUnreachable, why)
		case !dead && ready == corev1.ConditionUnknown && readyReason(node) == ReasonNodeUnreachable:
			l.setReady(ctx, node.Name, corev1.ConditionTrue, ReasonNodeReachable, "skiff agent is alive in gossip again")
		}
		if dead && time.Since(since) >= l.cfg.EvictAfter {
			l.evict(ctx, node.Name)
		}
	}
	l.syncRoles(ctx)
}

// roleLabelPrefix is the label kubectl reads the ROLES column from.
const roleLabelPrefix = "node-role.kubernetes.io/"

// syncRoles labels every node with its current role (voter, standby or
// worker), writing only when a node's role changed.
func (l *lifecycle) syncRoles(ctx context.Context) {
	if l.cfg.Roles == nil {
		return
	}
	roles := l.cfg.Roles()
	for _, obj := range l.nodes.List() {
		node := obj.(*corev1.Node)
		want := roles[node.Name]
		if want == "" {
			want = RoleWorker
		}
		patch := map[string]interface{}{}
		for k := range node.Labels {
			if strings.HasPrefix(k, roleLabelPrefix) && k != roleLabelPrefix+want {
				patch[k] = nil
			}
		}
		if _, ok := node.Labels[roleLabelPrefix+want]; !ok {
			patch[roleLabelPrefix+want] = ""
		}
		if len(patch) == 0 {
			continue
		}
		body, _ := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{"labels": patch}})
		if _, err := l.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			l.log.Warn("node lifecycle: labelling role", "node", node.Name, "err", err)
		}
	}
}

// verdict says whether gossip holds a node dead, since when and why.
func (l *lifecycle) verdict(name string) (bool, time.Time, string) {
	m, ok := l.gossip.Member(name)
	if !ok {
		if time.Since(l.started) < l.cfg.UnknownGrace {
			return false, time.Time{}, ""
		}
		return true, l.started.Add(l.cfg.UnknownGrace), "the node has not been seen in gossip since this leader started"
	}
	switch m.State {
	case MemberDead:
		if l.reach.reachable(m.Meta.API) {
			return false, time.Time{}, "" // gossip is wrong: the node answers
		}
		return true, m.Since, fmt.Sprintf("gossip declared the node dead at %s", m.Since.UTC().Format(time.RFC3339))
	case MemberLeft:
		return true, m.Since, fmt.Sprintf("the node left the cluster at %s", m.Since.UTC().Format(time.RFC3339))
	}
	return false, time.Time{}, ""
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	if c := readyCondition(n); c != nil {
		return c.Status
	}
	return corev1.ConditionUnknown
}

func readyReason(n *corev1.Node) string {
	if c := readyCondition(n); c != nil {
		return c.Reason
	}
	return ""
}

// setReady writes the Ready condition and the unreachable taint.
func (l *lifecycle) setReady(ctx context.Context, name string, status corev1.ConditionStatus, reason, msg string) {
	l.log.Info("node lifecycle: node readiness", "node", name, "ready", status, "reason", reason)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := l.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cond := readyCondition(node)
		if cond == nil {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady})
			cond = &node.Status.Conditions[len(node.Status.Conditions)-1]
		}
		cond.Status, cond.Reason, cond.Message = status, reason, msg
		cond.LastTransitionTime, cond.LastHeartbeatTime = now, now
		if node, err = l.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			return err
		}
		node.Spec.Taints = withTaint(node.Spec.Taints, status != corev1.ConditionTrue)
		_, err = l.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		l.log.Warn("node lifecycle: updating node", "node", name, "err", err)
	}
}

func withTaint(taints []corev1.Taint, set bool) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Key != taintUnreachable {
			out = append(out, t)
		}
	}
	if set {
		out = append(out, corev1.Taint{Key: taintUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &metav1.Time{Time: time.Now()}})
	}
	return out
}

// evict deletes the pods bound to a dead node (except DaemonSet pods,
// which belong to the node) so their controllers replace them elsewhere.
// The deletion is immediate: nobody is left on the node to confirm it.
func (l *lifecycle) evict(ctx context.Context, node string) {
	objs, _ := l.pods.ByIndex("node", node)
	zero := int64(0)
	for _, obj := range objs {
		pod := obj.(*corev1.Pod)
		if ownedByDaemonSet(pod) {
			continue
		}
		err := l.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if err == nil {
			l.log.Info("node lifecycle: evicted pod from dead node", "node", node, "pod", pod.Namespace+"/"+pod.Name)
		} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			l.log.Warn("node lifecycle: evicting pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
}

func ownedByDaemonSet(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}
