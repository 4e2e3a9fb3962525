package fsm

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffhq/skiff/proto"
)

var (
	// ErrGone is returned by Watch when the requested resourceVersion is
	// older than the history the hub still holds (HTTP 410).
	ErrGone = errors.New("fsm: requested resource version is too old")
	// ErrWatcherTooSlow ends a watch whose consumer fell too far behind.
	ErrWatcherTooSlow = errors.New("fsm: watcher fell too far behind")
	// ErrWatchStopped is returned by Next after Stop.
	ErrWatchStopped = errors.New("fsm: watch stopped")
)

// Event is one change to one object.
type Event struct {
	Type watch.EventType
	// Object is the new state; for DELETED the last state, with the
	// resourceVersion of the deletion. For BOOKMARK it is nil.
	Object proto.Object
	// Old is the previous state for MODIFIED and DELETED events.
	Old proto.Object
	// Index is the Raft index of the change.
	Index uint64
}

// ring is a fixed-size history of events of one kind.
type ring struct {
	buf       []Event
	start, n  int
	compacted uint64 // highest index no longer held
}

func newRing(size int) *ring { return &ring{buf: make([]Event, size)} }

func (r *ring) push(ev Event) {
	if r.n == len(r.buf) {
		r.compacted = r.buf[r.start].Index
		r.buf[r.start] = Event{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
	r.buf[(r.start+r.n)%len(r.buf)] = ev
	r.n++
}

// since returns the events after index, or false if some are gone.
func (r *ring) since(index uint64) ([]Event, bool) {
	if index < r.compacted {
		return nil, false
	}
	var out []Event
	for i := 0; i < r.n; i++ {
		ev := r.buf[(r.start+i)%len(r.buf)]
		if ev.Index > index {
			out = append(out, ev)
		}
	}
	return out, true
}

// WatchOptions selects what a watch delivers.
type WatchOptions struct {
	// Namespace limits the watch to one namespace; "" watches all.
	Namespace string
	// ResourceVersion resumes after this index. Ignored when
	// SendInitialEvents is set.
	ResourceVersion uint64
	// SendInitialEvents first delivers an ADDED event for every matching
	// object, then a BOOKMARK at the index they reflect.
	SendInitialEvents bool
	// Predicate filters objects; nil matches all.
	Predicate Predicate
}

// Watcher delivers events of one kind in index order. Next is meant for a
// single consumer goroutine; Stop may be called from any goroutine.
type Watcher struct {
	store *Store
	kind  *proto.Kind
	opts  WatchOptions
	max   int

	mu     sync.Mutex
	queue  []Event
	err    error
	notify chan struct{}
}

// Watch starts a watch on kind. It fails with ErrGone when
// opts.ResourceVersion is older than the retained history.
func (s *Store) Watch(kind *proto.Kind, opts WatchOptions) (*Watcher, error) {
	w := &Watcher{store: s, kind: kind, opts: opts, max: s.cfg.WatcherQueue, notify: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[kind]
	if opts.SendInitialEvents {
		for _, obj := range s.listLocked(kind, opts.Namespace, opts.Predicate) {
			w.queue = append(w.queue, Event{Type: watch.Added, Object: obj, Index: s.applied})
		}
		w.queue = append(w.queue, Event{Type: watch.Bookmark, Index: s.applied})
	} else {
		past, ok := t.ring.since(opts.ResourceVersion)
		if !ok {
			return nil, ErrGone
		}
		for _, ev := range past {
			if ev, ok := w.filter(ev); ok {
				w.queue = append(w.queue, ev)
			}
		}
	}
	t.watches[w] = struct{}{}
	if len(w.queue) > 0 {
		w.notify <- struct{}{}
	}
	return w, nil
}

func (w *Watcher) matches(obj proto.Object) bool {
	if obj == nil {
		return false
	}
	if w.opts.Namespace != "" {
		if m, ok := obj.(interface{ GetNamespace() string }); ok && m.GetNamespace() != w.opts.Namespace {
			return false
		}
	}
	return w.opts.Predicate == nil || w.opts.Predicate(obj)
}

// filter turns a store event into what this watcher should see: an update
// that moves an object into the selection is ADDED, out of it DELETED.
func (w *Watcher) filter(ev Event) (Event, bool) {
	switch ev.Type {
	case watch.Added, watch.Deleted:
		return ev, w.matches(ev.Object)
	case watch.Modified:
		was, is := w.matches(ev.Old), w.matches(ev.Object)
		switch {
		case was && is:
			return ev, true
		case is:
			ev.Type = watch.Added
			return ev, true
		case was:
			ev.Type = watch.Deleted
			return ev, true
		}
	}
	return ev, false
}

// offer is called by Apply with the store lock held; it never blocks.
func (w *Watcher) offer(ev Event) {
	ev, ok := w.filter(ev)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if len(w.queue) >= w.max {
		w.err = ErrWatcherTooSlow
		w.queue = nil
	} else {
		w.queue = append(w.queue, ev)
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// close ends the watch with err; the caller holds the store lock.
func (w *Watcher) close(err error) {
	delete(w.store.tables[w.kind].watches, w)
	w.mu.Lock()
	if w.err == nil {
		w.err = err
		w.queue = nil
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Next blocks until the next event, the end of the watch or ctx's end.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			ev := w.queue[0]
			w.queue[0] = Event{}
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return ev, nil
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Pending returns how many events are queued and not yet taken by Next.
func (w *Watcher) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// Stop ends the watch and releases its resources.
func (w *Watcher) Stop() {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	w.close(ErrWatchStopped)
}

// emit records ev in the kind's history and offers it to its watchers. The
// caller holds the write lock.
func (s *Store) emit(kind *proto.Kind, ev Event) {
	t := s.tables[kind]
	t.ring.push(ev)
	for w := range t.watches {
		w.offer(ev)
	}
}
