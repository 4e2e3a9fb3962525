package scheduler

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rolloutRolling moves a Deployment to its current template one step at a
// time: scale the new ReplicaSet up within maxSurge, scale old ones down
// within maxUnavailable (counting available pods), and once complete
// prune old ReplicaSets beyond revisionHistoryLimit.
func (c *deploymentController) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	r, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	scaledUp, err := c.reconcileNewReplicaSet(ctx, r)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, r)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, r)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, r)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, r); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, r)
}

func (c *deploymentController) reconcileNewReplicaSet(ctx context.Context, r *rollout) (bool, error) {
	if r.newRS == nil {
		return false, nil
	}
	want := *r.d.Spec.Replicas
	switch cur := specReplicas(r.newRS); {
	case cur == want:
		return false, nil
	case cur > want:
		return c.scaleReplicaSet(ctx, r, r.newRS, want)
	}
	return c.scaleReplicaSet(ctx, r, r.newRS, newRSReplicas(r.d, r.all(), r.newRS))
}

// reconcileOldReplicaSets scales old ReplicaSets down as far as
// maxUnavailable allows: first the pods that are not available anyway,
// then available ones, oldest ReplicaSet first.
func (c *deploymentController) reconcileOldReplicaSets(ctx context.Context, r *rollout) (bool, error) {
	if sumRS(r.oldRSs, specReplicas) == 0 {
		return false, nil
	}
	d := r.d
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	var newUnavailable int32
	if r.newRS != nil {
		newUnavailable = specReplicas(r.newRS) - r.newRS.Status.AvailableReplicas
	}
	maxScaledDown := sumRS(r.all(), specReplicas) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	cleaned, err := c.cleanupUnhealthyReplicas(ctx, r, maxScaledDown)
	if err != nil {
		return false, err
	}
	scaled, err := c.scaleDownOldForRollingUpdate(ctx, r)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

// cleanupUnhealthyReplicas removes up to maxCleanup replicas that old
// ReplicaSets have but that are not available.
func (c *deploymentController) cleanupUnhealthyReplicas(ctx context.Context, r *rollout, maxCleanup int32) (int32, error) {
	old := append([]*appsv1.ReplicaSet(nil), r.oldRSs...)
	sortByCreation(old)
	var total int32
	for _, rs := range old {
		if total >= maxCleanup {
			break
		}
		if specReplicas(rs) == 0 || specReplicas(rs) == availableAfterScale(rs) {
			continue
		}
		n := min(maxCleanup-total, specReplicas(rs)-availableAfterScale(rs))
		if n <= 0 {
			continue
		}
		if _, err := c.scaleReplicaSet(ctx, r, rs, specReplicas(rs)-n); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// scaleDownOldForRollingUpdate scales old ReplicaSets down while enough
// pods stay available.
func (c *deploymentController) scaleDownOldForRollingUpdate(ctx context.Context, r *rollout) (int32, error) {
	d := r.d
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	available := sumRS(r.all(), availableAfterScale)
	if available <= minAvailable {
		return 0, nil
	}
	budget := available - minAvailable
	old := append([]*appsv1.ReplicaSet(nil), r.oldRSs...)
	sortByCreation(old)
	var total int32
	for _, rs := range old {
		if total >= budget {
			break
		}
		if specReplicas(rs) == 0 {
			continue
		}
		n := min(specReplicas(rs), budget-total)
		if _, err := c.scaleReplicaSet(ctx, r, rs, specReplicas(rs)-n); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until none
// of their pods runs, then brings up the new ReplicaSet at full size.
func (c *deploymentController) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	r, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	scaledDown := false
	for _, rs := range activeRS(r.oldRSs) {
		scaled, err := c.scaleReplicaSet(ctx, r, rs, 0)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, r)
	}
	running, err := c.oldPodsRunning(r)
	if err != nil {
		return err
	}
	if running {
		return c.syncRolloutStatus(ctx, r)
	}
	if r.newRS == nil {
		if r, err = c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true); err != nil {
			return err
		}
	}
	if _, err := c.scaleReplicaSet(ctx, r, r.newRS, *d.Spec.Replicas); err != nil {
		return err
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, r); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, r)
}

// oldPodsRunning reports whether any pod of an old ReplicaSet may still be
// running; pods being deleted count until their node has stopped them.
func (c *deploymentController) oldPodsRunning(r *rollout) (bool, error) {
	if sumRS(r.oldRSs, statusReplicas) > 0 {
		return true, nil
	}
	byRS, err := c.podsByReplicaSet(r.all())
	if err != nil {
		return false, err
	}
	for uid, pods := range byRS {
		if r.newRS != nil && uid == r.newRS.UID {
			continue
		}
		for _, p := range pods {
			if !isPodTerminal(p) {
				return true, nil
			}
		}
	}
	return false, nil
}

// syncScale handles a paused Deployment or a change of spec.replicas: it
// resizes the active ReplicaSet without starting a rollout.
func (c *deploymentController) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	r, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := c.scale(ctx, r); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanupDeployment(ctx, r); err != nil {
			return err
		}
	}
	return c.syncDeploymentStatus(ctx, r)
}

// scale gives the Deployment's replicas to its only active ReplicaSet (or
// the newest one when none is active). When the new ReplicaSet already has
// them all, old ones go to zero. In the middle of a rollout, the rolling
// update logic converges to the new size by itself (Kubernetes would
// instead resize every ReplicaSet proportionally).
func (c *deploymentController) scale(ctx context.Context, r *rollout) error {
	want := *r.d.Spec.Replicas
	if rs := activeOrLatest(r); rs != nil {
		_, err := c.scaleReplicaSet(ctx, r, rs, want)
		return err
	}
	if r.newRS != nil && specReplicas(r.newRS) == want && r.newRS.Status.AvailableReplicas == want {
		for _, rs := range activeRS(r.oldRSs) {
			if _, err := c.scaleReplicaSet(ctx, r, rs, 0); err != nil {
				return err
			}
		}
		return nil
	}
	// Keep the size annotations current so the change is not seen as a
	// scaling event again.
	for _, rs := range activeRS(r.all()) {
		if _, err := c.scaleReplicaSet(ctx, r, rs, specReplicas(rs)); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest returns the only active ReplicaSet, the newest one when
// none is active, or nil when several are.
func activeOrLatest(r *rollout) *appsv1.ReplicaSet {
	all := r.all()
	if len(all) == 0 {
		return nil
	}
	active := activeRS(all)
	switch len(active) {
	case 0:
		if r.newRS != nil {
			return r.newRS
		}
		sortByCreation(all)
		return all[len(all)-1]
	case 1:
		return active[0]
	}
	return nil
}

// cleanupDeployment deletes the oldest zero-sized old ReplicaSets beyond
// spec.revisionHistoryLimit.
func (c *deploymentController) cleanupDeployment(ctx context.Context, r *rollout) error {
	limit := r.d.Spec.RevisionHistoryLimit
	if limit == nil {
		return nil
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range r.oldRSs {
		if rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := len(cleanable) - int(*limit)
	if diff <= 0 {
		return nil
	}
	sort.SliceStable(cleanable, func(i, j int) bool { return revision(cleanable[i]) < revision(cleanable[j]) })
	for _, rs := range cleanable[:diff] {
		if rs.Status.Replicas != 0 || specReplicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		pre := &metav1.Preconditions{UID: &rs.UID}
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: pre})
		if err != nil && !isGone(err) {
			return fmt.Errorf("deleting old replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
	}
	return nil
}

// syncStatusOnly updates the status of a Deployment being deleted.
func (c *deploymentController) syncStatusOnly(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	r, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	return c.syncDeploymentStatus(ctx, r)
}
