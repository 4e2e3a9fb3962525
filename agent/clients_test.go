package agent

import (
	"bytes"
	"context"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Client helpers shared by the unit tests and (exported to package
// agent_test) the integration tests.

// StreamProtocol selects how ExecInPod talks to the API.
type StreamProtocol int

const (
	// WebSocket is kubectl's first choice (remotecommand v5).
	WebSocket StreamProtocol = iota
	// SPDY is kubectl's fallback.
	SPDY
)

// ExecInPod runs cmd in a pod's container through the API's pods/exec, as
// kubectl exec does, and returns stdout, stderr and the error (an
// exec.CodeExitError for a non-zero exit code).
func ExecInPod(ctx context.Context, cfg *rest.Config, proto StreamProtocol, ns, pod, container, stdin string, cmd ...string) (string, string, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin != "", Stdout: true, Stderr: true},
			scheme.ParameterCodec)
	var ex remotecommand.Executor
	if proto == WebSocket {
		ex, err = remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	} else {
		ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	}
	if err != nil {
		return "", "", err
	}
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	err = ex.StreamWithContext(ctx, opts)
	return stdout.String(), stderr.String(), err
}

// PodLogs reads a container's log through the API's pods/log.
func PodLogs(ctx context.Context, client kubernetes.Interface, ns, pod string, opts *corev1.PodLogOptions) (string, error) {
	rc, err := client.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}
