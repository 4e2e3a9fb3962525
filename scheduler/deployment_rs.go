package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Annotations the deployment controller keeps on ReplicaSets, as in
// Kubernetes; kubectl rollout history and undo read them.
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	lastAppliedAnnotation     = "kubectl.kubernetes.io/last-applied-configuration"
	rollbackToAnnotation      = "deprecated.deployment.rollback.to"
	maxRevHistoryChars        = 2000
)

// annotationsToSkip are the Deployment annotations not copied to its
// ReplicaSets.
var annotationsToSkip = map[string]bool{
	lastAppliedAnnotation: true, revisionAnnotation: true, revisionHistoryAnnotation: true,
	desiredReplicasAnnotation: true, maxReplicasAnnotation: true, rollbackToAnnotation: true,
}

// resolveFenceposts turns maxSurge and maxUnavailable into pod counts for
// desired replicas; both zero means maxUnavailable 1, as in Kubernetes.
func resolveFenceposts(ru *appsv1.RollingUpdateDeployment, desired int32) (surge, unavailable int32) {
	zero := intstr.FromInt32(0)
	s, _ := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxSurge, zero), int(desired), true)
	u, _ := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxUnavailable, zero), int(desired), false)
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

func isRollingUpdate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate != nil
}

func maxSurge(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) {
		return 0
	}
	s, _ := resolveFenceposts(d.Spec.Strategy.RollingUpdate, *d.Spec.Replicas)
	return s
}

func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) || *d.Spec.Replicas == 0 {
		return 0
	}
	_, u := resolveFenceposts(d.Spec.Strategy.RollingUpdate, *d.Spec.Replicas)
	return min(u, *d.Spec.Replicas)
}

func sumRS(rss []*appsv1.ReplicaSet, f func(*appsv1.ReplicaSet) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += f(rs)
		}
	}
	return n
}

func specReplicas(rs *appsv1.ReplicaSet) int32 { return ptr.Deref(rs.Spec.Replicas, 0) }

// podsOf counts the pods a ReplicaSet has or will soon have: after a
// scale-down its surplus pods keep running until its controller has
// deleted them, so they count against maxSurge until then.
func podsOf(rs *appsv1.ReplicaSet) int32 { return max(specReplicas(rs), rs.Status.Replicas) }

// availableAfterScale counts the available pods a ReplicaSet will keep:
// no more than it is sized for, since surplus pods are about to go.
func availableAfterScale(rs *appsv1.ReplicaSet) int32 {
	return min(rs.Status.AvailableReplicas, specReplicas(rs))
}

func statusReplicas(rs *appsv1.ReplicaSet) int32    { return rs.Status.Replicas }
func readyReplicas(rs *appsv1.ReplicaSet) int32     { return rs.Status.ReadyReplicas }
func availableReplicas(rs *appsv1.ReplicaSet) int32 { return rs.Status.AvailableReplicas }

// activeRS returns the ReplicaSets that want pods.
func activeRS(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && specReplicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// sortByCreation sorts oldest first, by name within the same second.
func sortByCreation(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		if rss[i].CreationTimestamp.Equal(&rss[j].CreationTimestamp) {
			return rss[i].Name < rss[j].Name
		}
		return rss[i].CreationTimestamp.Before(&rss[j].CreationTimestamp)
	})
}

// revision returns a ReplicaSet's revision annotation, 0 when unset.
func revision(obj metav1.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetAnnotations()[revisionAnnotation], 10, 64)
	return n
}

// equalIgnoreHash compares templates ignoring the pod-template-hash label,
// which the Deployment's own template never has.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// splitReplicaSets finds the new ReplicaSet (the oldest whose template is
// the Deployment's) and the old ones.
func splitReplicaSets(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	sortByCreation(sorted)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last sized, as their desired-replicas annotation tells.
func isScalingEvent(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) bool {
	for _, rs := range activeRS(rsList) {
		v, ok := rs.Annotations[desiredReplicasAnnotation]
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && int32(n) != *d.Spec.Replicas {
			return true
		}
	}
	return false
}

// setReplicasAnnotations records the Deployment size on a ReplicaSet and
// reports whether anything changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	if rs.Annotations[desiredReplicasAnnotation] == d && rs.Annotations[maxReplicasAnnotation] == m {
		return false
	}
	rs.Annotations[desiredReplicasAnnotation], rs.Annotations[maxReplicasAnnotation] = d, m
	return true
}

// setNewReplicaSetAnnotations copies the Deployment's annotations (such as
// kubernetes.io/change-cause) to its new ReplicaSet and raises the
// ReplicaSet's revision to newRevision, remembering a revision it had
// before (a rollback) in the revision-history annotation.
func setNewReplicaSetAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string, exists bool) bool {
	changed := false
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range d.Annotations {
		if !annotationsToSkip[k] && rs.Annotations[k] != v {
			rs.Annotations[k], changed = v, true
		}
	}
	oldRevision, had := rs.Annotations[revisionAnnotation]
	oldN, _ := strconv.ParseInt(oldRevision, 10, 64)
	newN, _ := strconv.ParseInt(newRevision, 10, 64)
	if oldN < newN {
		rs.Annotations[revisionAnnotation], changed = newRevision, true
		if had && oldRevision != "" {
			rs.Annotations[revisionHistoryAnnotation] = appendRevisionHistory(rs.Annotations[revisionHistoryAnnotation], oldRevision)
		}
	}
	if !exists && setReplicasAnnotations(rs, *d.Spec.Replicas, *d.Spec.Replicas+maxSurge(d)) {
		changed = true
	}
	return changed
}

func appendRevisionHistory(history, rev string) string {
	list := []string{}
	if history != "" {
		list = strings.Split(history, ",")
	}
	list = append(list, rev)
	for len(strings.Join(list, ",")) > maxRevHistoryChars && len(list) > 1 {
		list = list[1:]
	}
	return strings.Join(list, ",")
}

// getAllReplicaSetsAndSyncRevision splits the ReplicaSets into new and old,
// bringing the new one's annotations up to date and creating it when
// create is set and it does not exist yet.
func (c *deploymentController) getAllReplicaSetsAndSyncRevision(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*rollout, error) {
	existing, old := splitReplicaSets(d, rsList)
	var maxRev int64
	for _, rs := range old {
		maxRev = max(maxRev, revision(rs))
	}
	newRevision := strconv.FormatInt(maxRev+1, 10)
	r := &rollout{d: d, oldRSs: old}
	var err error
	switch {
	case existing != nil:
		r.newRS, err = c.syncNewReplicaSet(ctx, d, existing, newRevision)
	case create:
		r.newRS, err = c.createNewReplicaSet(ctx, r, newRevision)
	}
	return r, err
}

// syncNewReplicaSet updates an existing new ReplicaSet's annotations and
// minReadySeconds, and the Deployment's revision.
func (c *deploymentController) syncNewReplicaSet(ctx context.Context, d *appsv1.Deployment, existing *appsv1.ReplicaSet, newRevision string) (*appsv1.ReplicaSet, error) {
	rs := existing.DeepCopy()
	if setNewReplicaSetAnnotations(d, rs, newRevision, true) || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
		rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		out, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("updating replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		return out, nil
	}
	if err := c.setDeploymentRevision(ctx, d, rs.Annotations[revisionAnnotation]); err != nil {
		return nil, err
	}
	if hasProgressDeadline(d) && deploymentCondition(d.Status, appsv1.DeploymentProgressing) == nil {
		setDeploymentCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", rs.Name)))
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// createNewReplicaSet creates the ReplicaSet for the Deployment's current
// template, named <deployment>-<pod-template-hash>.
func (c *deploymentController) createNewReplicaSet(ctx context.Context, r *rollout, newRevision string) (*appsv1.ReplicaSet, error) {
	d := r.d
	tmpl := d.Spec.Template.DeepCopy()
	hash := computeHash(tmpl, d.Status.CollisionCount)
	tmpl.Labels = copyMap(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{newControllerRef(d, deploymentKind.GroupVersion().String(), deploymentKind.Kind)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	n := newRSReplicas(d, append(r.all(), rs), rs)
	rs.Spec.Replicas = &n
	setNewReplicaSetAnnotations(d, rs, newRevision, false)
	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	existed := false
	switch {
	case apierrors.IsAlreadyExists(err):
		if created, err = c.adoptExistingNewRS(ctx, d, rs.Name); err != nil {
			return nil, err
		}
		existed = true
	case namespaceClosed(err):
		return nil, fmt.Errorf("creating replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setDeploymentCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonFailedRSCreate, msg))
			_ = c.writeStatus(ctx, d)
		}
		c.recorder.Event(d, corev1.EventTypeWarning, reasonFailedRSCreate, msg)
		return nil, fmt.Errorf("creating replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	if !existed && n > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	if err := c.setDeploymentRevision(ctx, d, newRevision); err != nil {
		return nil, err
	}
	if !existed && hasProgressDeadline(d) {
		setDeploymentCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.Name)))
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// adoptExistingNewRS handles a create that found the name taken: it is the
// Deployment's own ReplicaSet (a stale cache), or a hash collision, which
// bumps status.collisionCount so the next sync picks another name.
func (c *deploymentController) adoptExistingNewRS(ctx context.Context, d *appsv1.Deployment, name string) (*appsv1.ReplicaSet, error) {
	rs, err := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading replicaset %s/%s: %w", d.Namespace, name, err)
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil && ref.UID == d.UID && equalIgnoreHash(&d.Spec.Template, &rs.Spec.Template) {
		return rs, nil
	}
	if d.Status.CollisionCount == nil {
		d.Status.CollisionCount = new(int32)
	}
	*d.Status.CollisionCount++
	if err := c.writeStatus(ctx, d); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("replicaset name %s/%s collides with another template; collisionCount is now %d", d.Namespace, name, *d.Status.CollisionCount)
}

// setDeploymentRevision records the current revision on the Deployment.
// Kubernetes lets a status write carry it; skiff's status subresource
// keeps metadata, so it is a small patch of its own.
func (c *deploymentController) setDeploymentRevision(ctx context.Context, d *appsv1.Deployment, rev string) error {
	if rev == "" || d.Annotations[revisionAnnotation] == rev {
		return nil
	}
	patch, _ := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{
		"annotations": map[string]string{revisionAnnotation: rev}, "resourceVersion": d.ResourceVersion,
	}})
	out, err := c.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("recording revision of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	d.Annotations, d.ResourceVersion = out.Annotations, out.ResourceVersion
	return nil
}

// newRSReplicas is how many replicas the new ReplicaSet may have now.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	if !isRollingUpdate(d) {
		return *d.Spec.Replicas
	}
	current := sumRS(all, podsOf)
	maxTotal := *d.Spec.Replicas + maxSurge(d)
	if current >= maxTotal {
		return specReplicas(newRS)
	}
	up := min(maxTotal-current, *d.Spec.Replicas-specReplicas(newRS))
	return specReplicas(newRS) + up
}

// scaleReplicaSet sets a ReplicaSet's size (and size annotations),
// records a ScalingReplicaSet event, and swaps the answer into r.
func (c *deploymentController) scaleReplicaSet(ctx context.Context, r *rollout, rs *appsv1.ReplicaSet, n int32) (bool, error) {
	d := r.d
	resize := specReplicas(rs) != n
	out := rs.DeepCopy()
	annotate := setReplicasAnnotations(out, *d.Spec.Replicas, *d.Spec.Replicas+maxSurge(d))
	if !resize && !annotate {
		return false, nil
	}
	out.Spec.Replicas = &n
	stored, err := c.client.AppsV1().ReplicaSets(out.Namespace).Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return false, fmt.Errorf("scaling replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	r.replace(stored)
	if resize {
		op := "up"
		if n < specReplicas(rs) {
			op = "down"
		}
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, specReplicas(rs), n)
	}
	return resize, nil
}
