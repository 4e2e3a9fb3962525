package scheduler

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

var rsKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// replicaSetController keeps spec.replicas active pods for every
// ReplicaSet, adopting matching orphans and releasing pods whose labels
// stop matching, and reports the counts in status.
type replicaSetController struct {
	*loop[string]
	client   kubernetes.Interface
	rsLister appslisters.ReplicaSetLister
	podInf   cache.SharedIndexInformer
	exp      *expectations
	recorder record.EventRecorder
	clock    clock.Clock
	burst    int
}

func newReplicaSetController(m *Manager) (*replicaSetController, error) {
	c := &replicaSetController{
		client: m.client, clock: m.cfg.Clock, burst: m.cfg.BurstReplicas,
		exp:      newExpectations(m.cfg.Clock, m.cfg.ExpectationsTimeout),
		recorder: m.recorder("replicaset-controller"),
	}
	c.loop = newLoop("replicaset", m.cfg.ReplicaSetWorkers, m.cfg.Clock, nil, m.log, c.sync)
	rsInf := m.factory.Apps().V1().ReplicaSets()
	podInf := m.factory.Core().V1().Pods()
	c.rsLister, c.podInf = rsInf.Lister(), m.informerFor("", "pods")
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addReplicaSet, UpdateFunc: c.updateReplicaSet, DeleteFunc: c.deleteReplicaSet,
	}); err != nil {
		return nil, fmt.Errorf("replicaset: %w", err)
	}
	pods := &podEvents{exp: c.exp, add: c.add, addAfter: c.addAfter, controllerOf: c.controllerOf,
		enqueueMatching: c.enqueueMatching, minReadySeconds: c.minReadySeconds}
	if _, err := podInf.Informer().AddEventHandler(pods.handlers()); err != nil {
		return nil, fmt.Errorf("replicaset: %w", err)
	}
	return c, nil
}

func (c *replicaSetController) enqueue(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.add(key)
	}
}

func (c *replicaSetController) addReplicaSet(obj interface{}) { c.enqueue(obj) }

func (c *replicaSetController) updateReplicaSet(_, cur interface{}) { c.enqueue(cur) }

func (c *replicaSetController) deleteReplicaSet(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.exp.forget(key)
		c.add(key)
	}
}

// controllerOf returns the key of the ReplicaSet controlling pod.
func (c *replicaSetController) controllerOf(pod *corev1.Pod) (string, bool) {
	return controllerKey(pod, rsKind.Kind, func(ns, name string) (*appsv1.ReplicaSet, error) {
		return c.rsLister.ReplicaSets(ns).Get(name)
	})
}

// enqueueMatching queues the ReplicaSets that could adopt an orphan pod.
func (c *replicaSetController) enqueueMatching(pod *corev1.Pod) {
	if list, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything()); err == nil {
		forMatching(list, func(rs *appsv1.ReplicaSet) *metav1.LabelSelector { return rs.Spec.Selector }, pod.Labels,
			func(rs *appsv1.ReplicaSet) { c.enqueue(rs) })
	}
}

// minReadySeconds returns the ReplicaSet's minReadySeconds (0 if gone).
func (c *replicaSetController) minReadySeconds(key string) int32 {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	if rs, err := c.rsLister.ReplicaSets(ns).Get(name); err == nil {
		return rs.Spec.MinReadySeconds
	}
	return 0
}

// sync reconciles one ReplicaSet.
func (c *replicaSetController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	} else if err != nil {
		return err
	}
	needsSync := c.exp.satisfied(key)
	pods, err := c.claimPods(ctx, rs)
	if err != nil {
		return err
	}
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, key, rs, pods)
	}
	status, wait := c.calculateStatus(rs, pods, manageErr)
	if err := c.updateStatus(ctx, rs, status); err != nil {
		return err
	}
	if manageErr == nil && wait > 0 {
		c.addAfter(key, wait)
	}
	return manageErr
}

// claimPods returns the active pods the ReplicaSet owns, after adopting
// and releasing.
func (c *replicaSetController) claimPods(ctx context.Context, rs *appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	cl, err := newClaimer(rs, rsKind, rs.Spec.Selector, strategicPatch(c.client.CoreV1().Pods(rs.Namespace).Patch),
		func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		})
	if err != nil {
		return nil, err
	}
	all, err := candidates[*corev1.Pod](c.podInf, rs)
	if err != nil {
		return nil, err
	}
	var active []*corev1.Pod
	for _, p := range all {
		if isPodActive(p) {
			active = append(active, p)
		}
	}
	return claim(ctx, cl, active)
}
