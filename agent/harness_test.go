package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/skiffhq/skiff/api/apitest"
)

const testNode = "node1"

// harness is an in-process API plus an agent on a fake runtime.
type harness struct {
	t   *testing.T
	api *apitest.Server
	rt  *fakeRuntime
	clk clock.WithTicker

	statusWrites atomic.Int64 // PUTs of pods/status through the agent's client

	mu     sync.Mutex
	agent  *Agent
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, clk clock.WithTicker) *harness {
	t.Helper()
	if clk == nil {
		clk = clock.RealClock{}
	}
	h := &harness{t: t, api: apitest.New(t), clk: clk}
	h.rt = newFakeRuntime(clk, "img")
	t.Cleanup(h.stop)
	return h
}

// restConfig returns a client config that counts pod status writes.
func (h *harness) restConfig() *rest.Config {
	cfg := rest.CopyConfig(h.api.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/status") && strings.Contains(r.URL.Path, "/pods/") {
				h.statusWrites.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// start runs an agent; tweak adjusts its config.
func (h *harness) start(tweak func(*Config)) *Agent {
	h.t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = testNode
	cfg.DataDir = h.t.TempDir()
	cfg.RESTConfig = h.restConfig()
	cfg.Runtime = h.rt
	cfg.Clock = h.clk
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.StatusMinInterval = 0
	cfg.RestartBackoffBase = 50 * time.Millisecond
	cfg.RestartBackoffMax = 200 * time.Millisecond
	cfg.PullBackoffBase = 50 * time.Millisecond
	cfg.PullBackoffMax = 200 * time.Millisecond
	cfg.Capacity = func() (corev1.ResourceList, error) {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}, nil
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	h.mu.Lock()
	h.agent, h.cancel, h.done = a, cancel, done
	h.mu.Unlock()
	return a
}

// stop ends the running agent and waits for it.
func (h *harness) stop() {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.cancel = nil
	h.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("Run did not return after cancel")
	}
}

// createPod creates a pod bound to the test node.
func (h *harness) createPod(pod *corev1.Pod) *corev1.Pod {
	h.t.Helper()
	pod = pod.DeepCopy()
	pod.UID, pod.Spec.NodeName = "", testNode
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	out, err := h.api.Client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return out
}

// waitPod polls the pod until cond holds; cond gets nil once it is gone.
func (h *harness) waitPod(name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	var pod *corev1.Pod
	waitFor(h.t, timeout, what, func() (bool, string) {
		p, err := h.api.Client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			pod = nil
		case err != nil:
			return false, err.Error()
		default:
			pod = p
		}
		return cond(pod), fmt.Sprintf("pod: %s", describe(pod))
	})
	return pod
}

// describe summarises a pod's status for failure messages.
func describe(pod *corev1.Pod) string {
	if pod == nil {
		return "<gone>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", pod.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " [%s restarts=%d ready=%v", cs.Name, cs.RestartCount, cs.Ready)
		switch s := cs.State; {
		case s.Running != nil:
			b.WriteString(" running")
		case s.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s %q", s.Waiting.Reason, s.Waiting.Message)
		case s.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s %d", s.Terminated.Reason, s.Terminated.ExitCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

// containerState returns a pod's status of one container.
func containerState(pod *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	if pod == nil {
		return corev1.ContainerStatus{}, false
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agentURL is the base URL of the harness agent's HTTP server.
func (h *harness) agentURL() string {
	h.t.Helper()
	var addr net.Addr
	waitFor(h.t, 5*time.Second, "agent listener", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.agent != nil {
			addr = h.agent.Addr()
		}
		return addr != nil, ""
	})
	return "http://" + addr.String()
}

// testWriter sends log output to t.Log until the test ends.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // logging after the test ended
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// simplePod returns a pod named name with one container per name in
// containers, all of image "img".
func simplePod(name string, policy corev1.RestartPolicy, containers ...string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{RestartPolicy: policy}}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "img"})
	}
	return pod
}

// httpPost posts body and returns the response body; non-2xx is an error.
func httpPost(url, body string) (string, error) {
	resp, err := http.Post(url, "application/octet-stream", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}
