package scheduler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffhq/skiff/proto"
)

// namespaceController empties namespaces that are being deleted: it
// deletes every namespaced object in them (pods through normal graceful
// deletion, so their nodes stop them), and once nothing is left removes
// the "kubernetes" finalizer, which lets the store drop the namespace.
type namespaceController struct {
	*loop[string]
	client  kubernetes.Interface
	dyn     dynamic.Interface
	lister  corelisters.NamespaceLister
	recheck time.Duration
}

func newNamespaceController(m *Manager) (*namespaceController, error) {
	c := &namespaceController{client: m.client, dyn: m.dynamic, recheck: m.cfg.NamespaceRecheck}
	c.loop = newLoop("namespace", m.cfg.NamespaceWorkers, m.cfg.Clock, nil, m.log, c.sync)
	inf := m.factory.Core().V1().Namespaces()
	c.lister = inf.Lister()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addNamespace, UpdateFunc: c.updateNamespace,
	}); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	return c, nil
}

func (c *namespaceController) addNamespace(obj interface{}) {
	if ns := obj.(*corev1.Namespace); ns.DeletionTimestamp != nil {
		c.add(ns.Name)
	}
}

func (c *namespaceController) updateNamespace(_, cur interface{}) { c.addNamespace(cur) }

// sync empties and finalizes one terminating namespace.
func (c *namespaceController) sync(ctx context.Context, name string) error {
	ns, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil || !hasNamespaceFinalizer(ns) {
		return nil
	}
	remaining, deleted, err := c.deleteContent(ctx, name)
	switch {
	case err != nil:
		return err
	case remaining == 0:
		return c.finalize(ctx, name)
	case deleted > 0:
		c.add(name) // look again now: most deletions are immediate
	default:
		c.addAfter(name, c.recheck) // only objects still terminating
	}
	return nil
}

func hasNamespaceFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return true
		}
	}
	return false
}

// deleteContent deletes what is left in the namespace and returns how
// many objects it found and how many of them it deleted. Objects already
// being deleted are left to their finalizers and nodes; deleting them
// again would only cost writes.
func (c *namespaceController) deleteContent(ctx context.Context, ns string) (remaining, deleted int, err error) {
	for _, kind := range proto.Kinds() {
		if !kind.Namespaced {
			continue
		}
		res := c.dyn.Resource(kind.GroupVersionResource()).Namespace(ns)
		list, err := res.List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, fmt.Errorf("listing %s in namespace %s: %w", kind.Resource, ns, err)
		}
		remaining += len(list.Items)
		for _, obj := range list.Items {
			if obj.GetDeletionTimestamp() != nil {
				continue
			}
			uid := obj.GetUID()
			err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !isGone(err) {
				return 0, 0, fmt.Errorf("deleting %s %s/%s: %w", kind.Resource, ns, obj.GetName(), err)
			}
			deleted++
		}
	}
	return remaining, deleted, nil
}

// finalize removes the kubernetes finalizer through namespaces/finalize.
func (c *namespaceController) finalize(ctx context.Context, name string) error {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading namespace %s: %w", name, err)
	}
	var keep []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			keep = append(keep, f)
		}
	}
	ns.Spec.Finalizers = keep
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace %s: %w", name, err)
	}
	return nil
}
