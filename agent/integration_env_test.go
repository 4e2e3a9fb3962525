package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiffhq/skiff/agent"
	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/api/apitest"
)

// testImageRef is the name scripts/build-test-image.sh gives the image.
const testImageRef = "skiff.local/busybox:latest"

// image is the busybox test image, built once per test binary.
type image struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var testImg image // per test binary; removed by TestMain

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(agentHelper())
	}
	// client-go and the streaming libraries log through klog; keep their
	// noise (e.g. a closed exec connection) out of the test output.
	klog.SetLogger(logr.Discard())
	code := m.Run()
	if testImg.dir != "" {
		os.RemoveAll(testImg.dir)
	}
	os.Exit(code)
}

// requireContainerd skips the test unless it can run real containers.
func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run containerd and runc (run the agent integration tests as root)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "bash", "tar", "sha256sum"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: needs %s on PATH (apt-get install containerd runc): %v", bin, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: needs /bin/busybox (apt-get install busybox-static) for the test image")
	}
}

// imagePath builds the test image once.
func imagePath(t *testing.T) string {
	t.Helper()
	testImg.once.Do(func() {
		if testImg.dir, testImg.err = os.MkdirTemp("", "skiff-agent-image-"); testImg.err != nil {
			return
		}
		testImg.path = filepath.Join(testImg.dir, "busybox.tar")
		out, err := exec.Command("bash", "../scripts/build-test-image.sh", testImg.path).CombinedOutput()
		if err != nil {
			testImg.err = fmt.Errorf("build test image: %v\n%s", err, out)
		}
	})
	if testImg.err != nil {
		t.Fatal(testImg.err)
	}
	return testImg.path
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// node is one test node: a managed containerd runtime (its own data dir
// and namespace) and, when started, an agent against an API.
type node struct {
	t      *testing.T
	name   string
	rcfg   containerd.Config
	api    *apitest.Server
	log    *slog.Logger
	tweak  func(*agent.Config)
	rt     *containerd.Runtime
	rtStop context.CancelFunc
	rtDone chan error
	agStop context.CancelFunc
	agDone chan error
	agent  *agent.Agent
}

// newNode prepares a node; nothing runs until startRuntime.
func newNode(t *testing.T, api *apitest.Server, tweak func(*agent.Config)) *node {
	t.Helper()
	requireContainerd(t)
	dir, err := os.MkdirTemp("/tmp", "skag") // short: containerd's socket lives below
	if err != nil {
		t.Fatal(err)
	}
	name := "n" + randomHex(3)
	rcfg := containerd.DefaultConfig()
	rcfg.DataDir = dir
	rcfg.Namespace = containerd.NamespaceForNode("t" + randomHex(4))
	rcfg.StopTimeout = 5 * time.Second
	n := &node{t: t, name: name, rcfg: rcfg, api: api, tweak: tweak,
		log: slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	t.Cleanup(n.cleanup)
	return n
}

// startRuntime runs (or adopts) the node's containerd.
func (n *node) startRuntime() *containerd.Runtime {
	n.t.Helper()
	rt, err := containerd.New(n.rcfg, n.log)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	n.rt, n.rtStop, n.rtDone = rt, cancel, done
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := rt.WaitReady(wctx); err != nil {
		n.t.Fatalf("containerd: %v", err)
	}
	return rt
}

// loadImage imports the busybox test image.
func (n *node) loadImage() {
	n.t.Helper()
	f, err := os.Open(imagePath(n.t))
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := n.rt.ImportImage(ctx, f); err != nil {
		n.t.Fatalf("import image: %v", err)
	}
}

// agentConfig is the agent configuration of this node.
func (n *node) agentConfig(restCfg *rest.Config) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.NodeName = n.name
	cfg.DataDir = filepath.Join(n.rcfg.DataDir, "agent")
	cfg.RESTConfig = restCfg
	cfg.Runtime = n.rt
	cfg.Logger = n.log
	cfg.ListenAddr = "127.0.0.1:0"
	if n.tweak != nil {
		n.tweak(&cfg)
	}
	return cfg
}

// startAgent runs an agent in this process.
func (n *node) startAgent() *agent.Agent {
	n.t.Helper()
	a, err := agent.New(n.agentConfig(n.api.Config))
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	n.agent, n.agStop, n.agDone = a, cancel, done
	return a
}

// stopAgent ends the in-process agent (containers keep running).
func (n *node) stopAgent() {
	if n.agStop == nil {
		return
	}
	n.agStop()
	select {
	case err := <-n.agDone:
		if err != nil {
			n.t.Errorf("agent Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		n.t.Errorf("agent Run did not return")
	}
	n.agStop = nil
}

// cleanup removes everything the node made, even after a failure.
func (n *node) cleanup() {
	n.stopAgent()
	if n.rt == nil && !n.t.Skipped() {
		if _, err := os.Stat(filepath.Join(n.rcfg.DataDir, "containerd")); err == nil {
			n.startRuntimeForCleanup()
		}
	}
	if n.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cs, err := n.rt.ListContainers(ctx); err == nil {
			for _, c := range cs {
				_ = n.rt.RemoveContainer(ctx, c.ID)
			}
		}
		if sbs, err := n.rt.ListSandboxes(ctx); err == nil {
			for _, sb := range sbs {
				_ = n.rt.RemoveSandbox(ctx, sb.PodUID)
			}
		}
		cancel()
		n.rtStop()
		select {
		case <-n.rtDone:
		case <-time.After(30 * time.Second):
			n.t.Errorf("containerd runtime did not stop")
		}
		n.rt.Close()
	}
	n.killLeftovers()
	unmountUnder(n.rcfg.DataDir)
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", n.rcfg.Namespace))
	for _, d := range dirs {
		_ = unix.Rmdir(d)
	}
	_ = unix.Rmdir(filepath.Join("/run/containerd/runc", n.rcfg.Namespace))
	if err := os.RemoveAll(n.rcfg.DataDir); err != nil {
		n.t.Errorf("cleanup: %v", err)
	}
}

func (n *node) startRuntimeForCleanup() {
	rt, err := containerd.New(n.rcfg, n.log)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if rt.WaitReady(wctx) != nil {
		cancel()
		<-done
		return
	}
	n.rt, n.rtStop, n.rtDone = rt, cancel, done
}

// killLeftovers kills, by PID, a containerd or shim of this node that is
// still alive (only after a failed cleanup).
func (n *node) killLeftovers() {
	cfgFile := filepath.Join(n.rcfg.DataDir, "containerd", "config.toml")
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == cfgFile || (a == "-namespace" && i+1 < len(args) && args[i+1] == n.rcfg.Namespace) {
				n.t.Logf("cleanup: killing leftover pid %d: %q", pid, args)
				_ = unix.Kill(pid, unix.SIGKILL)
				break
			}
		}
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
}

// logWriter sends log lines to t.Log until the test ends.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond every 50ms until it holds or timeout passes.
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
		time.Sleep(50 * time.Millisecond)
	}
}

// createPod creates pod on the node.
func createPod(t *testing.T, c kubernetes.Interface, nodeName string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	// Tests never pull from a registry (that would use the host's
	// resolver): only loopback registries may be pulled from.
	for _, ctr := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if ctr.ImagePullPolicy != corev1.PullIfNotPresent && ctr.ImagePullPolicy != corev1.PullNever &&
			!strings.HasPrefix(ctr.Image, "127.0.0.1:") {
			t.Fatalf("pod %s container %s: test pods must use imagePullPolicy IfNotPresent or Never", pod.Name, ctr.Name)
		}
	}
	pod.Spec.NodeName = nodeName
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	out, err := c.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return out
}

// waitPod polls a pod until cond holds (cond gets nil once it is gone).
func waitPod(t *testing.T, c kubernetes.Interface, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, timeout, name+": "+what, func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			pod = nil
		case err != nil:
			return false, err.Error()
		default:
			pod = p
		}
		return cond(pod), describe(pod)
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

// status returns a pod's status of one container.
func status(pod *corev1.Pod, name string) corev1.ContainerStatus {
	if pod != nil {
		for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if cs.Name == name {
				return cs
			}
		}
	}
	return corev1.ContainerStatus{}
}

func isReady(p *corev1.Pod) bool {
	if p == nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// busybox returns a pod with one busybox container running cmd.
func busybox(name string, policy corev1.RestartPolicy, cmd ...string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "main", Image: testImageRef, ImagePullPolicy: corev1.PullIfNotPresent, Command: cmd,
			}},
		},
	}
}
