package fsm

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

type seen struct {
	typ   watch.EventType
	name  string
	index uint64
}

func collect(t testing.TB, w *Watcher, n int) []seen {
	t.Helper()
	out := make([]seen, 0, n)
	for i := 0; i < n; i++ {
		ev := nextEvent(t, w)
		out = append(out, seen{ev.Type, prototest.Name(ev.Object), ev.Index})
	}
	return out
}

func sameEvents(t testing.TB, got, want []seen) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestWatchOrderAndResume(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	cms := kindOf(t, "configmaps")
	start := h.index
	w, err := h.store.Watch(cms, WatchOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	h.mustCreate(configMap("a", nil))
	h.update(configMap("a", map[string]string{"k": "v"}), 0, "")
	h.mustCreate(configMap("b", nil))
	h.remove(cms, "default", "a", 0, "")
	h.create(&corev1.ConfigMap{})                                        // rejected (no namespace): no event
	h.mustCreate(prototest.Sample(kindOf(t, "secrets"), "default", "s")) // another kind
	want := []seen{
		{watch.Added, "a", start + 1}, {watch.Modified, "a", start + 2},
		{watch.Added, "b", start + 3}, {watch.Deleted, "a", start + 4},
	}
	sameEvents(t, collect(t, w, 4), want)
	noEvent(t, w)

	resumed, err := h.store.Watch(cms, WatchOptions{ResourceVersion: start + 2})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	sameEvents(t, collect(t, resumed, 2), want[2:])
	noEvent(t, resumed)
}

func TestWatchGoneWhenRingWrapped(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WatchHistory = 16 })
	h.namespace("default")
	cms := kindOf(t, "configmaps")
	first := h.index
	for i := 0; i < 40; i++ {
		h.update(configMap("a", map[string]string{"i": itoa(uint64(i))}), 0, "")
		if i == 0 {
			h.mustCreate(configMap("a", nil))
		}
	}
	if _, err := h.store.Watch(cms, WatchOptions{ResourceVersion: first}); !errors.Is(err, ErrGone) {
		t.Fatalf("watch from a wrapped index: %v, want ErrGone", err)
	}
	recent := h.index - 10
	w, err := h.store.Watch(cms, WatchOptions{ResourceVersion: recent})
	if err != nil {
		t.Fatalf("watch from a held index: %v", err)
	}
	defer w.Stop()
	if n := w.Pending(); n != 10 {
		t.Fatalf("%d events replayed, want 10", n)
	}
	// Other kinds have their own history.
	if _, err := h.store.Watch(kindOf(t, "secrets"), WatchOptions{ResourceVersion: first}); err != nil {
		t.Fatalf("secrets watch: %v", err)
	}
}

func TestWatchPredicateTransitions(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	h.namespace("other")
	selected := func(o proto.Object) bool { return o.(*corev1.ConfigMap).Labels["tier"] == "web" }
	w, err := h.store.Watch(kindOf(t, "configmaps"), WatchOptions{Namespace: "default", ResourceVersion: h.index, Predicate: selected})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	labelled := func(name, tier string) *corev1.ConfigMap {
		cm := configMap(name, nil)
		cm.Labels = map[string]string{"tier": tier}
		return cm
	}
	h.mustCreate(labelled("a", "db"))     // not selected
	h.update(labelled("a", "web"), 0, "") // moves in: ADDED
	h.update(labelled("a", "web"), 0, "") // stays in: MODIFIED
	h.update(labelled("a", "db"), 0, "")  // moves out: DELETED
	h.update(labelled("a", "cache"), 0, "")
	other := labelled("x", "web")
	other.Namespace = "other"
	h.mustCreate(other) // other namespace
	got := collect(t, w, 3)
	want := []seen{{watch.Added, "a", got[0].index}, {watch.Modified, "a", got[1].index}, {watch.Deleted, "a", got[2].index}}
	sameEvents(t, got, want)
	noEvent(t, w)
}

func TestWatchInitialEvents(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	h.mustCreate(configMap("a", nil))
	h.mustCreate(configMap("b", nil))
	w, err := h.store.Watch(kindOf(t, "configmaps"), WatchOptions{SendInitialEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	h.mustCreate(configMap("c", nil))
	at := h.index - 1
	got := collect(t, w, 4)
	sameEvents(t, got, []seen{{watch.Added, "a", at}, {watch.Added, "b", at}, {watch.Bookmark, "", at}, {watch.Added, "c", at + 1}})
}

func TestSlowWatcherIsClosedAndNeverBlocksApply(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WatcherQueue = 16 })
	h.namespace("default")
	slow, err := h.store.Watch(kindOf(t, "configmaps"), WatchOptions{ResourceVersion: h.index})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()

	const n = 1000
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for i := 0; i < n; i++ {
			h.index++
			h.store.Apply(h.index, command(t, proto.CommandCreate, configMap("cm-"+itoa(uint64(i)), nil), 0, "").Encode())
		}
	}()
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply blocked behind a watcher nobody reads")
	}
	if n := slow.Pending(); n != 0 {
		t.Fatalf("closed watcher still holds %d events", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := slow.Next(ctx); !errors.Is(err, ErrWatcherTooSlow) {
		t.Fatalf("slow watcher: %v, want ErrWatcherTooSlow", err)
	}
}

func TestWatchStopAndCancel(t *testing.T) {
	h := newHarness(t)
	w, err := h.store.Watch(kindOf(t, "nodes"), WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on a cancelled context: %v", err)
	}
	stopped := make(chan error)
	go func() {
		_, err := w.Next(context.Background())
		stopped <- err
	}()
	w.Stop()
	select {
	case err := <-stopped:
		if !errors.Is(err, ErrWatchStopped) {
			t.Fatalf("Next after Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not wake Next")
	}
	w.Stop() // idempotent
}

func TestWaitApplied(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.store.WaitApplied(ctx, 2) }()
	h.namespace("a")
	h.namespace("b")
	if err := <-errc; err != nil {
		t.Fatalf("WaitApplied: %v", err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if err := h.store.WaitApplied(short, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied for a future index: %v", err)
	}
}
