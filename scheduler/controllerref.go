package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// patcher applies a strategic merge patch to one named object.
type patcher func(ctx context.Context, name string, patch []byte) error

// claimer implements Kubernetes' ControllerRefManager: it decides which of
// a list of candidate objects a controller owns, adopting matching orphans
// and releasing owned objects whose labels no longer match.
type claimer struct {
	owner    metav1.Object
	ref      metav1.OwnerReference
	selector labels.Selector
	patch    patcher
	// canAdopt is checked once, before the first adoption: the owner must
	// still exist with the same UID and not be being deleted (a fresh
	// read, since the cached owner may be stale).
	canAdopt func(ctx context.Context) error
	checked  bool
	adoptErr error
}

// newClaimer builds the claimer of an owner of kind gvk with the given
// selector; patch changes a dependent, getOwner reads the owner afresh.
func newClaimer(owner metav1.Object, gvk schema.GroupVersionKind, selector *metav1.LabelSelector, patch patcher, getOwner func(ctx context.Context) (metav1.Object, error)) (*claimer, error) {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: bad selector: %w", strings.ToLower(gvk.Kind), owner.GetNamespace(), owner.GetName(), err)
	}
	return &claimer{
		owner: owner, ref: newControllerRef(owner, gvk.GroupVersion().String(), gvk.Kind), selector: sel,
		patch: patch, canAdopt: recheckOwner(owner, getOwner),
	}, nil
}

// strategicPatch makes a patcher from a typed client's Patch method.
func strategicPatch[T any](patch func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)) patcher {
	return func(ctx context.Context, name string, data []byte) error {
		_, err := patch(ctx, name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
		return err
	}
}

// claim returns the objects the owner controls after adoption and release.
func claim[T metav1.Object](ctx context.Context, c *claimer, objs []T) ([]T, error) {
	var owned []T
	var errs []error
	for _, o := range objs {
		ok, err := c.claimOne(ctx, o)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			owned = append(owned, o)
		}
	}
	if len(errs) > 0 {
		return owned, fmt.Errorf("claiming dependents of %s: %w", c.owner.GetName(), errs[0])
	}
	return owned, nil
}

func (c *claimer) claimOne(ctx context.Context, o metav1.Object) (bool, error) {
	matches := c.selector.Matches(labels.Set(o.GetLabels()))
	if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
		if ref.UID != c.owner.GetUID() {
			return false, nil // someone else's
		}
		if matches {
			return true, nil
		}
		if c.owner.GetDeletionTimestamp() != nil {
			return false, nil
		}
		err := c.patch(ctx, o.GetName(), releasePatch(c.owner.GetUID(), o.GetUID()))
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil // gone or changed: the next sync sees the truth
		}
		return false, err
	}
	if !matches || c.owner.GetDeletionTimestamp() != nil || o.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if !c.checked {
		c.checked, c.adoptErr = true, c.canAdopt(ctx)
	}
	if c.adoptErr != nil {
		return false, c.adoptErr
	}
	err := c.patch(ctx, o.GetName(), adoptPatch(c.ref, o.GetUID()))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	return err == nil, err
}

// adoptPatch adds ref to the object's ownerReferences; the uid makes the
// patch fail if the object was replaced by a namesake.
func adoptPatch(ref metav1.OwnerReference, uid types.UID) []byte {
	data, _ := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{
		"ownerReferences": []metav1.OwnerReference{ref},
		"uid":             uid,
	}})
	return data
}

// releasePatch removes the reference to ownerUID from ownerReferences.
func releasePatch(ownerUID, uid types.UID) []byte {
	data, _ := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{
		"ownerReferences": []map[string]interface{}{{"$patch": "delete", "uid": ownerUID}},
		"uid":             uid,
	}})
	return data
}

// recheckOwner returns a canAdopt function that reads the owner afresh.
func recheckOwner(owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) func(context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return fmt.Errorf("re-reading %s before adoption: %w", owner.GetName(), err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("%s was replaced (uid %s, want %s) before adoption", owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s is being deleted; not adopting", owner.GetName())
		}
		return nil
	}
}

// candidates returns the objects of an informer that a controller may
// own: those naming it as an owner, and the orphans of its namespace. It
// spares a sync from listing the whole namespace.
func candidates[T metav1.Object](inf cache.SharedIndexInformer, owner metav1.Object) ([]T, error) {
	idx := inf.GetIndexer()
	owned, err := idx.ByIndex(indexOwner, string(owner.GetUID()))
	if err != nil {
		return nil, err
	}
	orphans, err := idx.ByIndex(indexOrphan, owner.GetNamespace())
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(owned)+len(orphans))
	seen := make(map[types.UID]bool, len(owned))
	for _, o := range append(owned, orphans...) {
		t, ok := o.(T)
		if !ok || seen[t.GetUID()] || t.GetNamespace() != owner.GetNamespace() {
			continue
		}
		seen[t.GetUID()] = true
		out = append(out, t)
	}
	return out, nil
}

// controllerKey returns the "namespace/name" key of the owner of the given
// kind that controls obj, checking the UID so a namesake does not get
// another's events; get looks the owner up in a lister.
func controllerKey[T metav1.Object](obj metav1.Object, kind string, get func(namespace, name string) (T, error)) (string, bool) {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != kind {
		return "", false
	}
	owner, err := get(obj.GetNamespace(), ref.Name)
	if err != nil || owner.GetUID() != ref.UID {
		return "", false
	}
	return obj.GetNamespace() + "/" + owner.GetName(), true
}

// forMatching calls fn for each owner whose (non-empty) selector matches
// an orphan's labels: the owners that could adopt it.
func forMatching[T any](owners []T, selector func(T) *metav1.LabelSelector, orphan map[string]string, fn func(T)) {
	for _, o := range owners {
		sel, err := metav1.LabelSelectorAsSelector(selector(o))
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(orphan)) {
			fn(o)
		}
	}
}
