package fsm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

// populate creates several objects of every served kind in two namespaces
// and changes some of them, so that a snapshot has something to lose.
func populate(t testing.TB, h *harness) {
	t.Helper()
	h.namespace("default")
	h.namespace("team-a")
	for _, k := range proto.Kinds() {
		for _, ns := range []string{"default", "team-a"} {
			for _, name := range []string{"one", "two"} {
				if !k.Namespaced && ns != "default" {
					continue
				}
				if k.Resource == "namespaces" && name == "one" {
					name = "extra"
				}
				h.mustCreate(prototest.Sample(k, ns, k.Singular+"-"+name))
			}
		}
	}
	cm := prototest.Sample(kindOf(t, "configmaps"), "team-a", "configmap-one")
	if res := h.update(cm, 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := h.remove(kindOf(t, "configmaps"), "default", "configmap-two", 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
}

// sameState fails unless both stores hold deeply equal objects of every
// kind, the same applied index and the same ClusterIP allocations.
func sameState(t testing.TB, got, want *Store) {
	t.Helper()
	for _, k := range proto.Kinds() {
		g, gi := got.List(k, "", nil)
		w, wi := want.List(k, "", nil)
		if gi != wi {
			t.Fatalf("%s: applied index %d, want %d", k.Resource, gi, wi)
		}
		if len(g) != len(w) || len(w) == 0 {
			t.Fatalf("%s: %d objects, want %d (and more than none)", k.Resource, len(g), len(w))
		}
		for i := range w {
			if !apiequality.Semantic.DeepEqual(g[i], w[i]) {
				t.Fatalf("%s: object %d differs:\ngot  %+v\nwant %+v", k.Resource, i, g[i], w[i])
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(got.ips, want.ips) {
		t.Fatalf("allocator %v, want %v", got.ips, want.ips)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	populate(t, h)
	var buf bytes.Buffer
	if err := h.store.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()

	r := newHarness(t)
	r.namespace("stale") // state that the restore must discard
	if err := r.store.ReadSnapshot(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	sameState(t, r.store, h.store)
	if _, ok := r.store.Get(kindOf(t, "namespaces"), "", "stale"); ok {
		t.Fatal("restore kept an object that is not in the snapshot")
	}

	var again bytes.Buffer
	if err := r.store.WriteSnapshot(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), snap) {
		t.Fatal("a snapshot of the restored store differs from the original snapshot")
	}
}

func TestRestoreEndsWatches(t *testing.T) {
	h := newHarness(t)
	populate(t, h)
	var buf bytes.Buffer
	if err := h.store.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := newHarness(t)
	r.namespace("default")
	w, err := r.store.Watch(kindOf(t, "configmaps"), WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := w.Next(ctx); !errors.Is(err, ErrGone) {
		t.Fatalf("open watch after restore: %v, want ErrGone", err)
	}
	w.Stop()

	applied := r.store.AppliedIndex()
	if _, err := r.store.Watch(kindOf(t, "configmaps"), WatchOptions{ResourceVersion: applied - 1}); !errors.Is(err, ErrGone) {
		t.Fatalf("watch from before the snapshot: %v, want ErrGone", err)
	}
	w, err = r.store.Watch(kindOf(t, "configmaps"), WatchOptions{ResourceVersion: applied})
	if err != nil {
		t.Fatalf("watch from the snapshot index: %v", err)
	}
	defer w.Stop()
	r.index = applied
	r.mustCreate(configMap("after", nil))
	if ev := nextEvent(t, w); prototest.Name(ev.Object) != "after" || ev.Index != applied+1 {
		t.Fatalf("event %s at %d", prototest.Name(ev.Object), ev.Index)
	}
}

// sink is an in-memory raft.SnapshotSink.
type sink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { s.closed = true; return nil }

func TestRaftFSM(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	f := NewFSM(h.store)
	create := command(t, proto.CommandCreate, configMap("a", nil), 0, "").Encode()
	logs := []*raft.Log{
		{Index: 10, Type: raft.LogCommand, Data: create},
		{Index: 11, Type: raft.LogNoop},
		{Index: 12, Type: raft.LogCommand, Data: create},
	}
	out := f.ApplyBatch(logs)
	if res, ok := out[0].(Result); !ok || res.Err != nil {
		t.Fatalf("first entry: %+v", out[0])
	}
	if out[1] != nil {
		t.Fatalf("no-op entry answered %+v", out[1])
	}
	if res, ok := out[2].(Result); !ok || res.Err == nil {
		t.Fatalf("duplicate create: %+v", out[2])
	}
	if res := f.Apply(&raft.Log{Index: 13, Type: raft.LogConfiguration}); res != nil {
		t.Fatalf("configuration entry answered %+v", res)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot must not leak into it.
	f.Apply(&raft.Log{Index: 14, Type: raft.LogCommand, Data: command(t, proto.CommandCreate, configMap("later", nil), 0, "").Encode()})
	var s sink
	if err := snap.Persist(&s); err != nil || !s.closed {
		t.Fatalf("persist: %v closed=%v", err, s.closed)
	}
	snap.Release()

	r := newHarness(t)
	if err := NewFSM(r.store).Restore(io.NopCloser(&s.Buffer)); err != nil {
		t.Fatal(err)
	}
	// The configuration entry at 13 changes no object but is applied.
	if got := r.store.AppliedIndex(); got != 13 {
		t.Fatalf("restored index %d, want 13", got)
	}
	if _, ok := r.store.Get(kindOf(t, "configmaps"), "default", "later"); ok {
		t.Fatal("snapshot contains a write applied after Snapshot()")
	}
	if _, ok := r.store.Get(kindOf(t, "configmaps"), "default", "a"); !ok {
		t.Fatal("snapshot lost a configmap")
	}
}

type failingSink struct{ sink }

func (f *failingSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSnapshotPersistFailureCancels(t *testing.T) {
	h := newHarness(t)
	populate(t, h)
	snap, _ := NewFSM(h.store).Snapshot()
	s := &failingSink{}
	if err := snap.Persist(s); err == nil || !s.cancelled {
		t.Fatalf("persist to a failing sink: err=%v cancelled=%v", err, s.cancelled)
	}
}

func TestReadSnapshotRejectsGarbage(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	var buf bytes.Buffer
	if err := h.store.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	unknown := append([]byte(snapshotMagic), 5)
	unknown = append(unknown, byte(len("x/widgets")))
	unknown = append(unknown, "x/widgets"...)
	unknown = append(unknown, 1, 0, 0)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"wrong magic", []byte("not-a-snapshot\n")},
		{"truncated", good[:len(good)-3]},
		{"no end marker", good[:len(good)-1]},
		{"unknown resource", unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHarness(t)
			if err := r.store.ReadSnapshot(bytes.NewReader(tt.data)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("got %v, want ErrBadSnapshot", err)
			}
		})
	}
}
