package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/skiffhq/skiff/proto"
)

// ownerState classifies one ownerReference of a dependent.
type ownerState int

const (
	ownerSolid   ownerState = iota // exists and is not being deleted in the foreground
	ownerGone                      // no object with that UID
	ownerWaiting                   // being deleted in the foreground: dependents go first
)

// dependent is an object found through the owner index.
type dependent struct {
	item gcItem
	meta metav1.Object
}

// dependents returns the cached objects that name uid as an owner.
func (g *garbageCollector) dependents(uid types.UID) []dependent {
	var out []dependent
	for kind, inf := range g.informers {
		objs, err := inf.GetIndexer().ByIndex(indexOwner, string(uid))
		if err != nil {
			continue
		}
		for _, o := range objs {
			if m, err := meta.Accessor(o); err == nil {
				out = append(out, dependent{item: itemOf(kind, m), meta: m})
			}
		}
	}
	return out
}

// cachedOwner finds the owner a reference names in the informer cache.
func (g *garbageCollector) cachedOwner(ref metav1.OwnerReference) (*proto.Kind, metav1.Object) {
	kind, ok := ownerKind(ref)
	if !ok {
		return nil, nil
	}
	inf, ok := g.informers[kind]
	if !ok {
		return kind, nil
	}
	objs, err := inf.GetIndexer().ByIndex(indexUID, string(ref.UID))
	if err != nil || len(objs) == 0 {
		return kind, nil
	}
	m, err := meta.Accessor(objs[0])
	if err != nil {
		return kind, nil
	}
	return kind, m
}

func ownerKind(ref metav1.OwnerReference) (*proto.Kind, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, false
	}
	return proto.KindFor(gv.WithKind(ref.Kind))
}

// ownerState looks the owner up in the cache and, when it is missing
// there, in the API: only an authoritative "not found" (or another UID
// under that name) makes an owner gone.
func (g *garbageCollector) ownerState(ctx context.Context, item gcItem, ref metav1.OwnerReference) (ownerState, error) {
	kind, owner := g.cachedOwner(ref)
	if kind == nil {
		return ownerSolid, nil // a kind skiff does not serve: never collect
	}
	ns := ""
	if kind.Namespaced {
		if item.namespace == "" {
			return ownerGone, nil // a cluster-scoped object cannot have a namespaced owner
		}
		ns = item.namespace
	}
	if owner != nil && owner.GetNamespace() != ns {
		owner = nil // a namespaced owner must be in the dependent's namespace
	}
	if owner == nil {
		live, err := g.dyn.Resource(kind.GroupVersionResource()).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return ownerGone, nil
		case err != nil:
			return ownerSolid, fmt.Errorf("looking up owner %s %s of %s: %w", ref.Kind, ref.Name, item, err)
		case live.GetUID() != ref.UID:
			return ownerGone, nil
		}
		owner = live
	}
	if owner.GetDeletionTimestamp() != nil && hasFinalizer(owner, metav1.FinalizerDeleteDependents) {
		return ownerWaiting, nil
	}
	return ownerSolid, nil
}

func (g *garbageCollector) resource(item gcItem) dynamic.ResourceInterface {
	return g.dyn.Resource(item.kind.GroupVersionResource()).Namespace(item.namespace)
}

// deleteItem deletes a dependent, only if it is still the version judged;
// if it changed since, the conflict makes the queue judge it again.
func (g *garbageCollector) deleteItem(ctx context.Context, item gcItem, uid types.UID, rv string, policy metav1.DeletionPropagation) error {
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}, PropagationPolicy: &policy}
	err := g.resource(item).Delete(ctx, item.name, opts)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", item, err)
	}
	return nil
}

// removeOwnerRefs drops the references to owners from a dependent with a
// strategic merge patch; the uid in the patch makes it fail on a namesake.
func (g *garbageCollector) removeOwnerRefs(ctx context.Context, item gcItem, uid types.UID, owners []types.UID) error {
	refs := make([]map[string]interface{}, len(owners))
	for i, o := range owners {
		refs[i] = map[string]interface{}{"$patch": "delete", "uid": o}
	}
	patch, err := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{"ownerReferences": refs, "uid": uid}})
	if err != nil {
		return err
	}
	_, err = g.resource(item).Patch(ctx, item.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !isGone(err) {
		return fmt.Errorf("removing owner references from %s: %w", item, err)
	}
	return nil
}

// removeFinalizer removes one finalizer from an object, with its current
// resourceVersion as precondition, retrying on conflict.
func (g *garbageCollector) removeFinalizer(ctx context.Context, item gcItem, name string) error {
	res := g.resource(item)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := res.Get(ctx, item.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var keep []string
		for _, f := range cur.GetFinalizers() {
			if f != name {
				keep = append(keep, f)
			}
		}
		if len(keep) == len(cur.GetFinalizers()) {
			return nil
		}
		patch, err := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{
			"finalizers": keep, "resourceVersion": cur.GetResourceVersion(),
		}})
		if err != nil {
			return err
		}
		_, err = res.Patch(ctx, item.name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s from %s: %w", name, item, err)
	}
	return nil
}
