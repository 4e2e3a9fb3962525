package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

func TestSandboxHTTPAndExec(t *testing.T) {
	_, rt := startEnv(t)
	importTestImage(t, rt)
	ctx := ctxT(t, 60*time.Second)

	sb, serverID, clientID := startWebPod(t, rt)
	// From the other container of the pod: they share one network namespace.
	var body string
	waitFor(t, 15*time.Second, "httpd to answer", func() (bool, string) {
		code, out := execOut(t, rt, clientID, "timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/")
		body = out
		return code == 0, fmt.Sprintf("exit %d: %s", code, out)
	})
	if body != "skiff test image\n" {
		t.Fatalf("wget body = %q, want the image's index.html", body)
	}

	checkExecs(t, rt, serverID)
	checkCgroups(t, rt, serverID)

	t.Run("Exec in a missing container", func(t *testing.T) {
		_, err := rt.Exec(ctx, "nope", agent.ExecSpec{Cmd: []string{"true"}})
		if !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("Exec error = %v, want ErrNotFound", err)
		}
	})

	t.Run("Exec cancelled", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := rt.Exec(cctx, serverID, agent.ExecSpec{Cmd: []string{"sleep", "30"}})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
			t.Fatalf("Exec = %v after %v, want DeadlineExceeded quickly", err, time.Since(start))
		}
	})

	t.Run("ListSandboxes and RemoveSandbox", func(t *testing.T) {
		sbs, err := rt.ListSandboxes(ctx)
		if err != nil || len(sbs) != 1 || sbs[0] != sb {
			t.Fatalf("ListSandboxes = %+v, %v; want [%+v]", sbs, err, sb)
		}
		for _, id := range []string{serverID, clientID} {
			if err := rt.RemoveContainer(ctx, id); err != nil {
				t.Fatalf("RemoveContainer: %v", err)
			}
		}
		if err := rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
			t.Fatalf("RemoveSandbox: %v", err)
		}
		if err := rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
			t.Fatalf("RemoveSandbox again: %v", err)
		}
		if _, err := os.Stat(sb.NetNSPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("netns file still there after RemoveSandbox: %v", err)
		}
		sbs, err = rt.ListSandboxes(ctx)
		if err != nil || len(sbs) != 0 {
			t.Fatalf("ListSandboxes after remove = %+v, %v", sbs, err)
		}
	})
}

// startWebPod creates a sandbox with an httpd container and a client
// container that join its namespaces.
func startWebPod(t *testing.T, rt *Runtime) (agent.Sandbox, string, string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	sbSpec := agent.SandboxSpec{PodUID: "uid-web", Name: "web", Namespace: "default"}
	sb, err := rt.CreateSandbox(ctx, sbSpec)
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	for _, p := range []string{sb.NetNSPath, sb.IPCNSPath, sb.UTSNSPath} {
		if !isPinned(p) {
			t.Fatalf("%s is not a pinned namespace", p)
		}
	}
	again, err := rt.CreateSandbox(ctx, sbSpec)
	if err != nil || again != sb {
		t.Fatalf("CreateSandbox again = %+v, %v; want the same %+v", again, err, sb)
	}

	join := func(s agent.ContainerSpec) agent.ContainerSpec {
		s.PodUID, s.NetNSPath, s.IPCNSPath, s.UTSNSPath = sb.PodUID, sb.NetNSPath, sb.IPCNSPath, sb.UTSNSPath
		return s
	}
	server := join(podSpec("web", "server", "httpd", "-f", "-p", "8080", "-h", "/var/www"))
	server.Resources = agent.Resources{MemoryLimitBytes: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 100}
	serverID := runContainer(t, rt, server)
	client := join(podSpec("web", "client", "sleep", "1000"))
	clientID := runContainer(t, rt, client)
	st := waitState(t, rt, serverID, agent.StateRunning, 10*time.Second)
	if st.PID == 0 || st.PodUID != sb.PodUID || st.Name != "server" || st.StartedAt.IsZero() {
		t.Fatalf("server status = %+v", st)
	}
	waitState(t, rt, clientID, agent.StateRunning, 10*time.Second)

	return sb, serverID, clientID
}

// checkExecs runs table-driven Execs in container id.
func checkExecs(t *testing.T, rt *Runtime, serverID string) {
	execs := []struct {
		name     string
		spec     agent.ExecSpec
		wantCode int
		wantOut  string
	}{
		{name: "exit code", spec: agent.ExecSpec{Cmd: []string{"sh", "-c", "exit 3"}}, wantCode: 3},
		{name: "hostname from the pod UTS namespace", spec: agent.ExecSpec{Cmd: []string{"hostname"}}, wantOut: "web\n"},
		{name: "stdin", spec: agent.ExecSpec{Cmd: []string{"cat"}, Stdin: strings.NewReader("hello\n")}, wantOut: "hello\n"},
		{name: "env", spec: agent.ExecSpec{Cmd: []string{"sh", "-c", "echo $GREETING"},
			Env: []agent.EnvVar{{Name: "GREETING", Value: "hi"}}}, wantOut: "hi\n"},
		// The size arrives after the start: poll for it inside.
		{name: "terminal resize", spec: agent.ExecSpec{TTY: true, Resize: sizes(agent.TerminalSize{Width: 100, Height: 30}),
			Cmd: []string{"sh", "-c", `for i in $(seq 100); do s=$(stty size 2>/dev/null); [ "$s" = "30 100" ] && break; sleep 0.1; done; echo "$s"`}},
			wantOut: "30 100\r\n"},
	}
	for _, tt := range execs {
		t.Run("Exec "+tt.name, func(t *testing.T) {
			var out bytes.Buffer
			spec := tt.spec
			spec.Stdout, spec.Stderr = &out, &out
			code, err := rt.Exec(ctxT(t, 20*time.Second), serverID, spec)
			if err != nil || code != tt.wantCode || out.String() != tt.wantOut {
				t.Fatalf("Exec = %d, %q, %v; want %d, %q", code, out.String(), err, tt.wantCode, tt.wantOut)
			}
		})
	}

}

// sizes is a resize channel holding the given sizes, then closed.
func sizes(s ...agent.TerminalSize) <-chan agent.TerminalSize {
	c := make(chan agent.TerminalSize, len(s))
	for _, sz := range s {
		c <- sz
	}
	close(c)
	return c
}

// checkCgroups verifies that the limits land in the container's cgroup,
// under the node's parent.
func checkCgroups(t *testing.T, rt *Runtime, serverID string) {
	cgroups := []struct{ file, want string }{
		{"memory/memory.limit_in_bytes", fmt.Sprint(64 << 20)},
		{"cpu/cpu.cfs_quota_us", "50000"},
		{"cpu/cpu.cfs_period_us", "100000"},
		{"cpu/cpu.shares", "102"},
	}
	for _, tt := range cgroups {
		t.Run("cgroup "+tt.file, func(t *testing.T) {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				t.Skip("checks cgroup v1 files")
			}
			ctrl, file, _ := strings.Cut(tt.file, "/")
			p := filepath.Join("/sys/fs/cgroup", ctrl, rt.cfg.cgroupParent(), serverID, file)
			b, err := os.ReadFile(p)
			if got := strings.TrimSpace(string(b)); err != nil || got != tt.want {
				t.Fatalf("%s = %q, %v; want %q", p, got, err, tt.want)
			}
		})
	}

}
