package agent

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// keepAttempts is how many attempts per container stay in the runtime:
// the current one and the previous one (its exit state and its logs back
// lastState and `logs --previous`).
const keepAttempts = 2

// sync brings a live pod one step closer to its spec and reports its
// status. It returns when it wants to run again (zero: on the next event).
func (w *podWorker) sync(ctx context.Context, pod *corev1.Pod) time.Time {
	a := w.a
	w.forgetImageFailures()
	hashes := map[string]string{}
	for _, c := range allContainers(pod) {
		hashes[c.Name] = specHash(pod, c)
	}
	policy := a.cfg.backoff()
	v := w.view(pod, hashes)
	acts := computeActions(v, policy)
	terminal := v.apiTerminal || isTerminalPhase(acts.phase)
	if !terminal {
		if err := w.ensureSandbox(ctx, pod); err != nil {
			return w.report(pod, hashes, w.sbFailure.at.Add(policy.pullDelay(w.sbFailure.count)))
		}
	}
	w.kill(ctx, pod, acts.kill)
	in := w.startInputs(ctx, pod, acts.start)
	for _, s := range acts.start {
		if ctx.Err() != nil {
			break
		}
		w.start(ctx, pod, s, in)
	}
	var refresh time.Time
	if terminal {
		w.releaseSandbox(ctx, pod)
	} else {
		refresh = w.refreshConfigVolumes(ctx, pod)
	}
	return earliest(w.report(pod, hashes, time.Time{}), refresh)
}

// earliest is the earlier of two wake-ups; zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// forgetImageFailures drops image failures after an image load, so that
// waiting containers retry at once instead of after their back-off.
func (w *podWorker) forgetImageFailures() {
	g := w.a.workers.imageGen.Load()
	if g == w.imageGen {
		return
	}
	w.imageGen = g
	for name, f := range w.failures {
		switch f.reason {
		case reasonErrImagePull, reasonErrImageNeverPull:
			delete(w.failures, name)
		}
	}
}

// report recomputes the pod's state after the sync's actions, publishes
// its status, starts or stops probes, collects old attempts and returns
// the next wake-up. A non-zero retry (the sandbox failed) replaces the
// immediate re-sync that pending actions would ask for.
func (w *podWorker) report(pod *corev1.Pod, hashes map[string]string, retry time.Time) time.Time {
	a := w.a
	v := w.view(pod, hashes)
	acts := computeActions(v, a.cfg.backoff())
	if w.sandbox == nil && w.sbFailure != nil {
		for _, c := range allContainers(pod) {
			if _, ok := v.latest(c.Name); !ok {
				acts.waiting[c.Name] = waitState{reason: reasonContainerCreating, message: w.sbFailure.message}
			}
		}
	}
	var running []ContainerStatus
	for _, h := range v.history {
		if h[0].State == StateRunning {
			running = append(running, h[0])
		}
	}
	netNS := ""
	if w.sandbox != nil && !pod.Spec.HostNetwork {
		netNS = w.sandbox.NetNSPath
	}
	a.probes.sync(a.workers.context(), pod, netNS, running)
	w.collectAttempts(pod, v)
	status := computeStatus(v, &acts, statusInput{old: a.status.latest(pod), hostIP: a.nodeIP, imageID: a.images.id})
	a.status.set(pod, status)
	next := acts.wakeAt
	switch {
	case !retry.IsZero():
		if next.IsZero() || retry.Before(next) {
			next = retry
		}
	case len(acts.start) > 0 || len(acts.kill) > 0:
		next = a.clock.Now() // more to do at once (e.g. restart what was killed)
	}
	return next
}

// view gathers what the runtime has for the pod. Containers that failed
// to start are shown as exited with reason StartError.
func (w *podWorker) view(pod *corev1.Pod, hashes map[string]string) *podView {
	a := w.a
	cs := a.cache.pod(w.uid)
	messages := map[string]string{}
	for i, c := range cs {
		if e, ok := w.startErrs[c.ID]; ok && c.State == StateCreated {
			c.State, c.ExitCode, c.Reason, c.FinishedAt = StateExited, 128, reasonStartError, e.at
			cs[i] = c
			messages[c.ID] = e.message
		}
	}
	v := &podView{
		pod: pod, now: a.clock.Now(), history: groupHistory(cs), hashes: hashes,
		probes: map[string]probeState{}, failures: w.failures, messages: messages,
		apiTerminal: isTerminalPhase(pod.Status.Phase),
	}
	for name, h := range v.history {
		if c := findContainer(pod, name); c != nil && h[0].State == StateRunning {
			v.probes[h[0].ID] = a.probes.state(h[0].ID, c)
		}
	}
	return v
}

// ensureSandbox creates (or finds again) the pod's sandbox.
func (w *podWorker) ensureSandbox(ctx context.Context, pod *corev1.Pod) error {
	if w.sandbox != nil {
		return nil
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	sb, err := w.a.rt.CreateSandbox(ctx, SandboxSpec{PodUID: w.uid, Name: pod.Name, Namespace: pod.Namespace, Hostname: hostname})
	if err != nil {
		n := 1
		if w.sbFailure != nil {
			n = w.sbFailure.count + 1
		}
		w.sbFailure = &failure{reason: reasonContainerCreating, message: "failed to create pod sandbox: " + err.Error(), count: n, at: w.a.clock.Now()}
		w.a.log.Warn("create sandbox", "pod", podKey(pod), "err", err)
		return err
	}
	w.sandbox, w.sbFailure = &sb, nil
	return nil
}

// releaseSandbox removes the sandbox of a terminal pod once none of its
// containers runs (its exited containers and logs stay until deletion).
func (w *podWorker) releaseSandbox(ctx context.Context, pod *corev1.Pod) {
	if w.released {
		return
	}
	for _, c := range w.a.cache.pod(w.uid) {
		if c.State == StateRunning {
			return
		}
	}
	if err := w.a.rt.RemoveSandbox(ctx, w.uid); err != nil {
		w.a.log.Warn("remove sandbox", "pod", podKey(pod), "err", err)
		return
	}
	// A finished pod keeps its logs and exit states, not its volumes.
	if err := w.a.tearDownVolumes(w.uid); err != nil {
		w.a.log.Warn("remove volumes", "pod", podKey(pod), "err", err)
		return
	}
	w.sandbox, w.released = nil, true
}

// kill stops containers in parallel, each with its grace period.
func (w *podWorker) kill(ctx context.Context, pod *corev1.Pod, kills []killAction) {
	var wg sync.WaitGroup
	for _, k := range kills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := killGrace(pod, findContainer(pod, k.name), k.probe)
			w.a.log.Info("stopping container", "pod", podKey(pod), "container", k.name, "reason", k.reason, "grace", grace)
			if err := w.a.rt.StopContainer(ctx, k.id, grace); err != nil {
				w.a.log.Warn("stop container", "pod", podKey(pod), "container", k.name, "err", err)
			}
			w.a.refresh(ctx, k.id)
		}()
	}
	wg.Wait()
}

// startInputs is what every new container of one sync shares: the pod's
// volumes, set up once, and ConfigMap and Secret reads, made once.
type startInputs struct {
	config configSource
	vols   map[string]string
	volErr error
}

// startInputs prepares the volumes when the sync creates containers.
func (w *podWorker) startInputs(ctx context.Context, pod *corev1.Pod, starts []startAction) startInputs {
	in := startInputs{config: newMemoSource(w.a.config)}
	for _, s := range starts {
		if s.existingID == "" {
			if in.vols, in.volErr = w.a.setUpVolumes(ctx, pod, in.config); in.volErr == nil {
				w.volsAt = w.a.clock.Now()
			}
			break
		}
	}
	return in
}

// start runs one start action; failures are remembered for the status
// and the back-off.
func (w *podWorker) start(ctx context.Context, pod *corev1.Pod, s startAction, in startInputs) {
	a, c := w.a, s.container
	if s.existingID != "" {
		w.startContainer(ctx, pod, c.Name, s.existingID)
		return
	}
	err := in.volErr
	var spec ContainerSpec
	if err == nil {
		spec, err = containerSpec(ctx, pod, c, *w.sandbox, podEnv{nodeName: a.cfg.NodeName, hostIP: a.nodeIP, podIP: pod.Status.PodIP}, in.config)
	}
	if err == nil {
		spec.Mounts, err = volumeMounts(pod, c, in.vols)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.fail(c, reasonCreateContainerConf, err.Error())
		}
		return
	}
	img, err := a.rt.EnsureImage(ctx, c.Image, pullPolicy(c.ImagePullPolicy))
	if err != nil {
		if ctx.Err() == nil {
			reason, msg := pullFailure(c, err)
			w.fail(c, reason, msg)
		}
		return
	}
	a.images.set(img)
	spec.Attempt = s.attempt
	spec.Labels = map[string]string{labelRestartStreak: strconv.FormatUint(uint64(s.streak), 10)}
	id, err := a.rt.CreateContainer(ctx, spec)
	if errors.Is(err, ErrAlreadyExists) {
		// A leftover of this attempt with another spec: replace it.
		if old, ok := w.attempt(c.Name, s.attempt); ok {
			if err = a.rt.RemoveContainer(ctx, old.ID); err == nil {
				a.cache.remove(old.ID)
				id, err = a.rt.CreateContainer(ctx, spec)
			}
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			w.fail(c, reasonCreateContainerErr, err.Error())
		}
		return
	}
	delete(w.failures, c.Name)
	w.startContainer(ctx, pod, c.Name, id)
}

// attempt finds a given attempt of a container in the cache.
func (w *podWorker) attempt(name string, attempt uint32) (ContainerStatus, bool) {
	for _, c := range w.a.cache.pod(w.uid) {
		if c.Name == name && c.Attempt == attempt {
			return c, true
		}
	}
	return ContainerStatus{}, false
}

// startContainer starts a created container and refreshes the cache.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, name, id string) {
	a := w.a
	if err := a.rt.StartContainer(ctx, id); err != nil && ctx.Err() == nil {
		a.log.Warn("start container", "pod", podKey(pod), "container", name, "err", err)
		w.startErrs[id] = startErr{message: err.Error(), at: a.clock.Now()}
	} else if err == nil {
		a.log.Info("started container", "pod", podKey(pod), "container", name, "id", id)
	}
	a.refresh(context.WithoutCancel(ctx), id)
}

// fail remembers a failure to get a container created.
func (w *podWorker) fail(c *corev1.Container, reason, message string) {
	f := w.failures[c.Name]
	if f == nil || f.image != c.Image {
		f = &failure{image: c.Image}
		w.failures[c.Name] = f
	}
	f.reason, f.message, f.at = reason, message, w.a.clock.Now()
	f.count++
	w.a.log.Warn("cannot create container", "pod", w.uid, "container", c.Name, "reason", reason, "message", message)
}

// collectAttempts removes attempts older than the previous one, and
// containers whose name the pod no longer has, with their log files.
func (w *podWorker) collectAttempts(pod *corev1.Pod, v *podView) {
	ctx := w.a.workers.context()
	for name, h := range v.history {
		keep := keepAttempts
		if findContainer(pod, name) == nil {
			keep = 0
		}
		for _, old := range h[min(keep, len(h)):] {
			if old.State == StateRunning && keep > 0 {
				continue
			}
			if err := w.a.rt.RemoveContainer(ctx, old.ID); err != nil {
				w.a.log.Warn("remove old container", "id", old.ID, "err", err)
				continue
			}
			removeLogFiles(old.LogPath)
			w.a.cache.remove(old.ID)
			delete(w.startErrs, old.ID)
		}
	}
}

// removeLogFiles deletes a container attempt's log and its rotated copy.
func removeLogFiles(path string) {
	if path == "" {
		return
	}
	_ = os.Remove(path)
	_ = os.Remove(path + ".1")
}

// pullPolicy maps the Kubernetes policy.
func pullPolicy(p corev1.PullPolicy) PullPolicy {
	switch p {
	case corev1.PullAlways:
		return PullAlways
	case corev1.PullNever:
		return PullNever
	}
	return PullIfNotPresent
}

// pullFailure returns the waiting reason and message for an image error.
func pullFailure(c *corev1.Container, err error) (string, string) {
	switch {
	case errors.Is(err, ErrInvalidImageName):
		return reasonInvalidImageName, "Failed to apply default image tag " + strconv.Quote(c.Image) + ": " + err.Error()
	case errors.Is(err, ErrImageNotPresent) && c.ImagePullPolicy == corev1.PullNever:
		return reasonErrImageNeverPull, "Container image " + strconv.Quote(c.Image) + " is not present with pull policy of Never"
	}
	return reasonErrImagePull, err.Error()
}

// killGrace is the grace period for stopping a container: after a probe
// failure the probe's own terminationGracePeriodSeconds when set, else
// the pod's.
func killGrace(pod *corev1.Pod, c *corev1.Container, probe bool) time.Duration {
	if probe && c != nil {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.TerminationGracePeriodSeconds != nil {
				return time.Duration(max(*p.TerminationGracePeriodSeconds, 0)) * time.Second
			}
		}
	}
	return podGrace(pod)
}

// podGrace is the pod's terminationGracePeriodSeconds (default 30 s).
func podGrace(pod *corev1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(max(*g, 0)) * time.Second
	}
	return corev1.DefaultTerminationGracePeriodSeconds * time.Second
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }
