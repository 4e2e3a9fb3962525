package containerd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

// helperEnv makes the test binary act as a short-lived "agent" (see
// adoptionHelper) that the adoption test kills with SIGKILL.
const helperEnv = "SKIFF_RUNTIME_TEST_HELPER"

// helperArgs is what the parent passes to the helper in helperEnv.
type helperArgs struct {
	DataDir, Namespace, Image string
}

// adoptionHelper runs a Runtime, starts one container, prints its ID and
// then waits to be killed. It returns the process exit code.
func adoptionHelper() int {
	var a helperArgs
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "helper args:", err)
		return 2
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Namespace = a.DataDir, a.Namespace
	rt, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	go func() { _ = rt.Run(ctx) }()
	id, err := helperStartContainer(ctx, rt, a.Image)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Printf("READY %s\n", id)
	select {} // until SIGKILL
}

func helperStartContainer(ctx context.Context, rt *Runtime, image string) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rt.WaitReady(wctx); err != nil {
		return "", err
	}
	f, err := os.Open(image)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := rt.ImportImage(wctx, f); err != nil {
		return "", err
	}
	id, err := rt.CreateContainer(wctx, podSpec("adopt", "ticker", "sh", "-c", "while true; do echo tick; sleep 0.1; done"))
	if err != nil {
		return "", err
	}
	return id, rt.StartContainer(wctx, id)
}

// startHelper runs the helper agent and returns it with the container ID.
func startHelper(t *testing.T, e *env) (*exec.Cmd, string) {
	t.Helper()
	args, _ := json.Marshal(helperArgs{DataDir: e.cfg.DataDir, Namespace: e.cfg.Namespace, Image: testImage(t)})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(args))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		id, ok := strings.CutPrefix(strings.TrimSpace(s), "READY ")
		if !ok {
			t.Fatalf("helper said %q; stderr:\n%s", s, stderr.String())
		}
		return cmd, id
	case <-time.After(60 * time.Second):
		t.Fatalf("helper not ready after 60s; stderr:\n%s", stderr.String())
	}
	return nil, ""
}

func TestAdoptionAfterAgentAndContainerdRestart(t *testing.T) {
	e := newEnv(t)
	helper, id := startHelper(t, e)
	d := &daemon{cfg: e.cfg}
	daemonPID, ok := d.findRunning()
	if !ok {
		t.Fatalf("no containerd recorded in %s", e.cfg.pidFile())
	}

	// The agent dies hard: containerd, the shim and the container live on,
	// and the shim keeps writing the log.
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	if !isOurContainerd(daemonPID, e.cfg.configFile()) {
		t.Fatalf("containerd %d died with the agent", daemonPID)
	}
	logPath := (&Runtime{cfg: e.cfg}).LogPath("default", "adopt", "uid-adopt", "ticker", 0)
	size := fileSize(logPath)
	waitFor(t, 10*time.Second, "log to grow without an agent", func() (bool, string) {
		return fileSize(logPath) > size, fmt.Sprintf("%s stays at %d bytes", logPath, size)
	})

	// A new agent adopts the running containerd and finds the container.
	rt := e.start()
	if got := rt.ContainerdPID(); got != daemonPID {
		t.Fatalf("ContainerdPID = %d, want the adopted %d", got, daemonPID)
	}
	st := findContainer(t, rt, id)
	if st.State != agent.StateRunning || st.PodUID != "uid-adopt" || st.Name != "ticker" || st.Attempt != 0 || st.PID == 0 {
		t.Fatalf("adopted container = %+v, want it running with its identity", st)
	}
	containerPID := st.PID

	// containerd itself restarts: the container keeps running and the next
	// containerd (a new process) reports it with the same PID.
	e.stop()
	waitFor(t, 10*time.Second, "old containerd to exit", func() (bool, string) {
		return !isOurContainerd(daemonPID, e.cfg.configFile()), "still running"
	})
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", containerPID)); err != nil {
		t.Fatalf("container process %d died with containerd: %v", containerPID, err)
	}
	rt = e.start()
	if got := rt.ContainerdPID(); got == daemonPID || got == 0 {
		t.Fatalf("ContainerdPID = %d, want a new process (old %d)", got, daemonPID)
	}
	st = findContainer(t, rt, id)
	if st.State != agent.StateRunning || st.PID != containerPID {
		t.Fatalf("after containerd restart = %+v, want running with PID %d", st, containerPID)
	}
	if err := rt.StopContainer(ctxT(t, 30*time.Second), id, time.Second); err != nil {
		t.Fatalf("StopContainer after restarts: %v", err)
	}
	if st := waitState(t, rt, id, agent.StateExited, 10*time.Second); st.ExitCode != 137 {
		t.Fatalf("exit code = %d, want 137 (sh as PID 1 ignores SIGTERM)", st.ExitCode)
	}
}

// findContainer returns container id from ListContainers.
func findContainer(t *testing.T, rt *Runtime, id string) agent.ContainerStatus {
	t.Helper()
	list, err := rt.ListContainers(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	for _, c := range list {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("ListContainers = %+v, lacks %s", list, id)
	return agent.ContainerStatus{}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func TestContainerdCrashIsRestarted(t *testing.T) {
	_, rt := startEnv(t)
	importTestImage(t, rt)
	events := collectEvents(t, rt)
	id := runContainer(t, rt, podSpec("crash", "app", "sleep", "1000"))
	before := waitState(t, rt, id, agent.StateRunning, 10*time.Second)
	oldPID := rt.ContainerdPID()
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd: %v", err)
	}
	waitFor(t, 30*time.Second, "a new containerd", func() (bool, string) {
		pid := rt.ContainerdPID()
		if pid == 0 || pid == oldPID {
			return false, fmt.Sprintf("pid %d", pid)
		}
		st, err := rt.ContainerStatus(context.Background(), id)
		return err == nil && st.State == agent.StateRunning && st.PID == before.PID, fmt.Sprintf("%+v %v", st, err)
	})
	waitFor(t, 10*time.Second, "a second resync event", func() (bool, string) {
		events.mu.Lock()
		defer events.mu.Unlock()
		n := 0
		for _, ev := range events.events {
			if ev.Type == agent.EventResync {
				n++
			}
		}
		return n >= 2, fmt.Sprintf("%d resync events", n)
	})
}
