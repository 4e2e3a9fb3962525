package scheduler

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// nodeShouldRun reports whether a daemon pod should be started on node and
// whether one already there may stay. New pods need a Ready, schedulable
// node that matches the pod's node selector and affinity and whose
// NoSchedule/NoExecute taints the pod tolerates; an existing pod stays
// unless the node stops matching or gains an untolerated NoExecute taint,
// so a node that flaps NotReady does not churn its daemons.
func nodeShouldRun(node *corev1.Node, ds *appsv1.DaemonSet) (shouldRun, shouldContinue bool) {
	spec := &ds.Spec.Template.Spec
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return false, false
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: spec.NodeSelector, Affinity: spec.Affinity}}
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); err != nil || !ok {
		return false, false
	}
	tolerations := daemonTolerations(spec.Tolerations)
	if _, bad := untoleratedTaint(node.Spec.Taints, tolerations, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute); bad {
		_, evict := untoleratedTaint(node.Spec.Taints, tolerations, corev1.TaintEffectNoExecute)
		return false, !evict
	}
	if !nodeReady(node) || node.Spec.Unschedulable {
		return false, true
	}
	return true, true
}

// daemonPlan is what one DaemonSet sync will do.
type daemonPlan struct {
	create []string      // node names needing a pod
	remove []*corev1.Pod // pods to delete gracefully
	force  []*corev1.Pod // pods of nodes that no longer exist
}

// manage creates missing daemon pods, deletes failed, surplus and
// misplaced ones, and otherwise advances a rolling update.
func (c *daemonSetController) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	plan := &daemonPlan{}
	known := map[string]bool{}
	for _, node := range nodes {
		known[node.Name] = true
		c.planNode(ds, node, byNode[node.Name], plan)
	}
	for name, pods := range byNode {
		if known[name] {
			continue
		}
		// No node will ever confirm these stopped (Kubernetes' pod
		// garbage collector does the same).
		plan.force = append(plan.force, pods...)
	}
	if len(plan.create)+len(plan.remove)+len(plan.force) == 0 && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		plan.remove = c.rollingUpdate(ds, nodes, byNode, hash)
	}
	return c.syncNodes(ctx, key, ds, plan, hash)
}

// planNode decides what one node needs.
func (c *daemonSetController) planNode(ds *appsv1.DaemonSet, node *corev1.Node, pods []*corev1.Pod, plan *daemonPlan) {
	shouldRun, shouldContinue := nodeShouldRun(node, ds)
	switch {
	case shouldRun && len(pods) == 0:
		plan.create = append(plan.create, node.Name)
	case shouldContinue:
		var running []*corev1.Pod
		for _, p := range pods {
			switch {
			case p.DeletionTimestamp != nil:
			case p.Status.Phase == corev1.PodFailed:
				if c.failedPodBackoff(ds, node.Name) {
					c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
					plan.remove = append(plan.remove, p)
				}
			case p.Status.Phase == corev1.PodSucceeded:
				plan.remove = append(plan.remove, p)
			default:
				running = append(running, p)
			}
		}
		if len(running) > 1 { // keep the oldest
			sort.SliceStable(running, func(i, j int) bool { return running[i].CreationTimestamp.Before(&running[j].CreationTimestamp) })
			plan.remove = append(plan.remove, running[1:]...)
		}
	default:
		for _, p := range pods {
			if p.DeletionTimestamp == nil {
				plan.remove = append(plan.remove, p)
			}
		}
	}
}

// failedPodBackoff reports whether a failed pod on node may be replaced
// now; otherwise it requeues the DaemonSet for when it may.
func (c *daemonSetController) failedPodBackoff(ds *appsv1.DaemonSet, node string) bool {
	id := string(ds.UID) + "/" + node
	now := c.clock.Now()
	if c.failedPod.IsInBackOffSinceUpdate(id, now) {
		c.addAfter(ds.Namespace+"/"+ds.Name, c.failedPod.Get(id))
		return false
	}
	c.failedPod.Next(id, now)
	return true
}

// rollingUpdate picks the old-template pods to delete now: unavailable
// ones at once, available ones while fewer than maxUnavailable nodes are
// without an available pod. Their replacements come in the next sync.
func (c *daemonSetController) rollingUpdate(ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string) []*corev1.Pod {
	desired := 0
	for _, n := range nodes {
		if run, _ := nodeShouldRun(n, ds); run {
			desired++
		}
	}
	maxUnavailable := intstr.FromInt32(1)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		maxUnavailable = *ru.MaxUnavailable
	}
	budget, _ := intstr.GetScaledValueFromIntOrPercent(&maxUnavailable, desired, true)
	budget = max(budget, 1)
	names := make([]string, 0, len(byNode))
	for name := range byNode {
		names = append(names, name)
	}
	sort.Strings(names)
	now := c.clock.Now()
	unavailable := 0
	var replace, candidates []*corev1.Pod
	for _, name := range names {
		newPod, oldPod, ok := updatedPodsOnNode(byNode[name], hash)
		switch {
		case !ok, newPod == nil && oldPod == nil, newPod != nil && oldPod != nil:
			unavailable++
		case newPod != nil:
			if ok, _ := isPodAvailable(newPod, ds.Spec.MinReadySeconds, now); !ok {
				unavailable++
			}
		default:
			if ok, _ := isPodAvailable(oldPod, ds.Spec.MinReadySeconds, now); !ok {
				replace = append(replace, oldPod)
			} else if unavailable < budget {
				candidates = append(candidates, oldPod)
			}
		}
	}
	n := min(max(budget-unavailable, 0), len(candidates))
	return append(replace, candidates[:n]...)
}

// updatedPodsOnNode returns the node's live pod of the current template
// and of an older one; ok is false when there are several of either.
func updatedPodsOnNode(pods []*corev1.Pod, hash string) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

// syncNodes carries out a plan, at most burst pods each way.
func (c *daemonSetController) syncNodes(ctx context.Context, key string, ds *appsv1.DaemonSet, plan *daemonPlan, hash string) error {
	create := plan.create[:min(len(plan.create), c.burst)]
	victims := append(plan.remove, plan.force...)
	victims = victims[:min(len(victims), c.burst)]
	if len(create)+len(victims) == 0 {
		return nil
	}
	keys := make([]string, len(victims))
	for i, p := range victims {
		keys[i] = podKey(p)
	}
	c.exp.expect(key, len(create), keys)
	ref := newControllerRef(ds, daemonSetKind.GroupVersion().String(), daemonSetKind.Kind)
	ok, createErr := slowStartBatch(len(create), func(i int) error { return c.createPod(ctx, ds, ref, create[i], hash) })
	for i := ok; i < len(create); i++ {
		c.exp.creationObserved(key)
	}
	forced := map[*corev1.Pod]bool{}
	for _, p := range plan.force {
		forced[p] = true
	}
	errs := make(chan error, len(victims))
	var wg sync.WaitGroup
	for _, p := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.deletePodOf(ctx, key, ds, p, forced[p]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if createErr != nil {
		return createErr
	}
	return <-errs
}

func (c *daemonSetController) createPod(ctx context.Context, ds *appsv1.DaemonSet, ref metav1.OwnerReference, node, hash string) error {
	pod := podFromTemplate(&ds.Spec.Template, ds.Namespace, ds.Name+"-", ref)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	pod.Spec.NodeName = node
	pod.Spec.Tolerations = daemonTolerations(pod.Spec.Tolerations)
	created, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !namespaceClosed(err) {
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return fmt.Errorf("creating daemon pod of %s/%s on %s: %w", ds.Namespace, ds.Name, node, err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// deletePodOf deletes a daemon pod; force skips the grace period, for a
// pod whose node is gone and will never confirm the stop.
func (c *daemonSetController) deletePodOf(ctx context.Context, key string, ds *appsv1.DaemonSet, p *corev1.Pod, force bool) error {
	opts := metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID))}
	if force {
		opts.GracePeriodSeconds = new(int64)
	}
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, opts)
	if err != nil {
		c.exp.deletionObserved(key, podKey(p))
		if isGone(err) {
			return nil
		}
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("deleting daemon pod %s: %w", podKey(p), err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
	return nil
}

// updateStatus counts nodes and pods into the DaemonSet's status.
func (c *daemonSetController) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	st := *ds.Status.DeepCopy()
	var desired, current, misscheduled, ready, available, updated int32
	var wait time.Duration
	now := c.clock.Now()
	for _, node := range nodes {
		shouldRun, _ := nodeShouldRun(node, ds)
		pod := oldestLive(byNode[node.Name])
		if !shouldRun {
			if pod != nil {
				misscheduled++
			}
			continue
		}
		desired++
		if pod == nil {
			continue
		}
		current++
		if isPodReady(pod) {
			ready++
		}
		if ok, w := isPodAvailable(pod, ds.Spec.MinReadySeconds, now); ok {
			available++
		} else if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
		if pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			updated++
		}
	}
	st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberMisscheduled = desired, current, misscheduled
	st.NumberReady, st.NumberAvailable, st.UpdatedNumberScheduled = ready, available, updated
	st.NumberUnavailable = desired - available
	st.ObservedGeneration = ds.Generation
	if wait > 0 {
		c.addAfter(ds.Namespace+"/"+ds.Name, wait+time.Second)
	}
	if apiequality.Semantic.DeepEqual(ds.Status, st) {
		return nil
	}
	out := ds.DeepCopy()
	out.Status = st
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}

// oldestLive returns the oldest pod not being deleted, or nil.
func oldestLive(pods []*corev1.Pod) *corev1.Pod {
	var best *corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if best == nil || p.CreationTimestamp.Before(&best.CreationTimestamp) {
			best = p
		}
	}
	return best
}
