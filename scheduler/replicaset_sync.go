package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// manageReplicas creates or deletes pods so the ReplicaSet has
// spec.replicas active pods, at most burst per sync.
func (c *replicaSetController) manageReplicas(ctx context.Context, key string, rs *appsv1.ReplicaSet, pods []*corev1.Pod) error {
	diff := len(pods) - int(*rs.Spec.Replicas)
	switch {
	case diff < 0:
		n := min(-diff, c.burst)
		c.exp.expect(key, n, nil)
		ref := newControllerRef(rs, rsKind.GroupVersion().String(), rsKind.Kind)
		ok, err := slowStartBatch(n, func(int) error { return c.createPod(ctx, rs, ref) })
		for i := ok; i < n; i++ {
			c.exp.creationObserved(key) // never created: do not wait for it
		}
		return err
	case diff > 0:
		n := min(diff, c.burst)
		victims := append([]*corev1.Pod(nil), pods...)
		rankPodsForDeletion(victims)
		victims = victims[:n]
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podKey(p)
		}
		c.exp.expect(key, 0, keys)
		return c.deletePods(ctx, key, rs, victims)
	}
	return nil
}

func (c *replicaSetController) createPod(ctx context.Context, rs *appsv1.ReplicaSet, ref metav1.OwnerReference) error {
	pod := podFromTemplate(&rs.Spec.Template, rs.Namespace, rs.Name+"-", ref)
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !namespaceClosed(err) {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return fmt.Errorf("creating pod for replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// deletePods deletes victims in parallel and returns the first error.
func (c *replicaSetController) deletePods(ctx context.Context, key string, rs *appsv1.ReplicaSet, victims []*corev1.Pod) error {
	errs := make(chan error, len(victims))
	var wg sync.WaitGroup
	for _, p := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pre := metav1.NewUIDPreconditions(string(p.UID))
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: pre})
			if err != nil && !apierrors.IsNotFound(err) {
				c.exp.deletionObserved(key, podKey(p))
				c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				errs <- fmt.Errorf("deleting pod %s: %w", podKey(p), err)
				return
			}
			if err != nil {
				c.exp.deletionObserved(key, podKey(p)) // already gone; no event will come
				return
			}
			c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// slowStartBatch calls fn for 0..count-1 in batches of 1, 2, 4, ... running
// each batch in parallel, and stops after the first batch with a failure,
// so that a systematic error (quota, admission) costs one call, not count.
// It returns how many calls succeeded.
func slowStartBatch(count int, fn func(i int) error) (int, error) {
	done := 0
	for batch := min(count, 1); batch > 0; batch = min(2*batch, count-done) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for i := done; i < done+batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		done += batch - len(errs)
		if len(errs) > 0 {
			return done, <-errs
		}
	}
	return done, nil
}

// calculateStatus counts the claimed pods. wait > 0 when some ready pod
// becomes available after minReadySeconds.
func (c *replicaSetController) calculateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error) (appsv1.ReplicaSetStatus, time.Duration) {
	st := *rs.Status.DeepCopy()
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	var fully, ready, available int32
	var wait time.Duration
	now := c.clock.Now()
	for _, p := range pods {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if isPodReady(p) {
			ready++
		}
		ok, w := isPodAvailable(p, rs.Spec.MinReadySeconds, now)
		if ok {
			available++
		} else if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	st.Replicas, st.FullyLabeledReplicas, st.ReadyReplicas, st.AvailableReplicas = int32(len(pods)), fully, ready, available
	failure := rsCondition(st, appsv1.ReplicaSetReplicaFailure)
	switch {
	case manageErr != nil && failure == nil:
		reason := "FailedCreate"
		if len(pods) > int(*rs.Spec.Replicas) {
			reason = "FailedDelete"
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure,
			Status: corev1.ConditionTrue, Reason: reason, Message: shortError(manageErr), LastTransitionTime: metav1.NewTime(now)})
	case manageErr == nil && failure != nil:
		var keep []appsv1.ReplicaSetCondition
		for _, cond := range st.Conditions {
			if cond.Type != appsv1.ReplicaSetReplicaFailure {
				keep = append(keep, cond)
			}
		}
		st.Conditions = keep
	}
	if wait > 0 {
		wait += time.Second // the API keeps seconds; be past the boundary
	}
	return st, wait
}

func rsCondition(st appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) *appsv1.ReplicaSetCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// shortError returns the message of the innermost API error, which reads
// better in a condition than the whole wrapped chain.
func shortError(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

// updateStatus writes status when it differs from what is stored.
func (c *replicaSetController) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
	st.ObservedGeneration = rs.Generation
	if apiequality.Semantic.DeepEqual(rs.Status, st) {
		return nil
	}
	out := rs.DeepCopy()
	out.Status = st
	if _, err := c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}
