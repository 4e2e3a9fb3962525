package agent

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"
)

// statusManager writes pod statuses back to the API without a write
// storm: per pod only the latest desired status is kept (coalescing), it
// is written at most once per minInterval (a change to a terminal phase
// goes at once), never when it equals what was last written, and at most
// `writers` writes run at a time. A conflict is retried on the fresh
// object. Safe for concurrent use; run drives the writes.
type statusManager struct {
	pods        corev1client.PodsGetter
	clock       clock.WithTicker
	log         *slog.Logger
	minInterval time.Duration
	writers     int

	mu      sync.Mutex
	entries map[types.UID]*statusEntry
	wake    chan struct{}
}

// statusEntry is one pod's write state.
type statusEntry struct {
	pod       *corev1.Pod       // latest known object (for name, UID and RV)
	desired   *corev1.PodStatus // what should be in the API
	written   *corev1.PodStatus // what the API is known to hold
	lastWrite time.Time
	urgent    bool // a terminal phase change: skip the pacing
	inflight  bool
	failures  int // consecutive failed writes, for back-off
}

func newStatusManager(pods corev1client.PodsGetter, clk clock.WithTicker, log *slog.Logger, minInterval time.Duration, writers int) *statusManager {
	return &statusManager{
		pods: pods, clock: clk, log: log, minInterval: minInterval, writers: writers,
		entries: map[types.UID]*statusEntry{},
		wake:    make(chan struct{}, 1),
	}
}

// latest returns the status last set for a pod, or the API's.
func (m *statusManager) latest(pod *corev1.Pod) corev1.PodStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[pod.UID]; e != nil && e.desired != nil {
		return *e.desired
	}
	return pod.Status
}

// set records the desired status of pod; the write happens later.
func (m *statusManager) set(pod *corev1.Pod, status corev1.PodStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[pod.UID]
	if e == nil {
		api := pod.Status
		e = &statusEntry{written: &api}
		m.entries[pod.UID] = e
	}
	if e.pod == nil || newerVersion(pod.ResourceVersion, e.pod.ResourceVersion) {
		e.pod = pod
	}
	if e.desired != nil && apiequality.Semantic.DeepEqual(*e.desired, status) {
		return
	}
	prev := e.written.Phase
	e.desired = &status
	if isTerminalPhase(status.Phase) && status.Phase != prev {
		e.urgent = true
	}
	m.signal()
}

// forget drops a pod (deleted, or about to be).
func (m *statusManager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.entries, uid)
	m.mu.Unlock()
}

func (m *statusManager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run writes due statuses until ctx ends.
func (m *statusManager) run(ctx context.Context) {
	sem := make(chan struct{}, m.writers)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := m.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := m.due()
		for _, uid := range due {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				m.write(ctx, uid)
			}()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(m.clock.Now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C():
		}
	}
}

// due marks and returns the pods whose write may start now, and the
// earliest time another one becomes due.
func (m *statusManager) due() ([]types.UID, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	var out []types.UID
	var next time.Time
	for uid, e := range m.entries {
		if e.inflight || e.desired == nil || apiequality.Semantic.DeepEqual(*e.desired, *e.written) {
			continue
		}
		interval := m.minInterval
		if e.failures > 0 {
			interval = min(m.minInterval<<min(e.failures, 6)+time.Second, time.Minute)
		}
		at := e.lastWrite.Add(interval)
		if e.urgent || !now.Before(at) {
			e.inflight = true
			out = append(out, uid)
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return out, next
}

// write sends one pod's desired status.
func (m *statusManager) write(ctx context.Context, uid types.UID) {
	m.mu.Lock()
	e := m.entries[uid]
	if e == nil {
		m.mu.Unlock()
		return
	}
	pod, status := e.pod.DeepCopy(), *e.desired.DeepCopy()
	e.urgent = false
	m.mu.Unlock()

	stored, err := m.update(ctx, pod, status)

	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.entries[uid]; cur != e {
		return // forgotten meanwhile
	}
	e.inflight = false
	e.lastWrite = m.clock.Now()
	switch {
	case err == nil:
		e.written, e.failures = &status, 0
		if stored != nil {
			e.pod = stored // the newest resourceVersion, for the next write
		}
	case apierrors.IsNotFound(err):
		delete(m.entries, uid)
		return
	default:
		e.failures++
		m.log.Warn("pod status write failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	if !apiequality.Semantic.DeepEqual(*e.desired, *e.written) {
		m.signal() // changed while writing, or failed: pace the next try
	}
}

// update writes status onto pod, retrying conflicts on the fresh object
// (the UID must still match).
func (m *statusManager) update(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) (*corev1.Pod, error) {
	for try := 0; ; try++ {
		pod.Status = status
		stored, err := m.pods.Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || try >= 3 {
			return stored, err
		}
		fresh, err := m.pods.Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if fresh.UID != pod.UID {
			return nil, apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		pod = fresh
	}
}

// newerVersion reports whether resourceVersion a is newer than b. skiff's
// resourceVersions are Raft indexes, so they compare as numbers; anything
// else counts as newer (the object is replaced).
func newerVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA != nil || errB != nil || x > y
}

func isTerminalPhase(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}
