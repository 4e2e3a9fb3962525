package agent

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// oneSize is a TerminalSizeQueue that reports one size, then ends.
type oneSize struct{ sent bool }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	if q.sent {
		return nil
	}
	q.sent = true
	return &remotecommand.TerminalSize{Width: 100, Height: 30}
}

// TestExecTerminalResize: a TTY exec's terminal size reaches the runtime
// over WebSocket v5 and over SPDY.
func TestExecTerminalResize(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.ExecFn = func(ctx context.Context, id string, spec ExecSpec) (int, error) {
		select {
		case sz := <-spec.Resize:
			fmt.Fprintf(spec.Stdout, "tty=%v size=%dx%d", spec.TTY, sz.Width, sz.Height)
		case <-time.After(5 * time.Second):
			fmt.Fprint(spec.Stdout, "no size")
		}
		return 0, nil
	}
	h.start(nil)
	h.createPod(simplePod("web", corev1.RestartPolicyAlways, "a"))
	h.waitPod("web", 10*time.Second, "running", func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning })
	client, err := kubernetes.NewForConfig(h.api.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"websocket", "spdy"} {
		t.Run(proto, func(t *testing.T) {
			req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("exec").
				VersionedParams(&corev1.PodExecOptions{Container: "a", Command: []string{"sh"}, Stdout: true, TTY: true}, scheme.ParameterCodec)
			var ex remotecommand.Executor
			if proto == "websocket" {
				ex, err = remotecommand.NewWebSocketExecutor(h.api.Config, "GET", req.URL().String())
			} else {
				ex, err = remotecommand.NewSPDYExecutor(h.api.Config, "POST", req.URL())
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: &oneSize{}})
			if err != nil || !strings.Contains(out.String(), "tty=true size=100x30") {
				t.Fatalf("exec: %q, %v", out.String(), err)
			}
		})
	}
}
