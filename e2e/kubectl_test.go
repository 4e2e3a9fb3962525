package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRealKubectl drives a dev cluster with the real kubectl binary, when
// the machine has one: apply, rollout status, logs and exec through remote
// agents, describe and explain.
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
	if out := must("", "describe", "deployment", "web"); !strings.Contains(out, "NewReplicaSetAvailable") {
		t.Fatalf("kubectl describe: %q", out)
	}
	if out := must("", "explain", "deployment.spec.replicas"); !strings.Contains(out, "replicas") {
		t.Fatalf("kubectl explain: %q", out)
	}
}
