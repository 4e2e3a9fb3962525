package scheduler

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

// eventSink passes the event broadcaster's writes to the API until the
// Manager stops; after that it drops them (reporting success, so the
// broadcaster neither retries nor logs), and stop waits briefly for the
// writes in flight. A Manager that lost leadership thus stops writing
// events when Run returns.
type eventSink struct {
	sink record.EventSink

	mu       sync.RWMutex
	stopped  bool
	inflight sync.WaitGroup
}

func (s *eventSink) do(ev *corev1.Event, write func() (*corev1.Event, error)) (*corev1.Event, error) {
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		return ev, nil
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()
	return write()
}

// Create implements record.EventSink.
func (s *eventSink) Create(ev *corev1.Event) (*corev1.Event, error) {
	return s.do(ev, func() (*corev1.Event, error) { return s.sink.Create(ev) })
}

// Update implements record.EventSink.
func (s *eventSink) Update(ev *corev1.Event) (*corev1.Event, error) {
	return s.do(ev, func() (*corev1.Event, error) { return s.sink.Update(ev) })
}

// Patch implements record.EventSink.
func (s *eventSink) Patch(old *corev1.Event, data []byte) (*corev1.Event, error) {
	return s.do(old, func() (*corev1.Event, error) { return s.sink.Patch(old, data) })
}

// stop drops later writes and waits up to timeout for those in flight.
func (s *eventSink) stop(timeout time.Duration) {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}
