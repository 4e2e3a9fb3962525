package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// probeKind is liveness, readiness or startup.
type probeKind int

const (
	liveness probeKind = iota
	readiness
	startup
)

func (k probeKind) String() string {
	return [...]string{"liveness", "readiness", "startup"}[k]
}

// probeResult is a probe's published verdict.
type probeResult int8

const (
	resultUnknown probeResult = iota
	resultSuccess
	resultFailure
)

// probeKey identifies one probe of one container attempt.
type probeKey struct {
	id   string
	kind probeKind
}

// probeTarget is what a probe runs against.
type probeTarget struct {
	pod       *corev1.Pod
	container *corev1.Container
	id        string // runtime container ID
	netNS     string // pod network namespace; "" for host network
	startedAt time.Time
}

// probeFunc runs one probe once; ctx carries the probe's timeout.
type probeFunc func(ctx context.Context, t probeTarget, p *corev1.Probe) (ok bool, message string)

// probeTracker applies the success and failure thresholds: the published
// result flips only after that many consecutive identical outcomes.
type probeTracker struct {
	result           probeResult
	last             bool
	run              int32
	success, failure int32
}

// newProbeTracker starts from the kubelet's initial results: liveness
// passes, readiness fails, startup is unknown until decided.
func newProbeTracker(kind probeKind, p *corev1.Probe) *probeTracker {
	t := &probeTracker{success: max(p.SuccessThreshold, 1), failure: max(p.FailureThreshold, 1)}
	switch kind {
	case liveness:
		t.result = resultSuccess
	case readiness:
		t.result = resultFailure
	}
	if kind != readiness {
		t.success = 1 // Kubernetes requires 1 for liveness and startup
	}
	return t
}

// observe records one outcome and reports whether the result changed.
func (t *probeTracker) observe(ok bool) bool {
	if t.run > 0 && ok == t.last {
		t.run++
	} else {
		t.last, t.run = ok, 1
	}
	want, threshold := resultSuccess, t.success
	if !ok {
		want, threshold = resultFailure, t.failure
	}
	if t.run < threshold || t.result == want {
		return false
	}
	t.result = want
	return true
}

// probeManager runs a worker per probe of every running container and
// keeps their results. A changed result wakes the pod's worker through
// notify. Safe for concurrent use.
type probeManager struct {
	clock  clock.WithTicker
	log    *slog.Logger
	run    probeFunc
	notify func(podUID string)

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
	results map[probeKey]probeResult
	wg      sync.WaitGroup
}

func newProbeManager(clk clock.WithTicker, log *slog.Logger, run probeFunc, notify func(string)) *probeManager {
	return &probeManager{clock: clk, log: log, run: run, notify: notify,
		workers: map[probeKey]*probeWorker{}, results: map[probeKey]probeResult{}}
}

// probeWorker probes one container attempt with one probe.
type probeWorker struct {
	key     probeKey
	target  probeTarget
	probe   *corev1.Probe
	tracker *probeTracker
	stop    chan struct{}
}

// sync starts workers for the probes of the pod's running containers and
// stops those of containers that no longer run.
func (m *probeManager) sync(ctx context.Context, pod *corev1.Pod, netNS string, running []ContainerStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := map[string]bool{}
	for _, st := range running {
		live[st.ID] = true
		c := findContainer(pod, st.Name)
		if c == nil {
			continue
		}
		for kind, p := range map[probeKind]*corev1.Probe{liveness: c.LivenessProbe, readiness: c.ReadinessProbe, startup: c.StartupProbe} {
			key := probeKey{id: st.ID, kind: kind}
			if p == nil || m.workers[key] != nil {
				continue
			}
			w := &probeWorker{key: key, probe: p, tracker: newProbeTracker(kind, p), stop: make(chan struct{}),
				target: probeTarget{pod: pod, container: c, id: st.ID, netNS: netNS, startedAt: st.StartedAt}}
			m.workers[key] = w
			m.results[key] = w.tracker.result
			m.wg.Add(1)
			go m.work(ctx, w)
		}
	}
	for key, w := range m.workers {
		if w.target.pod.UID == pod.UID && !live[key.id] {
			m.stopLocked(key)
		}
	}
}

// stopPod stops every probe of a pod.
func (m *probeManager) stopPod(uid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if string(w.target.pod.UID) == uid {
			m.stopLocked(key)
		}
	}
}

func (m *probeManager) stopLocked(key probeKey) {
	close(m.workers[key].stop)
	delete(m.workers, key)
	delete(m.results, key)
}

// wait blocks until every worker has returned (after ctx ended).
func (m *probeManager) wait() { m.wg.Wait() }

// state returns the probes' verdict on running container id of spec c.
func (m *probeManager) state(id string, c *corev1.Container) probeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := func(kind probeKind, p *corev1.Probe, none probeResult) probeResult {
		if p == nil {
			return none
		}
		if r, ok := m.results[probeKey{id: id, kind: kind}]; ok {
			return r
		}
		return newProbeTracker(kind, p).result
	}
	started := res(startup, c.StartupProbe, resultSuccess)
	return probeState{
		started: started == resultSuccess,
		ready:   started == resultSuccess && res(readiness, c.ReadinessProbe, resultSuccess) == resultSuccess,
		failed:  started == resultFailure || res(liveness, c.LivenessProbe, resultSuccess) == resultFailure,
	}
}

// work probes every period, starting after the initial delay, until the
// worker is stopped, ctx ends, the startup probe passed, or a liveness or
// startup probe failed (the container is then restarted, with new workers).
func (m *probeManager) work(ctx context.Context, w *probeWorker) {
	defer m.wg.Done()
	first := w.target.startedAt.Add(seconds(w.probe.InitialDelaySeconds)).Sub(m.clock.Now())
	timer := m.clock.NewTimer(max(first, 0))
	defer timer.Stop()
	period := seconds(max(w.probe.PeriodSeconds, 1))
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-timer.C():
		}
		if !m.probeOnce(ctx, w) {
			return
		}
		timer.Reset(period)
	}
}

// probeOnce runs the probe once and publishes a changed result; it
// returns false when the worker is done.
func (m *probeManager) probeOnce(ctx context.Context, w *probeWorker) bool {
	c := w.target.container
	if w.key.kind != startup && c.StartupProbe != nil && m.result(probeKey{id: w.key.id, kind: startup}) != resultSuccess {
		return true // liveness and readiness wait for the startup probe
	}
	pctx, cancel := context.WithTimeout(ctx, seconds(max(w.probe.TimeoutSeconds, 1)))
	ok, msg := m.run(pctx, w.target, w.probe)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if !ok {
		m.log.Debug("probe failed", "probe", w.key.kind, "pod", w.target.pod.Namespace+"/"+w.target.pod.Name,
			"container", c.Name, "message", msg)
	}
	if w.tracker.observe(ok) && m.publish(w) {
		m.log.Info("probe result changed", "probe", w.key.kind, "pod", w.target.pod.Namespace+"/"+w.target.pod.Name,
			"container", c.Name, "success", ok, "message", msg)
		m.notify(string(w.target.pod.UID))
	}
	switch r := w.tracker.result; {
	case w.key.kind == startup && r == resultSuccess:
		return false
	case w.key.kind != readiness && r == resultFailure:
		return false
	}
	return true
}

// publish stores a worker's result unless it was stopped meanwhile.
func (m *probeManager) publish(w *probeWorker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[w.key] != w {
		return false
	}
	m.results[w.key] = w.tracker.result
	return true
}

func (m *probeManager) result(key probeKey) probeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.results[key]
}

func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }

// findContainer returns the pod's init or app container called name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
