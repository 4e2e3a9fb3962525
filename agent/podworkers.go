package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// finishedTTL is how long the UID of a pod the agent tore down and deleted
// is remembered, so that late informer events do not revive it.
const finishedTTL = 10 * time.Minute

// podWorkers owns one goroutine per pod (the kubelet's pod workers, or a
// swarmkit task controller per task): every change of the pod object,
// runtime event, probe result or back-off expiry wakes the pod's worker,
// which re-runs the whole sync. Wake-ups coalesce, so a worker never falls
// behind. Safe for concurrent use.
type podWorkers struct {
	a *Agent

	mu       sync.Mutex
	ctx      context.Context // Run's context; workers start only once it is set
	workers  map[string]*podWorker
	finished map[string]time.Time // UID -> when its worker deleted the pod
	wg       sync.WaitGroup

	imageGen atomic.Uint64 // bumped when images are loaded
}

func newPodWorkers(a *Agent) *podWorkers {
	return &podWorkers{a: a, workers: map[string]*podWorker{}, finished: map[string]time.Time{}}
}

// start lets workers run under ctx.
func (p *podWorkers) start(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
}

// update hands the latest pod object to its worker, starting one.
func (p *podWorkers) update(pod *corev1.Pod) {
	uid := string(pod.UID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, done := p.finished[uid]; done || p.ctx == nil {
		return
	}
	w := p.workers[uid]
	if w == nil {
		w = newPodWorker(p.a, pod)
		p.workers[uid] = w
		p.wg.Add(1)
		ctx := p.ctx
		go func() {
			defer p.wg.Done()
			w.loop(ctx)
			p.done(uid, w)
		}()
	}
	w.setPod(pod, false)
}

// remove tells a pod's worker that the pod is gone from the API.
func (p *podWorkers) remove(pod *corev1.Pod) {
	uid := string(pod.UID)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.finished, uid) // no more events will come for it
	if w := p.workers[uid]; w != nil {
		w.setPod(pod, true)
	}
}

// wake makes a pod's worker sync soon.
func (p *podWorkers) wake(uid string) {
	p.mu.Lock()
	w := p.workers[uid]
	p.mu.Unlock()
	if w != nil {
		w.signal()
	}
}

// imageLoaded retries at once the containers that wait for an image.
func (p *podWorkers) imageLoaded() {
	p.imageGen.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		w.signal()
	}
}

// has reports whether a pod has a worker (it exists in the API, or is
// being torn down).
func (p *podWorkers) has(uid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.workers[uid]
	return ok
}

// done unregisters a worker that returned.
func (p *podWorkers) done(uid string, w *podWorker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workers[uid] == w {
		delete(p.workers, uid)
	}
	now := p.a.clock.Now()
	if w.deleted {
		p.finished[uid] = now
	}
	for id, at := range p.finished {
		if now.Sub(at) > finishedTTL {
			delete(p.finished, id)
		}
	}
}

// context returns Run's context (for work that outlives one sync, such as
// probes), or a cancelled one before Run.
func (p *podWorkers) context() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return p.ctx
}

// wait blocks until every worker returned (after Run's context ended).
func (p *podWorkers) wait() { p.wg.Wait() }

// podWorker syncs one pod. Fields after the mutex-guarded block belong to
// the worker's goroutine.
type podWorker struct {
	a   *Agent
	uid string

	wakeC chan struct{}

	mu          sync.Mutex
	pod         *corev1.Pod
	gone        bool               // deleted from the API
	cancelSync  context.CancelFunc // cancels a running non-terminating sync
	terminating bool

	sandbox   *Sandbox
	failures  map[string]*failure // by container name
	startErrs map[string]startErr // by container ID
	sbFailure *failure            // sandbox creation
	released  bool                // the sandbox of the terminal pod is gone
	termErrs  int                 // consecutive failed teardowns
	immediate int                 // consecutive syncs that asked to re-run at once
	imageGen  uint64              // podWorkers.imageGen seen last
	deleted   bool                // torn down and deleted from the API
	volsAt    time.Time           // ConfigMap and Secret volumes last written
}

// startErr records a container whose start failed.
type startErr struct {
	message string
	at      time.Time
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	return &podWorker{a: a, uid: string(pod.UID), pod: pod, wakeC: make(chan struct{}, 1),
		failures: map[string]*failure{}, startErrs: map[string]startErr{}}
}

// setPod records the latest object (gone: deleted from the API). A pod
// that starts terminating cancels a sync in progress (e.g. a pull).
func (w *podWorker) setPod(pod *corev1.Pod, gone bool) {
	w.mu.Lock()
	w.pod = pod
	w.gone = w.gone || gone
	if (gone || pod.DeletionTimestamp != nil) && w.cancelSync != nil && !w.terminating {
		w.cancelSync()
	}
	w.mu.Unlock()
	w.signal()
}

func (w *podWorker) signal() {
	select {
	case w.wakeC <- struct{}{}:
	default:
	}
}

func (w *podWorker) snapshot() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

// loop syncs until the pod is torn down or ctx ends.
func (w *podWorker) loop(ctx context.Context) {
	for {
		pod, gone := w.snapshot()
		terminating := gone || pod.DeletionTimestamp != nil
		sctx, cancel := context.WithCancel(ctx)
		w.mu.Lock()
		w.cancelSync, w.terminating = cancel, terminating
		w.mu.Unlock()
		var next time.Time
		if terminating {
			if w.terminate(sctx, pod, gone) {
				cancel()
				return
			}
			w.termErrs++
			next = w.a.clock.Now().Add(doubling(100*time.Millisecond, 10*time.Second, w.termErrs))
		} else {
			next = w.pace(w.sync(sctx, pod))
		}
		w.mu.Lock()
		w.cancelSync = nil
		w.mu.Unlock()
		cancel()
		if !w.waitNext(ctx, next) {
			return
		}
	}
}

// pace slows down a pod whose syncs keep asking to re-run at once (an
// action that keeps failing without a back-off of its own).
func (w *podWorker) pace(next time.Time) time.Time {
	now := w.a.clock.Now()
	if next.IsZero() || next.After(now) {
		w.immediate = 0
		return next
	}
	w.immediate++
	if w.immediate <= 3 {
		return next
	}
	return now.Add(doubling(100*time.Millisecond, 5*time.Second, w.immediate-3))
}

// waitNext waits for a wake-up or until at (zero: no deadline).
func (w *podWorker) waitNext(ctx context.Context, at time.Time) bool {
	var tc <-chan time.Time
	if !at.IsZero() {
		d := at.Sub(w.a.clock.Now())
		if d <= 0 {
			return ctx.Err() == nil
		}
		t := w.a.clock.NewTimer(d)
		defer t.Stop()
		tc = t.C()
	}
	select {
	case <-ctx.Done():
		return false
	case <-w.wakeC:
		return true
	case <-tc:
		return true
	}
}
