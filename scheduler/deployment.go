package scheduler

import (
	"context"
	"fmt"

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

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// deploymentController rolls Deployments out through ReplicaSets, as the
// Kubernetes deployment controller does.
type deploymentController struct {
	*loop[string]
	client   kubernetes.Interface
	dLister  appslisters.DeploymentLister
	rsLister appslisters.ReplicaSetLister
	rsInf    cache.SharedIndexInformer
	podInf   cache.SharedIndexInformer
	recorder record.EventRecorder
	clock    clock.Clock
}

// rollout is the state of one Deployment sync: a private copy of the
// Deployment, kept current after each write, and its ReplicaSets, replaced
// by the API's answer whenever the sync writes one.
type rollout struct {
	d      *appsv1.Deployment
	newRS  *appsv1.ReplicaSet
	oldRSs []*appsv1.ReplicaSet
}

// all returns the old ReplicaSets and the new one, if any.
func (r *rollout) all() []*appsv1.ReplicaSet {
	out := append([]*appsv1.ReplicaSet(nil), r.oldRSs...)
	if r.newRS != nil {
		out = append(out, r.newRS)
	}
	return out
}

// replace swaps in the written version of a ReplicaSet.
func (r *rollout) replace(rs *appsv1.ReplicaSet) {
	if r.newRS != nil && r.newRS.UID == rs.UID {
		r.newRS = rs
		return
	}
	for i := range r.oldRSs {
		if r.oldRSs[i].UID == rs.UID {
			r.oldRSs[i] = rs
		}
	}
}

func newDeploymentController(m *Manager) (*deploymentController, error) {
	c := &deploymentController{client: m.client, clock: m.cfg.Clock, recorder: m.recorder("deployment-controller")}
	c.loop = newLoop("deployment", m.cfg.DeploymentWorkers, m.cfg.Clock, nil, m.log, c.sync)
	dInf, rsInf, podInf := m.factory.Apps().V1().Deployments(), m.factory.Apps().V1().ReplicaSets(), m.factory.Core().V1().Pods()
	c.dLister, c.rsLister = dInf.Lister(), rsInf.Lister()
	c.rsInf, c.podInf = m.informerFor("apps", "replicasets"), m.informerFor("", "pods")
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{dInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addDeployment, UpdateFunc: c.updateDeployment, DeleteFunc: c.deleteDeployment}},
		{rsInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addReplicaSet, UpdateFunc: c.updateReplicaSet, DeleteFunc: c.deleteReplicaSet}},
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{DeleteFunc: c.deletePod}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("deployment: %w", err)
		}
	}
	return c, nil
}

func (c *deploymentController) enqueue(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.add(key)
	}
}

func (c *deploymentController) addDeployment(obj interface{}) { c.enqueue(obj) }

func (c *deploymentController) updateDeployment(_, cur interface{}) { c.enqueue(cur) }

func (c *deploymentController) deleteDeployment(obj interface{}) { c.enqueue(obj) }

// deploymentFor returns the Deployment controlling rs, checking the UID.
func (c *deploymentController) deploymentFor(rs *appsv1.ReplicaSet) *appsv1.Deployment {
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil || ref.Kind != deploymentKind.Kind {
		return nil
	}
	d, err := c.dLister.Deployments(rs.Namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueMatching queues the Deployments that could adopt an orphan RS.
func (c *deploymentController) enqueueMatching(rs *appsv1.ReplicaSet) {
	if list, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything()); err == nil {
		forMatching(list, func(d *appsv1.Deployment) *metav1.LabelSelector { return d.Spec.Selector }, rs.Labels,
			func(d *appsv1.Deployment) { c.enqueue(d) })
	}
}

func (c *deploymentController) addReplicaSet(obj interface{}) {
	rs := obj.(*appsv1.ReplicaSet)
	if d := c.deploymentFor(rs); d != nil {
		c.enqueue(d)
	} else if metav1.GetControllerOfNoCopy(rs) == nil {
		c.enqueueMatching(rs)
	}
}

func (c *deploymentController) updateReplicaSet(old, cur interface{}) {
	oldRS, curRS := old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet)
	if oldRS.ResourceVersion == curRS.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldRS), metav1.GetControllerOfNoCopy(curRS)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if d := c.deploymentFor(oldRS); d != nil {
			c.enqueue(d)
		}
	}
	if d := c.deploymentFor(curRS); d != nil {
		c.enqueue(d)
		return
	}
	if curRef == nil && (oldRef != nil || !labels.Equals(oldRS.Labels, curRS.Labels)) {
		c.enqueueMatching(curRS)
	}
}

func (c *deploymentController) deleteReplicaSet(obj interface{}) {
	if rs, ok := untomb(obj).(*appsv1.ReplicaSet); ok {
		if d := c.deploymentFor(rs); d != nil {
			c.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate Deployment waiting for its old pods to go.
func (c *deploymentController) deletePod(obj interface{}) {
	pod, ok := untomb(obj).(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != rsKind.Kind {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.deploymentFor(rs); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

// sync reconciles one Deployment.
func (c *deploymentController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	d := cached.DeepCopy()
	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused || isScalingEvent(d, rsList) {
		return c.syncScale(ctx, d, rsList)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.rolloutRecreate(ctx, d, rsList)
	}
	return c.rolloutRolling(ctx, d, rsList)
}

// claimReplicaSets returns the ReplicaSets the Deployment owns, after
// adopting and releasing.
func (c *deploymentController) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	cl, err := newClaimer(d, deploymentKind, d.Spec.Selector, strategicPatch(c.client.AppsV1().ReplicaSets(d.Namespace).Patch),
		func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		})
	if err != nil {
		return nil, err
	}
	all, err := candidates[*appsv1.ReplicaSet](c.rsInf, d)
	if err != nil {
		return nil, err
	}
	return claim(ctx, cl, all)
}

// podsByReplicaSet returns the pods each ReplicaSet controls, by UID.
func (c *deploymentController) podsByReplicaSet(rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	out := map[types.UID][]*corev1.Pod{}
	for _, rs := range rsList {
		objs, err := c.podInf.GetIndexer().ByIndex(indexOwner, string(rs.UID))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok && metav1.IsControlledBy(p, rs) {
				out[rs.UID] = append(out[rs.UID], p)
			}
		}
	}
	return out, nil
}

// writeStatus stores d.Status and refreshes d from the answer.
func (c *deploymentController) writeStatus(ctx context.Context, d *appsv1.Deployment) error {
	out, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	d.ObjectMeta, d.Status = out.ObjectMeta, out.Status
	return nil
}
