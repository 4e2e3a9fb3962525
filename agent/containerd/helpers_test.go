package containerd

import (
	"bytes"
	"context"
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

	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/agent"
)

// testImageRef is the name scripts/build-test-image.sh gives the image.
const testImageRef = "skiff.local/busybox:latest"

var (
	imageDir  string
	imageOnce sync.Once
	imagePath string
	imageErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(adoptionHelper())
	}
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// requireContainerd skips the test unless it can run real containers.
func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the runtime tests start containerd and runc")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "bash", "tar", "sha256sum"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s on PATH (apt-get install containerd runc): %v", bin, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (apt-get install busybox-static) for the test image")
	}
}

// testImage builds the busybox test image once per test binary.
func testImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		imageDir, imageErr = os.MkdirTemp("", "skiff-image-")
		if imageErr != nil {
			return
		}
		imagePath = filepath.Join(imageDir, "busybox.tar")
		out, err := exec.Command("bash", "../../scripts/build-test-image.sh", imagePath).CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("build test image: %v\n%s", err, out)
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imagePath
}

// env is one test's runtime world: a data dir and namespace of its own and
// at most one running Runtime (with its managed containerd) at a time.
type env struct {
	t   *testing.T
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	cur    *Runtime
	cancel context.CancelFunc
	done   chan error
}

// newEnv creates the data dir and config and registers the cleanup; it
// does not start a runtime.
func newEnv(t *testing.T, tweak ...func(*Config)) *env {
	t.Helper()
	requireContainerd(t)
	// A short path: the containerd socket lives under it (108-byte limit).
	dir, err := os.MkdirTemp("/tmp", "skrt")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Namespace = "skiff-t" + randomHex(4)
	cfg.StopTimeout = 5 * time.Second
	cfg.LogRotateInterval = 0
	for _, f := range tweak {
		f(&cfg)
	}
	e := &env{t: t, cfg: cfg, log: slog.New(slog.NewTextHandler(&testLogWriter{t: t}, nil))}
	t.Cleanup(e.cleanup)
	return e
}

// start runs a Runtime on the env's data dir and waits until it serves.
func (e *env) start() *Runtime {
	e.t.Helper()
	rt, err := e.tryStart()
	if err != nil {
		e.t.Fatal(err)
	}
	return rt
}

func (e *env) tryStart() (*Runtime, error) {
	rt, err := New(e.cfg, e.log)
	if err != nil {
		return nil, fmt.Errorf("New: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	e.mu.Lock()
	e.cur, e.cancel, e.done = rt, cancel, done
	e.mu.Unlock()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := rt.WaitReady(wctx); err != nil {
		return rt, fmt.Errorf("WaitReady: %w\ncontainerd log:\n%s", err, tailFile(e.cfg.daemonLog(), 4096))
	}
	return rt, nil
}

// stop ends the current Runtime's Run, which stops its containerd.
func (e *env) stop() {
	e.mu.Lock()
	rt, cancel, done := e.cur, e.cancel, e.done
	e.cur = nil
	e.mu.Unlock()
	if rt == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Errorf("Run did not return after cancel")
	}
	rt.Close()
}

// startEnv is newEnv + start.
func startEnv(t *testing.T, tweak ...func(*Config)) (*env, *Runtime) {
	t.Helper()
	e := newEnv(t, tweak...)
	return e, e.start()
}

// cleanup removes everything the test made, even after a failure:
// containers (tasks, snapshots), sandboxes, containerd, mounts, cgroups.
func (e *env) cleanup() {
	e.mu.Lock()
	rt := e.cur
	e.mu.Unlock()
	if rt == nil && e.containerdCanStart() {
		var err error
		if rt, err = e.tryStart(); err != nil {
			e.t.Errorf("cleanup: %v", err)
			rt = nil
			e.stop()
		}
	}
	if rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cs, err := rt.ListContainers(ctx); err == nil {
			for _, c := range cs {
				if err := rt.RemoveContainer(ctx, c.ID); err != nil {
					e.t.Errorf("cleanup: remove container %s: %v", c.ID, err)
				}
			}
		} else {
			e.t.Errorf("cleanup: list containers: %v", err)
		}
		if sbs, err := rt.ListSandboxes(ctx); err == nil {
			for _, sb := range sbs {
				_ = rt.RemoveSandbox(ctx, sb.PodUID)
			}
		}
		cancel()
		e.stop()
	}
	e.killLeftovers()
	unmountUnder(e.cfg.DataDir)
	for _, d := range cgroupDirs(e.cfg.cgroupParent()) {
		_ = unix.Rmdir(d)
	}
	// runc's per-namespace state dir, empty once the containers are gone.
	_ = unix.Rmdir(filepath.Join("/run/containerd/runc", e.cfg.Namespace))
	if err := os.RemoveAll(e.cfg.DataDir); err != nil {
		e.t.Errorf("cleanup: %v", err)
	}
	e.t.Log("cleanup done")
}

// containerdCanStart reports whether a cleanup runtime makes sense.
func (e *env) containerdCanStart() bool {
	_, err := os.Stat(e.cfg.containerdDir())
	return err == nil && !e.t.Skipped()
}

// killLeftovers kills, by PID, a containerd or shim of this test's data dir
// or namespace that is still alive (only after a failed cleanup).
func (e *env) killLeftovers() {
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if argsMention(args, e.cfg.configFile()) || argsPair(args, "-namespace", e.cfg.Namespace) {
			e.t.Logf("cleanup: killing leftover pid %d: %q", pid, args)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

func argsMention(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

func argsPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
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

// cgroupDirs lists the cgroup v1 directories of parent in every hierarchy.
func cgroupDirs(parent string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
	return dirs
}

// testLogWriter sends log lines to t.Log until the test ends.
type testLogWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { _ = recover() }() // logging after the test ended
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ctxT returns a context that ends after d or with the test.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// importTestImage loads the busybox image into rt.
func importTestImage(t *testing.T, rt *Runtime) []agent.Image {
	t.Helper()
	f, err := os.Open(testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := rt.ImportImage(ctxT(t, 60*time.Second), f)
	if err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	return imgs
}

// podSpec returns a container spec in pod "pod" of the test image.
func podSpec(pod, name string, cmd ...string) agent.ContainerSpec {
	return agent.ContainerSpec{
		PodUID:       "uid-" + pod,
		PodName:      pod,
		PodNamespace: "default",
		Name:         name,
		Image:        testImageRef,
		Command:      cmd,
	}
}

// runContainer creates and starts spec and returns its ID.
func runContainer(t *testing.T, rt *Runtime, spec agent.ContainerSpec) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	id, err := rt.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateContainer(%s): %v", spec.Name, err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer(%s): %v", spec.Name, err)
	}
	return id
}

// waitFor polls cond every 50ms until it returns true or timeout passes.
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

// waitState waits until container id reaches state and returns its status.
func waitState(t *testing.T, rt *Runtime, id string, state agent.ContainerState, timeout time.Duration) agent.ContainerStatus {
	t.Helper()
	var st agent.ContainerStatus
	waitFor(t, timeout, fmt.Sprintf("container %s to be %s", id, state), func() (bool, string) {
		var err error
		st, err = rt.ContainerStatus(context.Background(), id)
		return err == nil && st.State == state, fmt.Sprintf("status %+v, err %v", st, err)
	})
	return st
}

// execOut runs cmd in container id and returns exit code and stdout+stderr.
func execOut(t *testing.T, rt *Runtime, id string, cmd ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := rt.Exec(ctxT(t, 20*time.Second), id, agent.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Exec(%q): %v", cmd, err)
	}
	return code, out.String()
}
