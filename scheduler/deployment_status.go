package scheduler

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Deployment condition reasons, as Kubernetes writes them (kubectl and
// dashboards match on them).
const (
	reasonNewRSCreated       = "NewReplicaSetCreated"
	reasonFoundNewRS         = "FoundNewReplicaSet"
	reasonRSUpdated          = "ReplicaSetUpdated"
	reasonNewRSAvailable     = "NewReplicaSetAvailable"
	reasonTimedOut           = "ProgressDeadlineExceeded"
	reasonPaused             = "DeploymentPaused"
	reasonResumed            = "DeploymentResumed"
	reasonMinimumAvailable   = "MinimumReplicasAvailable"
	reasonMinimumUnavailable = "MinimumReplicasUnavailable"
	reasonFailedRSCreate     = "ReplicaSetCreateError"
)

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != 1<<31-1
}

// condition returns a new condition stamped with the current time.
func (c *deploymentController) condition(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	now := metav1.NewTime(c.clock.Now().Truncate(time.Second))
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
}

func deploymentCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setDeploymentCondition adds or replaces a condition; one with the same
// status and reason is left alone, and the transition time only moves
// when the status changes.
func setDeploymentCondition(st *appsv1.DeploymentStatus, cond appsv1.DeploymentCondition) {
	cur := deploymentCondition(*st, cond.Type)
	if cur != nil && cur.Status == cond.Status && cur.Reason == cond.Reason {
		return
	}
	if cur != nil && cur.Status == cond.Status {
		cond.LastTransitionTime = cur.LastTransitionTime
	}
	removeDeploymentCondition(st, cond.Type)
	st.Conditions = append(st.Conditions, cond)
}

func removeDeploymentCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var keep []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			keep = append(keep, c)
		}
	}
	st.Conditions = keep
}

// deploymentComplete: every replica updated and available, nothing old.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	n := *d.Spec.Replicas
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// deploymentProgressing: the new status shows some step forward.
func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// deploymentTimedOut: no progress within progressDeadlineSeconds.
func (c *deploymentController) deploymentTimedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	cond := deploymentCondition(*st, appsv1.DeploymentProgressing)
	switch {
	case cond == nil || cond.Reason == reasonNewRSAvailable:
		return false
	case cond.Reason == reasonTimedOut:
		return true
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	return cond.LastUpdateTime.Add(deadline).Before(c.clock.Now())
}

// calculateStatus derives a Deployment's status from its ReplicaSets.
func (c *deploymentController) calculateStatus(r *rollout) appsv1.DeploymentStatus {
	d, all := r.d, r.all()
	available := sumRS(all, availableReplicas)
	unavailable := max(sumRS(all, specReplicas)-available, 0)
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            sumRS(all, statusReplicas),
		ReadyReplicas:       sumRS(all, readyReplicas),
		AvailableReplicas:   available,
		UnavailableReplicas: unavailable,
		CollisionCount:      d.Status.CollisionCount,
		Conditions:          append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...),
	}
	if r.newRS != nil {
		st.UpdatedReplicas = r.newRS.Status.Replicas
	}
	if available >= *d.Spec.Replicas-maxUnavailable(d) {
		setDeploymentCondition(&st, c.condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinimumAvailable, "Deployment has minimum availability."))
	} else {
		setDeploymentCondition(&st, c.condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinimumUnavailable, "Deployment does not have minimum availability."))
	}
	return st
}

// syncDeploymentStatus writes the calculated status if it changed.
func (c *deploymentController) syncDeploymentStatus(ctx context.Context, r *rollout) error {
	st := c.calculateStatus(r)
	if apiequality.Semantic.DeepEqual(r.d.Status, st) {
		return nil
	}
	r.d.Status = st
	return c.writeStatus(ctx, r.d)
}

// syncRolloutStatus writes the status of a rollout, with the Progressing
// condition kubectl rollout status watches: NewReplicaSetAvailable once
// complete, ReplicaSetUpdated while moving, ProgressDeadlineExceeded when
// stuck past progressDeadlineSeconds.
func (c *deploymentController) syncRolloutStatus(ctx context.Context, r *rollout) error {
	d := r.d
	st := c.calculateStatus(r)
	if !hasProgressDeadline(d) {
		removeDeploymentCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := deploymentCondition(d.Status, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !complete {
		c.setProgressing(r, &st, cur)
	}
	c.copyReplicaFailure(r, &st)
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		c.requeueStuck(d, &st)
		return nil
	}
	d.Status = st
	return c.writeStatus(ctx, d)
}

func (c *deploymentController) setProgressing(r *rollout, st *appsv1.DeploymentStatus, cur *appsv1.DeploymentCondition) {
	d := r.d
	what := fmt.Sprintf("Deployment %q", d.Name)
	if r.newRS != nil {
		what = fmt.Sprintf("ReplicaSet %q", r.newRS.Name)
	}
	switch {
	case deploymentComplete(d, st):
		setDeploymentCondition(st, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, what+" has successfully progressed."))
	case deploymentProgressing(d, st):
		cond := c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, what+" is progressing.")
		if cur != nil {
			if cur.Status == corev1.ConditionTrue {
				cond.LastTransitionTime = cur.LastTransitionTime
			}
			removeDeploymentCondition(st, appsv1.DeploymentProgressing)
		}
		st.Conditions = append(st.Conditions, cond)
	case c.deploymentTimedOut(d, st):
		setDeploymentCondition(st, c.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, what+" has timed out progressing."))
	}
}

// copyReplicaFailure mirrors a ReplicaSet's ReplicaFailure condition (pod
// creation refused) on the Deployment.
func (c *deploymentController) copyReplicaFailure(r *rollout, st *appsv1.DeploymentStatus) {
	for _, rs := range r.all() {
		if f := rsCondition(rs.Status, appsv1.ReplicaSetReplicaFailure); f != nil {
			cond := c.condition(appsv1.DeploymentReplicaFailure, f.Status, f.Reason, f.Message)
			cond.LastTransitionTime = f.LastTransitionTime
			setDeploymentCondition(st, cond)
			return
		}
	}
	removeDeploymentCondition(st, appsv1.DeploymentReplicaFailure)
}

// requeueStuck checks an unfinished rollout again when its progress
// deadline passes, so a stuck rollout is reported without other events.
func (c *deploymentController) requeueStuck(d *appsv1.Deployment, st *appsv1.DeploymentStatus) {
	cond := deploymentCondition(*st, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cond == nil || deploymentComplete(d, st) {
		return
	}
	switch cond.Reason {
	case reasonTimedOut, reasonNewRSAvailable, reasonPaused:
		return // nothing left to time out
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	after := max(cond.LastUpdateTime.Add(deadline).Sub(c.clock.Now()), 0)
	// A second more: condition times are whole seconds.
	c.addAfter(d.Namespace+"/"+d.Name, after+time.Second)
}

// checkPausedConditions marks a paused or resumed Deployment with the
// Progressing condition Unknown, so a pause does not time out.
func (c *deploymentController) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := deploymentCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut {
		return nil
	}
	paused := cond != nil && cond.Reason == reasonPaused
	switch {
	case d.Spec.Paused && !paused:
		setDeploymentCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused"))
	case !d.Spec.Paused && paused:
		setDeploymentCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed"))
	default:
		return nil
	}
	return c.writeStatus(ctx, d)
}
