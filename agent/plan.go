package agent

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// This file holds the pure part of a pod sync: given what the runtime has
// (every attempt of every container), the probes' verdicts and the
// remembered failures, decide what to kill, what to start and what each
// waiting container waits for. No I/O, so every rule is table-tested.

// Waiting reasons, as the kubelet reports them.
const (
	reasonContainerCreating   = "ContainerCreating"
	reasonPodInitializing     = "PodInitializing"
	reasonCrashLoopBackOff    = "CrashLoopBackOff"
	reasonErrImagePull        = "ErrImagePull"
	reasonImagePullBackOff    = "ImagePullBackOff"
	reasonErrImageNeverPull   = "ErrImageNeverPull"
	reasonInvalidImageName    = "InvalidImageName"
	reasonCreateContainerErr  = "CreateContainerError"
	reasonCreateContainerConf = "CreateContainerConfigError"
	reasonStartError          = "StartError"
)

// pullErrorShown is how long ErrImagePull is reported after a failed
// pull before the reason becomes ImagePullBackOff (at most the back-off).
const pullErrorShown = 2 * time.Second

// probeState is the probes' verdict on one running container.
type probeState struct {
	ready   bool // readiness passed (or no readiness probe), and started
	started bool // startup probe passed (or none)
	failed  bool // liveness or startup probe failed: restart it
}

// failure remembers why a container of the pod could not be created.
type failure struct {
	reason  string // a waiting reason: ErrImagePull, CreateContainerError, ...
	message string
	image   string
	count   int       // consecutive failures
	at      time.Time // of the last one
}

// podView is everything one sync decision needs.
type podView struct {
	pod *corev1.Pod
	now time.Time
	// history holds the runtime's attempts per container name, newest
	// first. Containers that failed to start appear as exited with reason
	// StartError.
	history map[string][]ContainerStatus
	// hashes are the desired spec hashes per container name.
	hashes map[string]string
	// probes by container ID; absent means no verdict yet.
	probes map[string]probeState
	// failures by container name.
	failures map[string]*failure
	// messages by container ID: detail for StartError terminations.
	messages map[string]string
	// apiTerminal: the API already shows the pod Succeeded or Failed.
	apiTerminal bool
}

// startAction starts a container: a new attempt, or (existingID set) one
// that was created but never started.
type startAction struct {
	container  *corev1.Container
	init       bool
	attempt    uint32
	streak     uint32
	existingID string
}

// killAction stops a running container.
type killAction struct {
	id, name, reason string
	probe            bool // a probe failed: the probe's grace period applies
}

// waitState is a waiting container's reason and message.
type waitState struct {
	reason, message string
}

// podActions is the decision of one sync.
type podActions struct {
	kill     []killAction
	start    []startAction
	waiting  map[string]waitState // by container name
	wakeAt   time.Time            // next time something is due; zero: none
	initDone bool
	phase    corev1.PodPhase
}

func (a *podActions) wake(at time.Time) {
	if a.wakeAt.IsZero() || at.Before(a.wakeAt) {
		a.wakeAt = at
	}
}

// latest returns the newest attempt of a container, if any.
func (v *podView) latest(name string) (ContainerStatus, bool) {
	h := v.history[name]
	if len(h) == 0 {
		return ContainerStatus{}, false
	}
	return h[0], true
}

// computeActions decides one sync of a pod that is not being deleted.
func computeActions(v *podView, p backoffPolicy) podActions {
	acts := podActions{waiting: map[string]waitState{}, phase: v.phase()}
	terminal := v.apiTerminal || acts.phase == corev1.PodSucceeded || acts.phase == corev1.PodFailed
	v.killUnwanted(&acts, terminal)
	if terminal {
		return acts
	}
	acts.initDone = true
	for i := range v.pod.Spec.InitContainers {
		c := &v.pod.Spec.InitContainers[i]
		if last, ok := v.latest(c.Name); ok && exited(last) && last.ExitCode == 0 {
			continue
		}
		acts.initDone = false
		v.step(c, true, &acts, p)
		break
	}
	for i := range v.pod.Spec.Containers {
		c := &v.pod.Spec.Containers[i]
		if !acts.initDone {
			if _, ok := v.latest(c.Name); !ok {
				acts.waiting[c.Name] = waitState{reason: reasonPodInitializing}
			}
			continue
		}
		v.step(c, false, &acts, p)
	}
	return acts
}

// killUnwanted stops running containers of a terminal pod, containers
// whose spec changed and containers that failed their liveness or
// startup probe.
func (v *podView) killUnwanted(acts *podActions, terminal bool) {
	for _, c := range allContainers(v.pod) {
		last, ok := v.latest(c.Name)
		if !ok || last.State != StateRunning {
			continue
		}
		switch {
		case terminal:
			acts.kill = append(acts.kill, killAction{id: last.ID, name: c.Name, reason: "pod is terminal"})
		case v.hashes[c.Name] != "" && last.SpecHash != v.hashes[c.Name]:
			acts.kill = append(acts.kill, killAction{id: last.ID, name: c.Name, reason: "container spec changed"})
		case v.probes[last.ID].failed:
			acts.kill = append(acts.kill, killAction{id: last.ID, name: c.Name, reason: "failed its liveness or startup probe", probe: true})
		}
	}
}

// step decides what container c needs next.
func (v *podView) step(c *corev1.Container, init bool, acts *podActions, p backoffPolicy) {
	last, ok := v.latest(c.Name)
	if !ok {
		v.startNew(c, init, 0, 0, acts, p)
		return
	}
	switch {
	case last.State == StateRunning:
	case last.State == StateCreated && last.SpecHash == v.hashes[c.Name]:
		acts.start = append(acts.start, startAction{container: c, init: init, attempt: last.Attempt,
			streak: streakOf(last), existingID: last.ID})
	case last.State == StateCreated:
		v.startNew(c, init, last.Attempt+1, streakOf(last), acts, p)
	case last.SpecHash != v.hashes[c.Name]:
		// Replaced for a new spec: restarted whatever the policy, as the
		// kubelet does, with no back-off and a fresh streak.
		v.startNew(c, init, last.Attempt+1, 0, acts, p)
	case !v.shouldRestart(init, last.ExitCode):
	default:
		delay, streak := p.restartDelay(last)
		if at := last.FinishedAt.Add(delay); v.now.Before(at) {
			acts.waiting[c.Name] = waitState{reason: reasonCrashLoopBackOff, message: fmt.Sprintf(
				"back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, v.pod.Name, v.pod.Namespace, v.pod.UID)}
			acts.wake(at)
			return
		}
		v.startNew(c, init, last.Attempt+1, streak, acts, p)
	}
}

// startNew starts a new attempt unless a recent failure to create the
// container is still backing off.
func (v *podView) startNew(c *corev1.Container, init bool, attempt, streak uint32, acts *podActions, p backoffPolicy) {
	if f := v.failures[c.Name]; f != nil && f.image == c.Image {
		retryAt := f.at.Add(p.pullDelay(f.count))
		if v.now.Before(retryAt) {
			acts.waiting[c.Name] = f.waiting(v.now)
			acts.wake(retryAt)
			if shown := f.at.Add(pullErrorShown); f.reason == reasonErrImagePull && v.now.Before(shown) {
				acts.wake(shown)
			}
			return
		}
	}
	acts.start = append(acts.start, startAction{container: c, init: init, attempt: attempt, streak: streak})
}

// waiting is the waiting state a failure shows while it backs off: a
// failed pull is ErrImagePull for pullErrorShown, then ImagePullBackOff.
func (f *failure) waiting(now time.Time) waitState {
	if f.reason == reasonErrImagePull && now.Sub(f.at) >= pullErrorShown {
		return waitState{reason: reasonImagePullBackOff, message: fmt.Sprintf("Back-off pulling image %q: %s", f.image, f.message)}
	}
	return waitState{reason: f.reason, message: f.message}
}

// shouldRestart applies the restart policy to an exited container. Init
// containers are retried until they succeed unless the policy is Never.
func (v *podView) shouldRestart(init bool, exitCode int32) bool {
	switch v.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return !init || exitCode != 0
}

// phase computes the pod phase from the containers with the kubelet's
// rules (getPhase).
func (v *podView) phase() corev1.PodPhase {
	never := v.pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	pendingInit := 0
	for _, c := range v.pod.Spec.InitContainers {
		last, ok := v.latest(c.Name)
		switch {
		case ok && exited(last) && last.ExitCode == 0:
		case ok && exited(last) && never:
			return corev1.PodFailed
		default:
			pendingInit++
		}
	}
	if pendingInit > 0 {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, c := range v.pod.Spec.Containers {
		last, ok := v.latest(c.Name)
		switch {
		case !ok || (last.State == StateCreated && last.Attempt == 0):
			waiting++
		case last.State == StateRunning:
			running++
		case last.State == StateCreated:
			stopped++ // restarting: it has a previous termination
		default:
			stopped++
			if last.ExitCode == 0 {
				succeeded++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case v.pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case never:
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// exited reports whether a container's process is gone for good.
func exited(st ContainerStatus) bool {
	return st.State == StateExited || st.State == StateUnknown
}

// allContainers returns the pod's init and app containers.
func allContainers(pod *corev1.Pod) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// groupHistory sorts a pod's containers into attempts per name, newest
// first.
func groupHistory(cs []ContainerStatus) map[string][]ContainerStatus {
	h := map[string][]ContainerStatus{}
	for _, c := range cs {
		h[c.Name] = append(h[c.Name], c)
	}
	for _, list := range h {
		slices.SortFunc(list, func(a, b ContainerStatus) int { return int(b.Attempt) - int(a.Attempt) })
	}
	return h
}
