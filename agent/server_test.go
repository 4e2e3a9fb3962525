package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/exec"
)

// startServed runs an agent with one running pod "web" (containers a, b)
// and returns the harness.
func startServed(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	h.rt.ExecFn = func(ctx context.Context, id string, spec ExecSpec) (int, error) {
		in := ""
		if spec.Stdin != nil {
			b, _ := io.ReadAll(spec.Stdin)
			in = string(b)
		}
		fmt.Fprintf(spec.Stdout, "out of %s in %s stdin=%q", strings.Join(spec.Cmd, " "), id, in)
		fmt.Fprint(spec.Stderr, "err")
		if spec.Cmd[0] == "fail" {
			return 3, nil
		}
		return 0, nil
	}
	h.start(nil)
	h.createPod(simplePod("web", corev1.RestartPolicyAlways, "a", "b"))
	h.waitPod("web", 10*time.Second, "running", func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning })
	return h
}

func TestExecThroughTheAPI(t *testing.T) {
	h := startServed(t)
	for _, proto := range []StreamProtocol{WebSocket, SPDY} {
		name := map[StreamProtocol]string{WebSocket: "websocket", SPDY: "spdy"}[proto]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, errOut, err := ExecInPod(ctx, h.api.Config, proto, "default", "web", "b", "", "echo", "hi")
			if err != nil || !strings.HasPrefix(out, "out of echo hi in ") || !strings.HasSuffix(out, `-b-0 stdin=""`) || errOut != "err" {
				t.Fatalf("exec: out %q err %q: %v", out, errOut, err)
			}
			out, _, err = ExecInPod(ctx, h.api.Config, proto, "default", "web", "a", "some input", "cat")
			if err != nil || !strings.Contains(out, `stdin="some input"`) {
				t.Fatalf("exec with stdin: out %q: %v", out, err)
			}
			_, _, err = ExecInPod(ctx, h.api.Config, proto, "default", "web", "a", "", "fail")
			var exitErr exec.CodeExitError
			if !errors.As(err, &exitErr) || exitErr.Code != 3 {
				t.Fatalf("exit code: %v (%T)", err, err)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	h := startServed(t)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"exec needs a container name", func() error {
			_, _, err := ExecInPod(ctx, h.api.Config, SPDY, "default", "web", "", "", "true")
			return err
		}, "a container name must be specified for pod web, choose one of: [a b]"},
		{"exec in an unknown container", func() error {
			_, _, err := ExecInPod(ctx, h.api.Config, WebSocket, "default", "web", "zzz", "", "true")
			return err
		}, "container zzz is not valid for pod web"},
		{"logs of an unknown pod", func() error {
			_, err := PodLogs(ctx, h.api.Client, "default", "nope", &corev1.PodLogOptions{})
			return err
		}, `pods "nope" not found`},
		{"previous logs of a first attempt", func() error {
			_, err := PodLogs(ctx, h.api.Client, "default", "web", &corev1.PodLogOptions{Container: "a", Previous: true})
			return err
		}, `previous terminated container "a" in pod "web" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLogsThroughTheAPI(t *testing.T) {
	h := startServed(t)
	out, err := PodLogs(context.Background(), h.api.Client, "default", "web", &corev1.PodLogOptions{Container: "b"})
	if err != nil || !strings.HasPrefix(out, "log of ") || !strings.Contains(out, "-b-0 previous=false") {
		t.Fatalf("logs %q: %v", out, err)
	}
}

func TestImagesThroughTheAPI(t *testing.T) {
	h := startServed(t)
	ctx := context.Background()
	ic, err := NewImageClient(h.api.Config)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ic.LoadEverywhere(ctx, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("new:1")), nil })
	if err != nil || len(res) != 1 || res[0].Node != testNode || len(res[0].Images) != 1 || res[0].Images[0].Ref != "new:1" {
		t.Fatalf("load everywhere: %+v: %v", res, err)
	}
	imgs, err := ic.List(ctx, testNode)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("list: %+v: %v", imgs, err)
	}
	if err := ic.Remove(ctx, testNode, "docker.io/library/unused:2"); err != nil {
		t.Fatalf("remove an absent image: %v", err)
	}
	if err := ic.Remove(ctx, testNode, "img"); !apierrors.IsConflict(err) {
		t.Fatalf("removing an image in use: %v, want a conflict", err)
	}
	if _, err := ic.List(ctx, "no-such-node"); !apierrors.IsNotFound(err) {
		t.Fatalf("list on an unknown node: %v", err)
	}
}
