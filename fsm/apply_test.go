package fsm

import (
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

func TestApplyCreateEveryKind(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			obj := prototest.Sample(k, "default", "sample-"+k.Singular)
			res := h.create(obj)
			if res.Err != nil {
				t.Fatalf("create: %v", res.Err)
			}
			if got := rvOf(t, res.Object); got != h.index {
				t.Fatalf("resourceVersion %d, want the log index %d", got, h.index)
			}
			if got := res.Object.GetObjectKind().GroupVersionKind(); got != k.GVK {
				t.Fatalf("stored kind %v, want %v", got, k.GVK)
			}
			ns := "default"
			if !k.Namespaced {
				ns = ""
			}
			got, ok := h.store.Get(k, ns, "sample-"+k.Singular)
			if !ok || got != res.Object {
				t.Fatalf("Get after create: %v %v", got, ok)
			}
			wantCode(t, h.create(obj).Err, http.StatusConflict)
			if !apierrors.IsAlreadyExists(h.create(obj).Err) {
				t.Fatal("second create is not AlreadyExists")
			}
		})
	}
	if got := h.store.AppliedIndex(); got != h.index {
		t.Fatalf("applied index %d, want %d", got, h.index)
	}
}

func TestApplyCreateNamespaceRules(t *testing.T) {
	h := newHarness(t)
	cm := configMap("a", nil)
	res := h.create(cm)
	wantCode(t, res.Err, http.StatusNotFound)
	if !strings.Contains(res.Err.Error(), `namespaces "default" not found`) {
		t.Fatalf("message %q does not name the namespace", res.Err)
	}

	h.namespace("default")
	ns, _ := h.store.Get(kindOf(t, "namespaces"), "", "default")
	terminating := ns.DeepCopyObject().(*corev1.Namespace)
	terminating.DeletionTimestamp = &metav1.Time{}
	terminating.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	if res := h.update(terminating, 0, ""); res.Err != nil {
		t.Fatalf("marking namespace terminating: %v", res.Err)
	}
	res = h.create(cm)
	wantCode(t, res.Err, http.StatusForbidden)
	if !strings.Contains(res.Err.Error(), "being terminated") {
		t.Fatalf("message %q", res.Err)
	}
}

func TestApplyUpdate(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	stored := h.mustCreate(configMap("a", map[string]string{"k": "v1"}))
	rv := rvOf(t, stored)

	next := configMap("a", map[string]string{"k": "v2"})
	res := h.update(next, rv, "uid-a")
	if res.Err != nil {
		t.Fatalf("update: %v", res.Err)
	}
	if got := rvOf(t, res.Object); got != h.index {
		t.Fatalf("resourceVersion %d, want %d", got, h.index)
	}
	newRV := h.index

	t.Run("stale resourceVersion", func(t *testing.T) {
		res := h.update(configMap("a", map[string]string{"k": "v3"}), rv, "")
		wantCode(t, res.Err, http.StatusConflict)
		st := res.Err.(apierrors.APIStatus).Status()
		want := "current resourceVersion " + itoa(newRV)
		if !strings.Contains(st.Message, want) {
			t.Fatalf("message %q does not contain %q", st.Message, want)
		}
		if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Message != itoa(newRV) ||
			st.Details.Causes[0].Type != proto.CauseTypeCurrentResourceVersion {
			t.Fatalf("causes %+v do not carry the current resourceVersion", st.Details)
		}
	})
	t.Run("wrong UID", func(t *testing.T) {
		res := h.update(configMap("a", nil), 0, "other-uid")
		wantCode(t, res.Err, http.StatusConflict)
		if !strings.Contains(res.Err.Error(), "UID in precondition: other-uid") {
			t.Fatalf("message %q", res.Err)
		}
	})
	t.Run("missing object", func(t *testing.T) {
		wantCode(t, h.update(configMap("nope", nil), 0, "").Err, http.StatusNotFound)
	})
	t.Run("key does not match object", func(t *testing.T) {
		cmd := command(t, proto.CommandUpdate, configMap("a", nil), 0, "")
		cmd.Name = "b"
		h.mustCreate(configMap("b", nil))
		wantCode(t, h.apply(cmd).Err, http.StatusBadRequest)
	})
	got, _ := h.store.Get(kindOf(t, "configmaps"), "default", "a")
	if d := got.(*corev1.ConfigMap).Data["k"]; d != "v2" {
		t.Fatalf("failed updates changed the object: data %q", d)
	}
}

func TestApplyUpdateRemovingLastFinalizerDeletes(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	cm := configMap("a", nil)
	cm.Finalizers = []string{"example.com/hold"}
	h.mustCreate(cm)
	w, err := h.store.Watch(kindOf(t, "configmaps"), WatchOptions{ResourceVersion: h.index})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	cm.DeletionTimestamp = &metav1.Time{}
	cm.DeletionGracePeriodSeconds = ptr.To[int64](0)
	if res := h.update(cm, 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, ok := h.store.Get(kindOf(t, "configmaps"), "default", "a"); !ok {
		t.Fatal("object with a finalizer disappeared")
	}
	cm.Finalizers = nil
	if res := h.update(cm, 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, ok := h.store.Get(kindOf(t, "configmaps"), "default", "a"); ok {
		t.Fatal("object without finalizers is still stored")
	}
	for _, want := range []watch.EventType{watch.Modified, watch.Deleted} {
		if ev := nextEvent(t, w); ev.Type != want {
			t.Fatalf("event %s, want %s", ev.Type, want)
		}
	}
}

func TestApplyDelete(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	cms := kindOf(t, "configmaps")
	stored := h.mustCreate(configMap("a", nil))
	rv := rvOf(t, stored)
	h.mustCreate(configMap("b", nil))

	wantCode(t, h.remove(cms, "default", "a", rv+100, "").Err, http.StatusConflict)
	wantCode(t, h.remove(cms, "default", "a", 0, "wrong").Err, http.StatusConflict)
	wantCode(t, h.remove(cms, "default", "zzz", 0, "").Err, http.StatusNotFound)

	res := h.remove(cms, "default", "a", rv, "uid-a")
	if res.Err != nil {
		t.Fatalf("delete: %v", res.Err)
	}
	if got := rvOf(t, res.Object); got != h.index {
		t.Fatalf("deleted object has resourceVersion %d, want the delete's index %d", got, h.index)
	}
	if got := rvOf(t, stored); got != rv {
		t.Fatalf("delete modified the shared stored object (rv %d)", got)
	}
	if _, ok := h.store.Get(cms, "default", "a"); ok {
		t.Fatal("deleted object still stored")
	}
	if n := h.store.Count(cms, "default"); n != 1 {
		t.Fatalf("count %d, want 1", n)
	}
}

func TestApplyBadCommands(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	tests := []struct {
		name string
		data []byte
		code int32
	}{
		{"empty", nil, http.StatusBadRequest},
		{"truncated", command(t, proto.CommandCreate, configMap("a", nil), 0, "").Encode()[:5], http.StatusBadRequest},
		{"unknown resource", (&proto.Command{Type: proto.CommandCreate, Resource: "widgets"}).Encode(), http.StatusBadRequest},
		{"undecodable object", (&proto.Command{Type: proto.CommandCreate, Resource: "configmaps", Namespace: "default", Name: "a", Object: []byte{0xff, 0xff}}).Encode(), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.index++
			wantCode(t, h.store.Apply(h.index, tt.data).Err, tt.code)
		})
	}
	t.Run("ignorable unknown type", func(t *testing.T) {
		h.index++
		cmd := &proto.Command{Type: proto.IgnoreUnknown | 0x7f, Resource: "widgets"}
		if res := h.store.Apply(h.index, cmd.Encode()); res.Err != nil || res.Object != nil {
			t.Fatalf("got %+v, want an empty result", res)
		}
		if got := h.store.AppliedIndex(); got != h.index {
			t.Fatalf("applied %d, want %d", got, h.index)
		}
	})
	t.Run("unknown type halts", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic for a command this replica cannot apply")
			}
		}()
		h.index++
		h.store.Apply(h.index, (&proto.Command{Type: 0x7f, Resource: "widgets"}).Encode())
	})
	t.Run("index already applied", func(t *testing.T) {
		res := h.store.Apply(1, command(t, proto.CommandCreate, configMap("late", nil), 0, "").Encode())
		if res.Err == nil {
			t.Fatal("an old index was applied")
		}
		if _, ok := h.store.Get(kindOf(t, "configmaps"), "default", "late"); ok {
			t.Fatal("an old index changed the store")
		}
	})
}

func TestApplyBatch(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	data := [][]byte{
		command(t, proto.CommandCreate, configMap("a", nil), 0, "").Encode(),
		command(t, proto.CommandCreate, configMap("a", nil), 0, "").Encode(),
		command(t, proto.CommandCreate, configMap("b", nil), 0, "").Encode(),
	}
	res := h.store.ApplyBatch([]uint64{2, 3, 4}, data)
	if res[0].Err != nil || !apierrors.IsAlreadyExists(res[1].Err) || res[2].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if got := h.store.AppliedIndex(); got != 4 {
		t.Fatalf("applied %d, want 4", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"tiny CIDR", func(c *Config) { c.ServiceCIDR = mustPrefix("10.0.0.0/30") }, false},
		{"IPv6 CIDR", func(c *Config) { c.ServiceCIDR = mustPrefix("fd00::/108") }, false},
		{"short history", func(c *Config) { c.WatchHistory = 8 }, false},
		{"short queue", func(c *Config) { c.WatcherQueue = 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.adjust(&cfg)
			_, err := NewStore(cfg)
			if got := err == nil; got != tt.ok {
				t.Fatalf("NewStore error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
