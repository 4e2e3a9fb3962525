package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRealKubectl drives a dev cluster with the real kubectl binary, when
// the machine has one: apply, rollout status, logs and exec through remote
// agents, describe and explain, and a DaemonSet's rollout history and undo.
func TestRealKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on this machine")
	}
	c := UpDevCluster(t, 3, 3)
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.AdminKubeconfig())
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	d := &Daemon{t: t, Bin: Binary(t), Kubeconfig: c.AdminKubeconfig()}
	d.MustCLI("", "image", "load", TestImage(t))
	if out := must(httpdDeployment, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web created") {
		t.Fatalf("kubectl apply said %q", out)
	}
	must("", "rollout", "status", "deployment/web", "--timeout", "90s")
	pod := strings.TrimSpace(strings.Split(must("", "get", "pods", "-l", "app=web", "-o", "name"), "\n")[0])
	if out := must("", "logs", pod); !strings.Contains(out, "hello from") {
		t.Fatalf("kubectl logs: %q", out)
	}
	out, err := run("", "exec", pod, "--", "sh", "-c", "wget -qO- 127.0.0.1:8080; exit 3")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || !strings.Contains(out, "<h1>skiff</h1>") {
		t.Fatalf("kubectl exec: err=%v output=%q (want the page and exit code 3)", err, out)
	}
	kubectlPortForward(t, kubectl, c.AdminKubeconfig(), pod)
	if out := must("", "describe", "deployment", "web"); !strings.Contains(out, "NewReplicaSetAvailable") {
		t.Fatalf("kubectl describe: %q", out)
	}
	if out := must("", "explain", "deployment.spec.replicas"); !strings.Contains(out, "replicas") {
		t.Fatalf("kubectl explain: %q", out)
	}
	daemonSetHistory(t, run, must)
}

// kubectlPortForward reaches a pod on any node of the cluster through
// kubectl port-forward (the API proxies to that node's agent over mutual
// TLS).
func kubectlPortForward(t *testing.T, kubectl, kubeconfig, pod string) {
	addr := FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(kubectl, "port-forward", "--address", "127.0.0.1", pod, port+":8080")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	Eventually(t, 30*time.Second, "a page through kubectl port-forward", func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return false, fmt.Errorf("%w (kubectl said: %s)", err, out.String())
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "<h1>skiff</h1>"), err
	})
}

const daemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ticker
spec:
  selector:
    matchLabels: {app: ticker}
  template:
    metadata:
      labels: {app: ticker}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: skiff.local/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done"]
`

// daemonSetHistory: kubectl rollout history and undo for a DaemonSet read
// and apply the ControllerRevisions the controller keeps.
func daemonSetHistory(t *testing.T, run func(string, ...string) (string, error), must func(string, ...string) string) {
	must(daemonSet, "apply", "-f", "-")
	must("", "rollout", "status", "daemonset/ticker", "--timeout", "90s")
	must("", "set", "env", "daemonset/ticker", "VERSION=2")
	must("", "rollout", "status", "daemonset/ticker", "--timeout", "90s")
	out := must("", "rollout", "history", "daemonset/ticker")
	t.Logf("kubectl rollout history daemonset/ticker:\n%s", out)
	if !strings.Contains(out, "1 ") || !strings.Contains(out, "2 ") {
		t.Fatalf("kubectl rollout history: %q, want revisions 1 and 2", out)
	}
	if out := must("", "rollout", "undo", "daemonset/ticker"); !strings.Contains(out, "daemonset.apps/ticker rolled back") {
		t.Fatalf("kubectl rollout undo: %q", out)
	}
	must("", "rollout", "status", "daemonset/ticker", "--timeout", "90s")
	if out := must("", "get", "daemonset", "ticker", "-o", "jsonpath={.spec.template.spec.containers[0].env}"); strings.Contains(out, "VERSION") {
		t.Fatalf("after undo the template still has env %s", out)
	}
	if out := must("", "rollout", "history", "daemonset/ticker", "--revision", "3"); strings.Contains(out, "VERSION") {
		t.Fatalf("revision 3 should be the original template: %q", out)
	}
	if out, err := run("", "rollout", "undo", "daemonset/ticker", "--to-revision", "9"); err == nil || !strings.Contains(out, "unable to find specified revision") {
		t.Fatalf("undo to a missing revision: err=%v %q", err, out)
	}
}
