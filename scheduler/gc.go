package scheduler

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffhq/skiff/proto"
)

// gcItem names one object of one kind.
type gcItem struct {
	kind      *proto.Kind
	namespace string
	name      string
}

func (i gcItem) String() string { return i.kind.Resource + "/" + proto.Key(i.namespace, i.name) }

// garbageCollector deletes objects whose owners are gone and carries out
// the orphan and foregroundDeletion finalizers, like Kubernetes' garbage
// collector. It works from the shared informers of every kind (except
// Event): an index by owner UID finds an object's dependents, an index by
// UID finds its owners. An owner missing from the cache is read from the
// API before its dependents are judged orphaned, so informer lag never
// deletes anything.
type garbageCollector struct {
	*loop[gcItem]
	dyn       dynamic.Interface
	informers map[*proto.Kind]cache.SharedIndexInformer
}

func newGarbageCollector(m *Manager) (*garbageCollector, error) {
	g := &garbageCollector{dyn: m.dynamic, informers: m.informers}
	g.loop = newLoop("garbagecollector", m.cfg.GCWorkers, m.cfg.Clock, nil, m.log, g.sync)
	for kind, inf := range m.informers {
		h := cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj interface{}) { g.addObject(kind, obj) },
			UpdateFunc: func(old, cur interface{}) { g.updateObject(kind, old, cur) },
			DeleteFunc: func(obj interface{}) { g.deleteObject(kind, obj) },
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("garbagecollector: %w", err)
		}
	}
	return g, nil
}

func itemOf(kind *proto.Kind, m metav1.Object) gcItem {
	return gcItem{kind: kind, namespace: m.GetNamespace(), name: m.GetName()}
}

func hasFinalizer(m metav1.Object, name string) bool {
	for _, f := range m.GetFinalizers() {
		if f == name {
			return true
		}
	}
	return false
}

// collecting reports whether m is being deleted with one of the
// finalizers the garbage collector carries out.
func collecting(m metav1.Object) bool {
	return m.GetDeletionTimestamp() != nil &&
		(hasFinalizer(m, metav1.FinalizerOrphanDependents) || hasFinalizer(m, metav1.FinalizerDeleteDependents))
}

func (g *garbageCollector) addObject(kind *proto.Kind, obj interface{}) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	if len(m.GetOwnerReferences()) > 0 || collecting(m) {
		g.add(itemOf(kind, m))
	}
}

func (g *garbageCollector) updateObject(kind *proto.Kind, old, cur interface{}) {
	om, err1 := meta.Accessor(old)
	m, err2 := meta.Accessor(cur)
	if err1 != nil || err2 != nil || om.GetResourceVersion() == m.GetResourceVersion() {
		return
	}
	refsChanged := !apiEqualRefs(om.GetOwnerReferences(), m.GetOwnerReferences())
	if refsChanged || collecting(m) {
		g.add(itemOf(kind, m))
	}
	if refsChanged {
		// An owner waiting for its dependents may have lost one.
		kept := map[types.UID]bool{}
		for _, r := range m.GetOwnerReferences() {
			kept[r.UID] = true
		}
		for _, r := range om.GetOwnerReferences() {
			if !kept[r.UID] {
				g.enqueueOwner(r, m.GetNamespace())
			}
		}
	}
}

func (g *garbageCollector) deleteObject(kind *proto.Kind, obj interface{}) {
	m, err := meta.Accessor(untomb(obj))
	if err != nil {
		return
	}
	for _, dep := range g.dependents(m.GetUID()) {
		g.add(dep.item)
	}
	for _, r := range m.GetOwnerReferences() {
		g.enqueueOwner(r, m.GetNamespace())
	}
}

// enqueueOwner queues a cached owner that is waiting for dependents.
func (g *garbageCollector) enqueueOwner(ref metav1.OwnerReference, namespace string) {
	kind, owner := g.cachedOwner(ref)
	if owner != nil && collecting(owner) {
		g.add(itemOf(kind, owner))
	}
}

func apiEqualRefs(a, b []metav1.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UID != b[i].UID || !boolEq(a[i].BlockOwnerDeletion, b[i].BlockOwnerDeletion) {
			return false
		}
	}
	return true
}

func boolEq(a, b *bool) bool { return (a != nil && *a) == (b != nil && *b) }

// sync handles one object: an owner being deleted with the orphan or
// foregroundDeletion finalizer, or a dependent whose owners may be gone.
func (g *garbageCollector) sync(ctx context.Context, item gcItem) error {
	inf, ok := g.informers[item.kind]
	if !ok {
		return nil
	}
	obj, exists, err := inf.GetIndexer().GetByKey(proto.Key(item.namespace, item.name))
	if err != nil || !exists {
		return err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	if m.GetDeletionTimestamp() != nil {
		switch {
		case hasFinalizer(m, metav1.FinalizerOrphanDependents):
			return g.orphanDependents(ctx, item, m)
		case hasFinalizer(m, metav1.FinalizerDeleteDependents):
			return g.deleteDependentsFirst(ctx, item, m)
		}
		return nil
	}
	if len(m.GetOwnerReferences()) == 0 {
		return nil
	}
	return g.checkOwners(ctx, item, m)
}

// verdict is what the garbage collector does to a dependent.
type verdict struct {
	drop   []types.UID // owner references to remove (a live owner remains)
	delete bool
	policy metav1.DeletionPropagation
}

// checkOwners deletes a dependent none of whose owners exists any more,
// drops references to vanished owners when a live one remains, and
// deletes dependents of owners being deleted in the foreground. The
// verdict from the cache is confirmed on a fresh read of the dependent
// (the cache may still show a reference already removed, by the orphan
// finalizer for instance), and the write is conditional on that read.
func (g *garbageCollector) checkOwners(ctx context.Context, item gcItem, m metav1.Object) error {
	v, err := g.judge(ctx, item, m)
	if err != nil || (!v.delete && len(v.drop) == 0) {
		return err
	}
	live, err := g.resource(item).Get(ctx, item.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading %s: %w", item, err)
	}
	if live.GetUID() != m.GetUID() || live.GetDeletionTimestamp() != nil {
		return nil
	}
	if v, err = g.judge(ctx, item, live); err != nil {
		return err
	}
	if v.delete {
		return g.deleteItem(ctx, item, live.GetUID(), live.GetResourceVersion(), v.policy)
	}
	if len(v.drop) > 0 {
		return g.removeOwnerRefs(ctx, item, live.GetUID(), v.drop)
	}
	return nil
}

// judge decides a dependent's fate from the state of its owners.
func (g *garbageCollector) judge(ctx context.Context, item gcItem, m metav1.Object) (verdict, error) {
	var solid, stale []types.UID
	waiting := false
	for _, ref := range m.GetOwnerReferences() {
		st, err := g.ownerState(ctx, item, ref)
		if err != nil {
			return verdict{}, err
		}
		switch st {
		case ownerSolid:
			solid = append(solid, ref.UID)
		case ownerWaiting:
			waiting = true
			stale = append(stale, ref.UID)
		default:
			stale = append(stale, ref.UID)
		}
	}
	switch {
	case len(m.GetOwnerReferences()) == 0:
		return verdict{}, nil
	case len(solid) > 0:
		return verdict{drop: stale}, nil
	case waiting && len(g.dependents(m.GetUID())) > 0:
		return verdict{delete: true, policy: metav1.DeletePropagationForeground}, nil
	}
	v := verdict{delete: true, policy: metav1.DeletePropagationBackground}
	switch {
	case hasFinalizer(m, metav1.FinalizerOrphanDependents):
		v.policy = metav1.DeletePropagationOrphan
	case hasFinalizer(m, metav1.FinalizerDeleteDependents):
		v.policy = metav1.DeletePropagationForeground
	}
	return v, nil
}

// orphanDependents removes the owner from every dependent's
// ownerReferences, then its orphan finalizer, which lets it go.
func (g *garbageCollector) orphanDependents(ctx context.Context, item gcItem, m metav1.Object) error {
	for _, dep := range g.dependents(m.GetUID()) {
		if err := g.removeOwnerRefs(ctx, dep.item, dep.meta.GetUID(), []types.UID{m.GetUID()}); err != nil {
			return err
		}
	}
	return g.removeFinalizer(ctx, item, metav1.FinalizerOrphanDependents)
}

// deleteDependentsFirst deletes every dependent of an owner being deleted
// in the foreground, and removes its finalizer once no dependent that
// blocks owner deletion is left.
func (g *garbageCollector) deleteDependentsFirst(ctx context.Context, item gcItem, m metav1.Object) error {
	blocking := 0
	for _, dep := range g.dependents(m.GetUID()) {
		for _, r := range dep.meta.GetOwnerReferences() {
			if r.UID == m.GetUID() && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
				blocking++
			}
		}
		if dep.meta.GetDeletionTimestamp() == nil {
			g.add(dep.item)
		}
	}
	if blocking > 0 {
		return nil // the last dependent's deletion queues the owner again
	}
	return g.removeFinalizer(ctx, item, metav1.FinalizerDeleteDependents)
}
