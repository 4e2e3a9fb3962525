package fsm

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

// harness applies commands to a store with increasing indexes, standing in
// for Raft.
type harness struct {
	t     testing.TB
	store *Store
	index uint64
}

func newHarness(t testing.TB, adjust ...func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	for _, a := range adjust {
		a(&cfg)
	}
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return &harness{t: t, store: s}
}

func kindOf(t testing.TB, resource string) *proto.Kind {
	t.Helper()
	group := ""
	switch resource {
	case "deployments", "replicasets", "daemonsets", "controllerrevisions":
		group = "apps"
	}
	k, ok := proto.KindForResource(group, resource)
	if !ok {
		t.Fatalf("no kind %s", resource)
	}
	return k
}

func (h *harness) apply(cmd *proto.Command) Result {
	h.t.Helper()
	h.index++
	return h.store.Apply(h.index, cmd.Encode())
}

// command builds a create or update command for obj.
func command(t testing.TB, typ proto.CommandType, obj proto.Object, rv uint64, uid string) *proto.Command {
	t.Helper()
	kind, err := proto.KindOf(obj)
	if err != nil {
		t.Fatal(err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &proto.Command{Type: typ, Group: kind.GVK.Group, Resource: kind.Resource,
		Namespace: m.GetNamespace(), Name: m.GetName(), Object: data, ResourceVersion: rv, UID: uid}
}

func (h *harness) create(obj proto.Object) Result {
	h.t.Helper()
	return h.apply(command(h.t, proto.CommandCreate, obj, 0, ""))
}

func (h *harness) mustCreate(obj proto.Object) proto.Object {
	h.t.Helper()
	res := h.create(obj)
	if res.Err != nil {
		h.t.Fatalf("create %s: %v", prototest.Name(obj), res.Err)
	}
	return res.Object
}

func (h *harness) update(obj proto.Object, rv uint64, uid string) Result {
	h.t.Helper()
	return h.apply(command(h.t, proto.CommandUpdate, obj, rv, uid))
}

func (h *harness) remove(kind *proto.Kind, namespace, name string, rv uint64, uid string) Result {
	h.t.Helper()
	return h.apply(&proto.Command{Type: proto.CommandDelete, Group: kind.GVK.Group, Resource: kind.Resource,
		Namespace: namespace, Name: name, ResourceVersion: rv, UID: uid})
}

// namespace creates an active namespace.
func (h *harness) namespace(name string) {
	h.t.Helper()
	h.mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-ns-" + name)}})
}

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)}, Data: data}
}

func rvOf(t testing.TB, obj proto.Object) uint64 {
	t.Helper()
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", m.GetResourceVersion(), err)
	}
	return n
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func statusCode(err error) int32 {
	if se, ok := err.(apierrors.APIStatus); ok {
		return se.Status().Code
	}
	return 0
}

// wantCode fails unless err is an API error with code.
func wantCode(t testing.TB, err error, code int32) {
	t.Helper()
	if got := statusCode(err); got != code {
		t.Fatalf("error %v: got code %d, want %d", err, got, code)
	}
}

// nextEvent waits up to a second for the watcher's next event.
func nextEvent(t testing.TB, w *Watcher) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// noEvent fails if the watcher has an event queued.
func noEvent(t testing.TB, w *Watcher) {
	t.Helper()
	if n := w.Pending(); n != 0 {
		ev := nextEvent(t, w)
		t.Fatalf("unexpected event %s %s", ev.Type, prototest.Name(ev.Object))
	}
}
