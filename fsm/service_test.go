package fsm

import (
	"bytes"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func service(name, clusterIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

func (h *harness) clusterIP(name string) string {
	h.t.Helper()
	obj, ok := h.store.Get(kindOf(h.t, "services"), "default", name)
	if !ok {
		h.t.Fatalf("service %s not found", name)
	}
	svc := obj.(*corev1.Service)
	if len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
		h.t.Fatalf("clusterIPs %v disagree with clusterIP %s", svc.Spec.ClusterIPs, svc.Spec.ClusterIP)
	}
	return svc.Spec.ClusterIP
}

func (h *harness) allocated() map[string]string {
	out := map[string]string{}
	for ip, key := range h.store.ips {
		out[ip.String()] = key
	}
	return out
}

func TestClusterIPAllocation(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	svcs := kindOf(t, "services")

	h.mustCreate(service("a", ""))
	h.mustCreate(service("b", ""))
	if got := h.clusterIP("a"); got != "10.96.0.2" {
		t.Fatalf("first ClusterIP %s, want 10.96.0.2 (.1 is reserved)", got)
	}
	if got := h.clusterIP("b"); got != "10.96.0.3" {
		t.Fatalf("second ClusterIP %s, want 10.96.0.3", got)
	}

	t.Run("explicit address", func(t *testing.T) {
		h.mustCreate(service("dns", "10.96.0.10"))
		if got := h.clusterIP("dns"); got != "10.96.0.10" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("taken address", func(t *testing.T) {
		res := h.create(service("dup", "10.96.0.10"))
		wantCode(t, res.Err, http.StatusUnprocessableEntity)
		if !strings.Contains(res.Err.Error(), "spec.clusterIP") || !strings.Contains(res.Err.Error(), "already allocated") {
			t.Fatalf("message %q", res.Err)
		}
	})
	t.Run("outside the CIDR", func(t *testing.T) {
		wantCode(t, h.create(service("far", "10.0.0.1")).Err, http.StatusUnprocessableEntity)
		wantCode(t, h.create(service("junk", "not-an-ip")).Err, http.StatusUnprocessableEntity)
	})
	t.Run("headless", func(t *testing.T) {
		h.mustCreate(service("headless", corev1.ClusterIPNone))
		if got := h.clusterIP("headless"); got != corev1.ClusterIPNone {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("update keeps the address", func(t *testing.T) {
		res := h.update(service("a", ""), 0, "")
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if got := h.clusterIP("a"); got != "10.96.0.2" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("update may not change the address", func(t *testing.T) {
		res := h.update(service("a", "10.96.0.50"), 0, "")
		wantCode(t, res.Err, http.StatusUnprocessableEntity)
		if !strings.Contains(res.Err.Error(), "immutable") {
			t.Fatalf("message %q", res.Err)
		}
	})
	t.Run("delete releases", func(t *testing.T) {
		if res := h.remove(svcs, "default", "a", 0, ""); res.Err != nil {
			t.Fatal(res.Err)
		}
		h.mustCreate(service("c", ""))
		if got := h.clusterIP("c"); got != "10.96.0.2" {
			t.Fatalf("released address not reused: got %s", got)
		}
	})
	want := map[string]string{"10.96.0.2": "default/c", "10.96.0.3": "default/b", "10.96.0.10": "default/dns"}
	if got := h.allocated(); !reflect.DeepEqual(got, want) {
		t.Fatalf("allocator %v, want %v", got, want)
	}
}

func TestClusterIPTypeChanges(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	ext := service("ext", "")
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "example.com"
	h.mustCreate(ext)
	if got := h.clusterIP("ext"); got != "" {
		t.Fatalf("ExternalName service got ClusterIP %s", got)
	}

	if res := h.update(service("ext", ""), 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := h.clusterIP("ext"); got != "10.96.0.2" {
		t.Fatalf("ExternalName -> ClusterIP got %q, want an allocated address", got)
	}

	if res := h.update(ext, 0, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := h.clusterIP("ext"); got != "" {
		t.Fatalf("ClusterIP -> ExternalName kept %s", got)
	}
	if got := h.allocated(); len(got) != 0 {
		t.Fatalf("address leaked after the change to ExternalName: %v", got)
	}
}

func TestClusterIPExhaustion(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/28") })
	h.namespace("default")
	// .0 is the network, .1 reserved, .15 broadcast: 13 usable addresses.
	for i := 0; i < 13; i++ {
		h.mustCreate(service("s"+itoa(uint64(i)), ""))
	}
	res := h.create(service("full", ""))
	wantCode(t, res.Err, http.StatusInternalServerError)
	if !strings.Contains(res.Err.Error(), "10.96.0.0/28") {
		t.Fatalf("message %q does not name the range", res.Err)
	}
}

func TestClusterIPAfterRestore(t *testing.T) {
	h := newHarness(t)
	h.namespace("default")
	h.mustCreate(service("a", ""))
	h.mustCreate(service("b", ""))
	h.mustCreate(service("headless", corev1.ClusterIPNone))
	h.remove(kindOf(t, "services"), "default", "a", 0, "")

	var buf bytes.Buffer
	if err := h.store.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := newHarness(t)
	if err := r.store.ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r.index = r.store.AppliedIndex()
	if got, want := r.allocated(), h.allocated(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored allocator %v, want %v", got, want)
	}
	wantCode(t, r.create(service("clash", "10.96.0.3")).Err, http.StatusUnprocessableEntity)
	r.mustCreate(service("c", ""))
	if got := r.clusterIP("c"); got != "10.96.0.2" {
		t.Fatalf("after restore got %s, want the free 10.96.0.2", got)
	}
}
