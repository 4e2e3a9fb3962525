package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// podScheduler binds pending pods to nodes. Each attempt runs the
// placement pipeline over the cache under its lock and assumes the pod on
// the chosen node before binding it through pods/{name}/binding. A pod
// that fits nowhere gets a FailedScheduling event and the PodScheduled
// condition False/Unschedulable, and waits with back-off; a node or pod
// change that may have made room retries it at once.
type podScheduler struct {
	*loop[string]
	name     string
	client   kubernetes.Interface
	pods     corelisters.PodLister
	cache    *clusterCache
	pipeline *Pipeline
	recorder record.EventRecorder
	clock    clock.Clock
	log      *slog.Logger

	mu            sync.Mutex
	unschedulable sets.Set[string] // pod keys waiting for room
}

func newPodScheduler(m *Manager) (*podScheduler, error) {
	c := &podScheduler{
		name: m.cfg.SchedulerName, client: m.client, clock: m.cfg.Clock, log: m.log.With("controller", "scheduler"),
		cache: newClusterCache(m.cfg.Clock, m.cfg.AssumedPodTTL), pipeline: DefaultPipeline(),
		recorder: m.recorder(m.cfg.SchedulerName), unschedulable: sets.New[string](),
	}
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[string](m.cfg.SchedulingBackoff, m.cfg.MaxSchedulingBackoff)
	c.loop = newLoop("scheduler", m.cfg.SchedulerWorkers, m.cfg.Clock, limiter, m.log, c.sync)
	podInf, nodeInf := m.factory.Core().V1().Pods(), m.factory.Core().V1().Nodes()
	c.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addNode, UpdateFunc: c.updateNode, DeleteFunc: c.deleteNode,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return c, nil
}

// responsible reports whether the pod is this scheduler's to place.
func (c *podScheduler) responsible(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.Spec.SchedulerName == c.name && pod.DeletionTimestamp == nil && !isPodTerminal(pod)
}

// retryUnschedulable queues every pod waiting for room, after a change
// that may have made some.
func (c *podScheduler) retryUnschedulable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.unschedulable {
		c.add(key)
	}
}

func (c *podScheduler) setUnschedulable(key string, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if waiting {
		c.unschedulable.Insert(key)
	} else {
		c.unschedulable.Delete(key)
	}
}

func (c *podScheduler) addPod(obj interface{}) {
	pod := obj.(*corev1.Pod)
	switch {
	case occupies(pod):
		c.cache.addPod(pod)
	case c.responsible(pod):
		c.add(podKey(pod))
	}
}

func (c *podScheduler) updatePod(old, cur interface{}) {
	oldPod, pod := old.(*corev1.Pod), cur.(*corev1.Pod)
	switch {
	case occupies(pod):
		c.cache.addPod(pod)
	case occupies(oldPod):
		c.cache.removePod(pod.UID) // finished: its resources are free
		c.retryUnschedulable()
	case c.responsible(pod):
		// Our own status writes change nothing placement looks at.
		if !apiequality.Semantic.DeepEqual(oldPod.Spec, pod.Spec) || !labels.Equals(oldPod.Labels, pod.Labels) {
			c.add(podKey(pod))
		}
	}
}

func (c *podScheduler) deletePod(obj interface{}) {
	pod, ok := untomb(obj).(*corev1.Pod)
	if !ok {
		return
	}
	c.cache.removePod(pod.UID)
	c.setUnschedulable(podKey(pod), false)
	if pod.Spec.NodeName != "" {
		c.retryUnschedulable()
	}
}

func (c *podScheduler) addNode(obj interface{}) {
	c.cache.setNode(obj.(*corev1.Node))
	c.retryUnschedulable()
}

// updateNode refreshes the node and retries waiting pods when something
// placement looks at changed (not for heartbeats).
func (c *podScheduler) updateNode(old, cur interface{}) {
	o, n := old.(*corev1.Node), cur.(*corev1.Node)
	c.cache.setNode(n)
	if nodeReady(o) != nodeReady(n) || o.Spec.Unschedulable != n.Spec.Unschedulable ||
		!labels.Equals(o.Labels, n.Labels) || !apiequality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		!apiequality.Semantic.DeepEqual(o.Status.Allocatable, n.Status.Allocatable) {
		c.retryUnschedulable()
	}
}

func (c *podScheduler) deleteNode(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.cache.removeNode(key)
	}
}

// sync makes one placement attempt for a pod.
func (c *podScheduler) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !c.responsible(pod)) {
		c.setUnschedulable(key, false)
		return nil
	} else if err != nil {
		return err
	}
	if c.cache.isAssumed(pod.UID) {
		return nil // bound a moment ago; the informer has not caught up
	}
	node, err := c.cache.place(c.pipeline, NewPodInfo(pod))
	var fit *FitError
	if errors.As(err, &fit) || errors.Is(err, ErrNoNodes) {
		c.setUnschedulable(key, true)
		c.reportUnschedulable(ctx, pod, err.Error())
		return errRetry
	} else if err != nil {
		return err
	}
	if err := c.bind(ctx, pod, node); err != nil {
		c.cache.forget(pod.UID)
		if isGone(err) {
			return nil // deleted, or bound by someone else
		}
		return err
	}
	c.cache.finishBinding(pod.UID)
	c.setUnschedulable(key, false)
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

func (c *podScheduler) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if err := c.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("binding %s to %s: %w", podKey(pod), node, err)
	}
	if cond := podCondition(pod, corev1.PodScheduled); cond != nil && cond.Status != corev1.ConditionTrue {
		c.clearUnschedulableCondition(ctx, pod)
	}
	return nil
}

// clearUnschedulableCondition rewrites PodScheduled after a binding of a
// pod that once was unschedulable. The binding subresource sets the
// status to True but keeps the old reason and message (see the report on
// api/strategy.go setPodScheduled); this fixes them. Best effort.
func (c *podScheduler) clearUnschedulableCondition(ctx context.Context, pod *corev1.Pod) {
	now := metav1.NewTime(c.clock.Now().Truncate(time.Second))
	patch, _ := json.Marshal(map[string]interface{}{"status": map[string]interface{}{"conditions": []map[string]interface{}{{
		"type": corev1.PodScheduled, "status": corev1.ConditionTrue, "reason": nil, "message": nil, "lastTransitionTime": now,
	}}}})
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		c.log.Debug("clearing PodScheduled reason", "pod", podKey(pod), "err", err)
	}
}

// reportUnschedulable records why the pod fits nowhere: an event (the
// recorder aggregates repeats) and the PodScheduled condition, written
// only when it changes.
func (c *podScheduler) reportUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	c.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
	cond := podCondition(pod, corev1.PodScheduled)
	if cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable && cond.Message == msg {
		return
	}
	out := pod.DeepCopy()
	now := metav1.NewTime(c.clock.Now().Truncate(time.Second))
	next := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, LastTransitionTime: now}
	if cur := podCondition(out, corev1.PodScheduled); cur != nil {
		if cur.Status == corev1.ConditionFalse {
			next.LastTransitionTime = cur.LastTransitionTime
		}
		*cur = next
	} else {
		out.Status.Conditions = append(out.Status.Conditions, next)
	}
	if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		c.log.Debug("recording PodScheduled=False", "pod", podKey(pod), "err", err)
	}
}
