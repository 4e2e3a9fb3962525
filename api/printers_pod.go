package api

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/proto"
)

// nodeUnreachablePodReason is the pod status reason the node lifecycle
// controller sets on pods of a node it lost.
const nodeUnreachablePodReason = "NodeLost"

// podRow is what kubectl shows of a pod, computed the way kubectl's
// server-side printer does.
type podRow struct {
	ready, total int
	status       string
	restarts     int
	lastRestart  time.Time
}

func podCells(obj proto.Object, now time.Time) []interface{} {
	pod := obj.(*corev1.Pod)
	r := podSummary(pod)
	restarts := strconv.Itoa(r.restarts)
	if r.restarts != 0 && !r.lastRestart.IsZero() {
		restarts = fmt.Sprintf("%d (%s ago)", r.restarts, age(metav1.NewTime(r.lastRestart), now))
	}
	ip := "<none>"
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	} else if pod.Status.PodIP != "" {
		ip = pod.Status.PodIP
	}
	return []interface{}{
		pod.Name, fmt.Sprintf("%d/%d", r.ready, r.total), r.status, restarts, age(pod.CreationTimestamp, now),
		ip, orNone(pod.Spec.NodeName), orNone(pod.Status.NominatedNodeName), readinessGates(pod),
	}
}

// podConditions marks finished pods the way Kubernetes does, so clients can
// tell them apart.
func podConditions(obj proto.Object) []metav1.TableRowCondition {
	switch obj.(*corev1.Pod).Status.Phase {
	case corev1.PodSucceeded:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodSucceeded), Message: "The pod has completed successfully."}}
	case corev1.PodFailed:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodFailed), Message: "The pod failed."}}
	}
	return nil
}

// podSummary computes READY, STATUS and RESTARTS: the phase or reason,
// overridden by a failing or waiting init container ("Init:1/2",
// "Init:CrashLoopBackOff"), then by the last container that is waiting or
// terminated ("CrashLoopBackOff", "ErrImagePull", "Completed",
// "ExitCode:1"), and by Terminating while the pod is being deleted.
func podSummary(pod *corev1.Pod) podRow {
	r := podRow{total: len(pod.Spec.Containers), status: string(pod.Status.Phase)}
	if pod.Status.Reason != "" {
		r.status = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			r.status = corev1.PodReasonSchedulingGated
		}
	}
	sidecars := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			r.total++
		}
	}
	initializing, sidecarRestarts, sidecarLast := initStatus(pod, sidecars, &r)
	if !initializing || podConditionTrue(pod, corev1.PodInitialized) {
		r.restarts, r.lastRestart = sidecarRestarts, sidecarLast
		containerStatus(pod, &r)
	}
	if pod.DeletionTimestamp != nil && pod.Status.Reason == nodeUnreachablePodReason {
		r.status = "Unknown"
	} else if pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		r.status = "Terminating"
	}
	return r
}

// initStatus walks the init containers; it reports whether the pod is
// still initialising and the restarts of its sidecar (restartable init)
// containers.
func initStatus(pod *corev1.Pod, sidecars map[string]bool, r *podRow) (bool, int, time.Time) {
	sidecarRestarts, sidecarLast := 0, time.Time{}
	for i, c := range pod.Status.InitContainerStatuses {
		r.restarts += int(c.RestartCount)
		last := lastTermination(c)
		r.lastRestart = later(r.lastRestart, last)
		if sidecars[c.Name] {
			sidecarRestarts += int(c.RestartCount)
			sidecarLast = later(sidecarLast, last)
		}
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case sidecars[c.Name] && c.Started != nil && *c.Started:
			if c.Ready {
				r.ready++
			}
			continue
		case c.State.Terminated != nil:
			r.status = "Init:" + terminatedReason(c.State.Terminated)
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			r.status = "Init:" + c.State.Waiting.Reason
		default:
			r.status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		return true, sidecarRestarts, sidecarLast
	}
	return false, sidecarRestarts, sidecarLast
}

// containerStatus applies the regular containers' states, last one first
// as kubectl does, so the first container's problem wins.
func containerStatus(pod *corev1.Pod, r *podRow) {
	running := false
	for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
		c := pod.Status.ContainerStatuses[i]
		r.restarts += int(c.RestartCount)
		r.lastRestart = later(r.lastRestart, lastTermination(c))
		switch {
		case c.State.Waiting != nil && c.State.Waiting.Reason != "":
			r.status = c.State.Waiting.Reason
		case c.State.Terminated != nil:
			r.status = terminatedReason(c.State.Terminated)
		case c.Ready && c.State.Running != nil:
			running = true
			r.ready++
		}
	}
	if r.status == "Completed" && running {
		r.status = "NotReady"
		if podConditionTrue(pod, corev1.PodReady) {
			r.status = "Running"
		}
	}
}

func terminatedReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

func lastTermination(c corev1.ContainerStatus) time.Time {
	if t := c.LastTerminationState.Terminated; t != nil {
		return t.FinishedAt.Time
	}
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func podConditionTrue(pod *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return "<none>"
	}
	n := 0
	for _, g := range pod.Spec.ReadinessGates {
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				if c.Status == corev1.ConditionTrue {
					n++
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d/%d", n, len(pod.Spec.ReadinessGates))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
