package agent

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerIDPrefix is the runtime scheme of ContainerStatus.ContainerID.
const containerIDPrefix = "containerd://"

// statusInput is what computeStatus needs besides the view and decision.
type statusInput struct {
	old     corev1.PodStatus        // the status last computed or read from the API
	hostIP  string                  // the node's IP
	imageID func(ref string) string // image ID (repo@digest) of a ref, "" if unknown
}

// computeStatus builds the pod status the agent reports. All times are
// truncated to seconds, the API's resolution, so that an unchanged status
// compares equal to what was written.
func computeStatus(v *podView, acts *podActions, in statusInput) corev1.PodStatus {
	now := metav1.NewTime(v.now.Truncate(time.Second))
	st := corev1.PodStatus{
		Phase:    acts.phase,
		QOSClass: in.old.QOSClass,
		HostIP:   in.hostIP,
	}
	if v.apiTerminal {
		st.Phase = in.old.Phase // terminal phases never change back
	}
	if in.hostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: in.hostIP}}
		if v.pod.Spec.HostNetwork {
			st.PodIP, st.PodIPs = in.hostIP, []corev1.PodIP{{IP: in.hostIP}}
		}
	}
	st.StartTime = in.old.StartTime
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for i := range v.pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, v.containerStatus(&v.pod.Spec.InitContainers[i], acts, in))
	}
	for i := range v.pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, v.containerStatus(&v.pod.Spec.Containers[i], acts, in))
	}
	st.Conditions = podConditions(v, &st, in.old.Conditions, now)
	return st
}

// containerStatus reports one container.
func (v *podView) containerStatus(c *corev1.Container, acts *podActions, in statusInput) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(bool)}
	h := v.history[c.Name]
	wait, hasWait := acts.waiting[c.Name]
	if len(h) == 0 {
		if !hasWait {
			wait = waitState{reason: reasonContainerCreating}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wait.reason, Message: wait.message}
		return cs
	}
	last := h[0]
	cs.RestartCount = int32(last.Attempt)
	cs.ContainerID = containerIDPrefix + last.ID
	if last.Image != "" {
		cs.Image = last.Image
	}
	if in.imageID != nil {
		cs.ImageID = in.imageID(cs.Image)
	}
	var previous *corev1.ContainerStateTerminated
	if len(h) > 1 {
		previous = v.terminated(h[1])
	}
	switch {
	case last.State == StateRunning:
		ps := v.probes[last.ID]
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(last.StartedAt.Truncate(time.Second))}
		cs.Ready, *cs.Started = ps.ready && ps.started, ps.started
		cs.LastTerminationState.Terminated = previous
	case last.State == StateCreated:
		if !hasWait {
			wait = waitState{reason: reasonContainerCreating}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wait.reason, Message: wait.message}
		cs.LastTerminationState.Terminated = previous
	case hasWait:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wait.reason, Message: wait.message}
		cs.LastTerminationState.Terminated = v.terminated(last)
	default:
		cs.State.Terminated = v.terminated(last)
		cs.LastTerminationState.Terminated = previous
	}
	return cs
}

// terminated converts an exited attempt.
func (v *podView) terminated(st ContainerStatus) *corev1.ContainerStateTerminated {
	if !exited(st) {
		return nil
	}
	t := &corev1.ContainerStateTerminated{
		ExitCode:    st.ExitCode,
		Reason:      st.Reason,
		Message:     v.messages[st.ID],
		StartedAt:   metav1.NewTime(st.StartedAt.Truncate(time.Second)),
		FinishedAt:  metav1.NewTime(st.FinishedAt.Truncate(time.Second)),
		ContainerID: containerIDPrefix + st.ID,
	}
	if st.StartedAt.IsZero() {
		t.StartedAt = metav1.Time{}
	}
	if st.FinishedAt.IsZero() {
		t.FinishedAt = metav1.Time{}
	}
	return t
}

// podConditions computes Initialized, Ready, ContainersReady and keeps
// PodScheduled. A condition keeps its transition time while its status
// does not change.
func podConditions(v *podView, st *corev1.PodStatus, old []corev1.PodCondition, now metav1.Time) []corev1.PodCondition {
	var incompleteInit, unready []string
	for i, c := range v.pod.Spec.InitContainers {
		if t := st.InitContainerStatuses[i].State.Terminated; t == nil || t.ExitCode != 0 {
			incompleteInit = append(incompleteInit, c.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	initialized := condition(corev1.PodInitialized, len(incompleteInit) == 0, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incompleteInit, " ")))
	ready := condition(corev1.ContainersReady, len(unready) == 0 && !terminal, "ContainersNotReady",
		fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")))
	if terminal {
		ready.Reason, ready.Message = "PodCompleted", ""
	}
	podReady := ready
	podReady.Type = corev1.PodReady
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
	for _, c := range old {
		if c.Type == corev1.PodScheduled {
			scheduled = c
		}
	}
	out := []corev1.PodCondition{initialized, podReady, ready, scheduled}
	for i := range out {
		out[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == out[i].Type && o.Status == out[i].Status && !o.LastTransitionTime.IsZero() {
				out[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return out
}

// condition returns a condition that is True when ok, else False with
// reason and message.
func condition(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
	if ok {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
	}
	return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: message}
}

// imageIDFor formats an image ID the way Kubernetes shows it:
// repository@digest.
func imageIDFor(ref, digest string) string {
	if digest == "" {
		return ""
	}
	repo := ref
	if i := strings.LastIndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return repo + "@" + digest
}
