package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/skiffhq/skiff/cluster/dev"
)

// Binary returns the skiff binary under test, building it once if
// SKIFF_BIN is not set.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("SKIFF_BIN"); bin != "" {
		return bin
	}
	dir := filepath.Join(os.TempDir(), "skiff-e2e-bin")
	bin := filepath.Join(dir, "skiff")
	cmd := exec.Command("go", "build", "-tags", "hashicorpmetrics", "-o", bin, "../cmd/skiff")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building skiff: %v\n%s", err, out)
	}
	return bin
}

// FreePort returns a loopback address with a port nobody listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Daemon is one `skiff agent` process.
type Daemon struct {
	t          testing.TB
	Bin        string
	Name       string
	DataDir    string
	APIAddr    string
	RaftAddr   string
	AgentAddr  string
	Kubeconfig string
	ExtraArgs  []string
	LogPath    string

	cmd  *exec.Cmd
	done chan struct{}
}

// NewDaemon prepares a single-node daemon with its own data dir and ports;
// Start runs it. The process is killed when the test ends.
func NewDaemon(t testing.TB, name string, extra ...string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	d := &Daemon{
		t: t, Bin: Binary(t), Name: name, DataDir: filepath.Join(dir, "data"),
		APIAddr: FreePort(t), RaftAddr: FreePort(t), AgentAddr: FreePort(t), ExtraArgs: extra,
		Kubeconfig: filepath.Join(dir, "kubeconfig"), LogPath: filepath.Join(dir, "skiff.log"),
	}
	d.writeKubeconfig()
	t.Cleanup(func() {
		d.Kill()
		dev.KillContainerd(d.DataDir) // containerd and containers outlive the daemon by design
		dev.PurgeNode(d.Name, dir)
		if err := dev.RemoveTree(dir); err != nil {
			t.Errorf("removing the node's files: %v", err)
		}
	})
	return d
}

func (d *Daemon) writeKubeconfig() {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: "http://" + d.APIAddr}
	cfg.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e", Namespace: "default"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, d.Kubeconfig); err != nil {
		d.t.Fatalf("kubeconfig: %v", err)
	}
}

// Start launches the daemon and waits until its API is ready.
func (d *Daemon) Start() {
	d.t.Helper()
	args := append([]string{"agent", "--insecure", "--bootstrap", "--node-name", d.Name, "--data-dir", d.DataDir,
		"--api-addr", d.APIAddr, "--raft-addr", d.RaftAddr, "--agent-addr", d.AgentAddr}, d.ExtraArgs...)
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatalf("log file: %v", err)
	}
	d.cmd = exec.Command(d.Bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("starting skiff: %v", err)
	}
	logf.Close()
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	d.WaitReady(30 * time.Second)
}

// WaitNodeReady waits until the daemon's own Node is Ready.
func (d *Daemon) WaitNodeReady(timeout time.Duration) {
	d.t.Helper()
	Eventually(d.t, timeout, "node "+d.Name+" Ready", func() (bool, error) {
		n, err := d.Client().CoreV1().Nodes().Get(context.Background(), d.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// WaitReady polls /readyz until it answers ok.
func (d *Daemon) WaitReady(timeout time.Duration) {
	d.t.Helper()
	client := d.Client()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err != nil {
		d.t.Fatalf("daemon %s not ready after %v; log:\n%s", d.Name, timeout, d.Log())
	}
}

// Kill sends SIGKILL to the daemon (if running) and waits for it to exit.
func (d *Daemon) Kill() { d.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean exit.
func (d *Daemon) Stop() { d.signal(syscall.SIGTERM) }

func (d *Daemon) signal(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(sig)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	d.cmd = nil
}

// Log returns the daemon's log so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// RESTConfig returns a client configuration for the daemon's API.
func (d *Daemon) RESTConfig() *rest.Config {
	return &rest.Config{Host: "http://" + d.APIAddr, QPS: -1, Timeout: 10 * time.Second}
}

// Client returns a typed client for the daemon's API.
func (d *Daemon) Client() kubernetes.Interface {
	c, err := kubernetes.NewForConfig(d.RESTConfig())
	if err != nil {
		d.t.Fatalf("client: %v", err)
	}
	return c
}

// CLI runs the skiff CLI against the daemon and returns its output.
func (d *Daemon) CLI(stdin string, args ...string) (string, error) {
	cmd := exec.Command(d.Bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.Kubeconfig, "HOME="+filepath.Dir(d.Kubeconfig))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("skiff %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// lockedBuffer collects a running process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartCLI starts a long-running CLI command (port-forward, logs -f); it
// is stopped, by its PID, when the test ends. Its output goes to the test
// log.
func (d *Daemon) StartCLI(args ...string) {
	d.t.Helper()
	cmd := exec.Command(d.Bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.Kubeconfig, "HOME="+filepath.Dir(d.Kubeconfig))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("skiff %s: %v", strings.Join(args, " "), err)
	}
	d.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		d.t.Logf("skiff %s said:\n%s", strings.Join(args, " "), out.String())
	})
}

// MustCLI is CLI that fails the test on error.
func (d *Daemon) MustCLI(stdin string, args ...string) string {
	d.t.Helper()
	out, err := d.CLI(stdin, args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
	}
}

// TestImage builds the busybox test image once per test binary and returns
// the archive's path.
func TestImage(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-e2e-busybox-%d.tar", os.Getpid()))
		out, err := exec.Command("../scripts/build-test-image.sh", path).CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("building the test image: %v: %s", err, out)
			return
		}
		imagePath = path
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imagePath
}

var (
	imageOnce sync.Once
	imagePath string
	imageErr  error
)
