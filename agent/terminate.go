package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// terminate tears a deleted pod down: its containers get the deletion's
// grace period (SIGTERM, then SIGKILL), then containers, snapshots,
// sandbox and logs are removed and, unless the pod is already gone from
// the API, the pod object is deleted for good (grace 0, UID
// precondition). It reports whether the pod is done; on false the worker
// retries later.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, gone bool) bool {
	a := w.a
	a.probes.stopPod(w.uid)
	grace := w.deletionGrace(pod, gone)
	if err := w.stopAll(ctx, pod, grace); err != nil {
		a.log.Warn("stop pod", "pod", podKey(pod), "err", err)
		return false
	}
	if err := w.removeAll(ctx, pod); err != nil {
		a.log.Warn("remove pod", "pod", podKey(pod), "err", err)
		return false
	}
	a.status.forget(pod.UID)
	if !gone {
		uid := pod.UID
		err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			a.log.Warn("delete pod", "pod", podKey(pod), "err", err)
			return false
		}
		w.deleted = true
	}
	a.log.Info("pod torn down", "pod", podKey(pod), "uid", w.uid, "grace", grace, "deleted", !gone)
	return true
}

// deletionGrace is the grace period of a deleted pod's containers.
func (w *podWorker) deletionGrace(pod *corev1.Pod, gone bool) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(max(*pod.DeletionGracePeriodSeconds, 0)) * time.Second
	case gone:
		return w.a.cfg.ForceDeleteGracePeriod
	}
	return podGrace(pod)
}

// stopAll stops the pod's running containers in parallel.
func (w *podWorker) stopAll(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	a := w.a
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range a.cache.pod(w.uid) {
		if c.State != StateRunning {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.log.Info("stopping container", "pod", podKey(pod), "container", c.Name, "grace", grace)
			if err := a.rt.StopContainer(ctx, c.ID, grace); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop %s: %w", c.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeAll deletes the pod's containers (with their snapshots), its
// sandbox and its log files.
func (w *podWorker) removeAll(ctx context.Context, pod *corev1.Pod) error {
	a := w.a
	for _, c := range a.cache.pod(w.uid) {
		if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
			return fmt.Errorf("remove container %s: %w", c.Name, err)
		}
		a.cache.remove(c.ID)
	}
	if err := a.rt.RemoveSandbox(ctx, w.uid); err != nil {
		return err
	}
	w.sandbox = nil
	if err := a.tearDownVolumes(w.uid); err != nil {
		return fmt.Errorf("remove volumes: %w", err)
	}
	return a.rt.RemovePodLogs(ctx, pod.Namespace, pod.Name, w.uid)
}

// collectOrphans removes containers, sandboxes and logs of pods this node
// no longer has (deleted while the agent was down, or force-deleted before
// a worker saw them). It does nothing until the pod informer has synced.
func (a *Agent) collectOrphans(ctx context.Context) {
	select {
	case <-a.synced:
	default:
		return
	}
	logsDone := map[string]bool{}
	for _, c := range a.cache.all() {
		if a.workers.has(c.PodUID) {
			continue
		}
		a.log.Info("removing orphaned container", "pod", c.PodNamespace+"/"+c.PodName, "uid", c.PodUID, "container", c.Name, "id", c.ID)
		if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
			a.log.Warn("remove orphaned container", "id", c.ID, "err", err)
			continue
		}
		a.cache.remove(c.ID)
		if !logsDone[c.PodUID] {
			logsDone[c.PodUID] = true
			if err := a.rt.RemovePodLogs(ctx, c.PodNamespace, c.PodName, c.PodUID); err != nil {
				a.log.Warn("remove orphaned logs", "uid", c.PodUID, "err", err)
			}
		}
	}
	for _, uid := range a.volumeUIDs() {
		if !a.workers.has(uid) && len(a.cache.pod(uid)) == 0 {
			a.log.Info("removing orphaned volumes", "uid", uid)
			if err := a.tearDownVolumes(uid); err != nil {
				a.log.Warn("remove orphaned volumes", "uid", uid, "err", err)
			}
		}
	}
	sandboxes, err := a.rt.ListSandboxes(ctx)
	if err != nil {
		a.log.Warn("list sandboxes", "err", err)
		return
	}
	for _, sb := range sandboxes {
		if a.workers.has(sb.PodUID) {
			continue
		}
		a.log.Info("removing orphaned sandbox", "pod", sb.Namespace+"/"+sb.Name, "uid", sb.PodUID)
		if err := a.rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
			a.log.Warn("remove orphaned sandbox", "uid", sb.PodUID, "err", err)
		}
		if err := a.rt.RemovePodLogs(ctx, sb.Namespace, sb.Name, sb.PodUID); err != nil {
			a.log.Warn("remove orphaned logs", "uid", sb.PodUID, "err", err)
		}
	}
}
