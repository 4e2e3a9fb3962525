package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeRegistration(t *testing.T) {
	h := newHarness(t, nil)
	var nodeWrites atomic.Int64
	a := h.start(func(c *Config) {
		c.NodeLabels = map[string]string{"skiff.io/role": "worker"}
		c.SystemReserved = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
		c.RESTConfig.WrapTransport = countNodeWrites(c.RESTConfig.WrapTransport, &nodeWrites)
	})
	var node *corev1.Node
	waitFor(t, 10*time.Second, "node registered", func() (bool, string) {
		n, err := h.api.Client.CoreV1().Nodes().Get(context.Background(), testNode, metav1.GetOptions{})
		node = n
		return err == nil, "not yet"
	})
	_, port, _ := net.SplitHostPort(h.agentURL()[len("http://"):])
	checks := []struct {
		what string
		ok   bool
	}{
		{"cpu capacity 2", node.Status.Capacity.Cpu().String() == "2"},
		{"memory allocatable 3Gi", node.Status.Allocatable.Memory().String() == "3Gi"},
		{"pods 110", node.Status.Capacity.Pods().Value() == 110},
		{"ready", readyOf(node.Status) == corev1.ConditionTrue && readyReason(node) == "KubeletReady"},
		{"InternalIP", len(node.Status.Addresses) > 0 && node.Status.Addresses[0] == corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		{"kubelet port", strconv.Itoa(int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)) == port},
		{"kubelet version", node.Status.NodeInfo.KubeletVersion == KubeletVersion},
		{"kernel", node.Status.NodeInfo.KernelVersion != "" && node.Status.NodeInfo.OSImage != ""},
		{"labels", node.Labels["skiff.io/role"] == "worker" && node.Labels[corev1.LabelHostname] == testNode},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("node: %s: no; status %+v", c.what, node.Status)
		}
	}

	// Nothing changed: no write. A runtime outage: Ready goes False.
	before := nodeWrites.Load()
	if err := a.node.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := nodeWrites.Load(); n != before {
		t.Fatalf("%d node writes without a change", n-before)
	}
	a.node.setRuntimeHealth(errors.New("containerd is gone"))
	waitFor(t, 10*time.Second, "node not ready", func() (bool, string) {
		n, err := h.api.Client.CoreV1().Nodes().Get(context.Background(), testNode, metav1.GetOptions{})
		return err == nil && readyOf(n.Status) == corev1.ConditionFalse, "still ready"
	})
}

func readyReason(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Reason
		}
	}
	return ""
}

// countNodeWrites wraps a transport wrapper to count writes to nodes.
func countNodeWrites(inner func(http.RoundTripper) http.RoundTripper, n *atomic.Int64) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if inner != nil {
			rt = inner(rt)
		}
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/nodes") {
				n.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
}
