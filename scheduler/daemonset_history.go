package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DaemonSet history: like Kubernetes' DaemonSet controller, every template
// a DaemonSet has run is kept as a ControllerRevision named
// "<daemonset>-<hash>", labelled with the template's labels plus
// controller-revision-hash, controlled by the DaemonSet. Its data is the
// strategic merge patch that restores the template, in the exact form
// kubectl builds (kubectl rollout history|undo daemonset read and apply it).
// The current template's revision is always the highest; going back to an
// older template renumbers its revision. Revisions beyond
// revisionHistoryLimit that no pod still runs are deleted.

// syncHistory makes sure the current template has the highest revision and
// prunes old ones.
func (c *daemonSetController) syncHistory(ctx context.Context, ds *appsv1.DaemonSet, hash string, byNode map[string][]*corev1.Pod) error {
	revs := c.revisionsOf(ds)
	var cur *appsv1.ControllerRevision
	var maxRev int64
	for _, r := range revs {
		maxRev = max(maxRev, r.Revision)
		if r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			cur = r
		}
	}
	client := c.client.AppsV1().ControllerRevisions(ds.Namespace)
	switch {
	case cur == nil:
		cr, err := newDaemonSetRevision(ds, hash, maxRev+1)
		if err != nil {
			return err
		}
		created, err := client.Create(ctx, cr, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return c.adoptRevision(ctx, ds, cr)
		}
		if err != nil {
			return fmt.Errorf("daemonset %s/%s: recording revision: %w", ds.Namespace, ds.Name, err)
		}
		revs = append(revs, created)
	case cur.Revision < maxRev:
		upd := cur.DeepCopy()
		upd.Revision = maxRev + 1
		upd.Annotations = ds.Annotations
		if _, err := client.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("daemonset %s/%s: renumbering revision: %w", ds.Namespace, ds.Name, err)
		}
	}
	return c.pruneHistory(ctx, ds, revs, hash, byNode)
}

// adoptRevision handles a revision name that is taken: an orphan with the
// same template (left by a delete with --cascade=orphan) is adopted and made
// current; one this DaemonSet already controls is only missing from the
// cache; another owner's is left alone.
func (c *daemonSetController) adoptRevision(ctx context.Context, ds *appsv1.DaemonSet, want *appsv1.ControllerRevision) error {
	client := c.client.AppsV1().ControllerRevisions(ds.Namespace)
	cur, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("daemonset %s/%s: reading revision %s: %w", ds.Namespace, ds.Name, want.Name, err)
	}
	if metav1.GetControllerOfNoCopy(cur) != nil {
		return nil
	}
	cur = cur.DeepCopy()
	cur.OwnerReferences = append(cur.OwnerReferences, want.OwnerReferences...)
	cur.Revision = want.Revision
	cur.Labels, cur.Annotations, cur.Data = want.Labels, want.Annotations, want.Data
	if _, err := client.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("daemonset %s/%s: adopting revision %s: %w", ds.Namespace, ds.Name, want.Name, err)
	}
	return nil
}

// revisionsOf returns the cached ControllerRevisions the DaemonSet controls.
func (c *daemonSetController) revisionsOf(ds *appsv1.DaemonSet) []*appsv1.ControllerRevision {
	objs, err := c.revInf.GetIndexer().ByIndex(indexOwner, string(ds.UID))
	if err != nil {
		return nil
	}
	var out []*appsv1.ControllerRevision
	for _, o := range objs {
		if r, ok := o.(*appsv1.ControllerRevision); ok && r.DeletionTimestamp == nil && metav1.IsControlledBy(r, ds) {
			out = append(out, r)
		}
	}
	return out
}

// pruneHistory deletes the oldest revisions beyond revisionHistoryLimit,
// never the current one or one whose template a pod still runs.
func (c *daemonSetController) pruneHistory(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision, hash string, byNode map[string][]*corev1.Pod) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	live := map[string]bool{hash: true}
	for _, pods := range byNode {
		for _, p := range pods {
			live[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
		}
	}
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			old = append(old, r)
		}
	}
	if len(old) <= limit {
		return nil
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Revision < old[j].Revision })
	client := c.client.AppsV1().ControllerRevisions(ds.Namespace)
	for _, r := range old[:len(old)-limit] {
		err := client.Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &r.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("daemonset %s/%s: pruning revision %s: %w", ds.Namespace, ds.Name, r.Name, err)
		}
	}
	return nil
}

// newDaemonSetRevision snapshots the DaemonSet's template.
func newDaemonSetRevision(ds *appsv1.DaemonSet, hash string, revision int64) (*appsv1.ControllerRevision, error) {
	patch, err := daemonSetPatch(ds)
	if err != nil {
		return nil, err
	}
	labels := make(map[string]string, len(ds.Spec.Template.Labels)+1)
	for k, v := range ds.Spec.Template.Labels {
		labels[k] = v
	}
	labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: ds.Name + "-" + hash, Namespace: ds.Namespace, Labels: labels, Annotations: ds.Annotations,
			OwnerReferences: []metav1.OwnerReference{newControllerRef(ds, daemonSetKind.GroupVersion().String(), daemonSetKind.Kind)},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: revision,
	}, nil
}

// daemonSetPatch is {"spec":{"template":{...,"$patch":"replace"}}}, built
// the way kubectl builds it, so kubectl can tell a revision matches the
// DaemonSet byte for byte.
func daemonSetPatch(ds *appsv1.DaemonSet) ([]byte, error) {
	data, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	var raw map[string]interface{}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	spec, _ := raw["spec"].(map[string]interface{})
	template, _ := spec["template"].(map[string]interface{})
	if template == nil {
		return nil, fmt.Errorf("daemonset %s/%s has no template", ds.Namespace, ds.Name)
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]interface{}{"spec": map[string]interface{}{"template": template}})
}

// revisionEvent queues the DaemonSet controlling a revision that appeared
// or went away: a sync that ran before its cache held a new revision (and
// so could not prune) runs again, and a current revision deleted by hand
// is recorded again.
func (c *daemonSetController) revisionEvent(obj interface{}) {
	r, ok := untomb(obj).(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.Kind == daemonSetKind.Kind {
		c.add(r.Namespace + "/" + ref.Name)
	}
}
