package scheduler

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
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
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod,
	}); err != nil {
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

func (c *replicaSetController) addPod(obj interface{}) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod) // restarted with a pod already being deleted
		return
	}
	if key, ok := c.controllerOf(pod); ok {
		c.exp.creationObserved(key)
		c.add(key)
		return
	}
	if metav1.GetControllerOfNoCopy(pod) == nil {
		c.enqueueMatching(pod)
	}
}

func (c *replicaSetController) updatePod(old, cur interface{}) {
	oldPod, curPod := old.(*corev1.Pod), cur.(*corev1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return // resync: pods are not resynced
	}
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		// A graceful deletion is the deletion a sync expects.
		c.deletePod(curPod)
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldPod), metav1.GetControllerOfNoCopy(curPod)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if key, ok := c.controllerOf(oldPod); ok {
			c.add(key)
		}
	}
	if key, ok := c.controllerOf(curPod); ok {
		c.add(key)
		c.requeueForAvailability(key, oldPod, curPod)
		return
	}
	if curRef == nil && (!labels.Equals(oldPod.Labels, curPod.Labels) || oldRef != nil) {
		c.enqueueMatching(curPod)
	}
}

// requeueForAvailability queues the ReplicaSet again when a pod that just
// became ready turns available after minReadySeconds.
func (c *replicaSetController) requeueForAvailability(key string, oldPod, curPod *corev1.Pod) {
	if isPodReady(oldPod) || !isPodReady(curPod) {
		return
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	rs, err := c.rsLister.ReplicaSets(ns).Get(name)
	if err == nil && rs.Spec.MinReadySeconds > 0 {
		c.addAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
	}
}

func (c *replicaSetController) deletePod(obj interface{}) {
	pod, ok := untomb(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := c.controllerOf(pod); ok {
		c.exp.deletionObserved(key, podKey(pod))
		c.add(key)
	}
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
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("replicaset %s/%s: bad selector: %w", rs.Namespace, rs.Name, err)
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
	podClient := c.client.CoreV1().Pods(rs.Namespace)
	cl := &claimer{
		owner: rs, ref: newControllerRef(rs, rsKind.GroupVersion().String(), rsKind.Kind), selector: sel,
		patch: func(ctx context.Context, name string, data []byte) error {
			_, err := podClient.Patch(ctx, name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
			return err
		},
		canAdopt: recheckOwner(rs, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		}),
	}
	return claim(ctx, cl, active)
}
