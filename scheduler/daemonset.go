package scheduler

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

var daemonSetKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// daemonSetController runs one pod of every DaemonSet on each eligible
// node, created already bound (spec.nodeName set), and replaces pods of an
// older template at most maxUnavailable at a time.
type daemonSetController struct {
	*loop[string]
	client    kubernetes.Interface
	dsLister  appslisters.DaemonSetLister
	nodes     corelisters.NodeLister
	podInf    cache.SharedIndexInformer
	revInf    cache.SharedIndexInformer // ControllerRevisions
	exp       *expectations
	recorder  record.EventRecorder
	clock     clock.Clock
	burst     int
	failedPod *flowcontrol.Backoff // per DaemonSet and node, against kill loops
}

func newDaemonSetController(m *Manager) (*daemonSetController, error) {
	c := &daemonSetController{
		client: m.client, clock: m.cfg.Clock, burst: m.cfg.BurstReplicas,
		exp:       newExpectations(m.cfg.Clock, m.cfg.ExpectationsTimeout),
		recorder:  m.recorder("daemonset-controller"),
		failedPod: flowcontrol.NewBackOff(time.Second, 15*time.Minute),
	}
	c.loop = newLoop("daemonset", m.cfg.DaemonSetWorkers, m.cfg.Clock, nil, m.log, c.sync)
	dsInf, nodeInf, podInf := m.factory.Apps().V1().DaemonSets(), m.factory.Core().V1().Nodes(), m.factory.Core().V1().Pods()
	c.dsLister, c.nodes, c.podInf = dsInf.Lister(), nodeInf.Lister(), m.informerFor("", "pods")
	c.revInf = m.informerFor("apps", "controllerrevisions")
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{dsInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addDaemonSet, UpdateFunc: c.updateDaemonSet, DeleteFunc: c.deleteDaemonSet}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addNode, UpdateFunc: c.updateNode, DeleteFunc: c.deleteNode}},
		{podInf.Informer(), (&podEvents{exp: c.exp, add: c.add, addAfter: c.addAfter, controllerOf: c.controllerOf,
			enqueueMatching: c.enqueueMatching, minReadySeconds: c.minReadySeconds}).handlers()},
		{c.revInf, cache.ResourceEventHandlerFuncs{AddFunc: c.revisionEvent, DeleteFunc: c.revisionEvent}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("daemonset: %w", err)
		}
	}
	return c, nil
}

func (c *daemonSetController) enqueue(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.add(key)
	}
}

func (c *daemonSetController) enqueueAll() {
	list, err := c.dsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range list {
		c.enqueue(ds)
	}
}

func (c *daemonSetController) addDaemonSet(obj interface{}) { c.enqueue(obj) }

func (c *daemonSetController) updateDaemonSet(_, cur interface{}) { c.enqueue(cur) }

func (c *daemonSetController) deleteDaemonSet(obj interface{}) {
	if key, ok := objectKey(obj); ok {
		c.exp.forget(key)
	}
}

func (c *daemonSetController) addNode(interface{}) { c.enqueueAll() }

// updateNode reacts to the node changes that decide eligibility.
func (c *daemonSetController) updateNode(old, cur interface{}) {
	o, n := old.(*corev1.Node), cur.(*corev1.Node)
	if nodeReady(o) == nodeReady(n) && o.Spec.Unschedulable == n.Spec.Unschedulable &&
		labels.Equals(o.Labels, n.Labels) && apiequality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) {
		return
	}
	c.enqueueAll()
}

func (c *daemonSetController) deleteNode(interface{}) { c.enqueueAll() }

// controllerOf returns the key of the DaemonSet controlling pod.
func (c *daemonSetController) controllerOf(pod *corev1.Pod) (string, bool) {
	return controllerKey(pod, daemonSetKind.Kind, func(ns, name string) (*appsv1.DaemonSet, error) {
		return c.dsLister.DaemonSets(ns).Get(name)
	})
}

// enqueueMatching queues the DaemonSets that could adopt an orphan pod.
func (c *daemonSetController) enqueueMatching(pod *corev1.Pod) {
	if list, err := c.dsLister.DaemonSets(pod.Namespace).List(labels.Everything()); err == nil {
		forMatching(list, func(ds *appsv1.DaemonSet) *metav1.LabelSelector { return ds.Spec.Selector }, pod.Labels,
			func(ds *appsv1.DaemonSet) { c.enqueue(ds) })
	}
}

// minReadySeconds returns the DaemonSet's minReadySeconds (0 if gone).
func (c *daemonSetController) minReadySeconds(key string) int32 {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	if ds, err := c.dsLister.DaemonSets(ns).Get(name); err == nil {
		return ds.Spec.MinReadySeconds
	}
	return 0
}

// sync reconciles one DaemonSet.
func (c *daemonSetController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ds, err := c.dsLister.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	} else if err != nil {
		return err
	}
	if ds.DeletionTimestamp != nil {
		return nil // the garbage collector removes its pods
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	byNode, err := c.podsByNode(ctx, ds)
	if err != nil {
		return err
	}
	hash := computeHash(&ds.Spec.Template, ds.Status.CollisionCount)
	if err := c.syncHistory(ctx, ds, hash, byNode); err != nil {
		return err
	}
	var manageErr error
	if c.exp.satisfied(key) {
		manageErr = c.manage(ctx, key, ds, nodes, byNode, hash)
	}
	if err := c.updateStatus(ctx, ds, nodes, byNode, hash); err != nil {
		return err
	}
	return manageErr
}

// podsByNode claims the DaemonSet's pods and groups them by node.
func (c *daemonSetController) podsByNode(ctx context.Context, ds *appsv1.DaemonSet) (map[string][]*corev1.Pod, error) {
	cl, err := newClaimer(ds, daemonSetKind, ds.Spec.Selector, strategicPatch(c.client.CoreV1().Pods(ds.Namespace).Patch),
		func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		})
	if err != nil {
		return nil, err
	}
	all, err := candidates[*corev1.Pod](c.podInf, ds)
	if err != nil {
		return nil, err
	}
	owned, err := claim(ctx, cl, all)
	if err != nil {
		return nil, err
	}
	out := map[string][]*corev1.Pod{}
	for _, p := range owned {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
	}
	return out, nil
}
