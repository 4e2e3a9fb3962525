package containerd

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

func TestRunFailsWhenContainerdCannotStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Namespace = "skiff-t" + randomHex(4)
	cfg.ContainerdBinary = "/nonexistent/containerd"
	rt, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx) }()
	if err := rt.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/containerd") {
		t.Fatalf("WaitReady = %v, want the start error naming the binary", err)
	}
	if err := <-runErr; err == nil {
		t.Fatalf("Run = nil, want an error")
	}
}

// TestExternalMode uses the managed containerd of one runtime from a second
// runtime in external mode, with its own namespace.
func TestExternalMode(t *testing.T) {
	_, managed := startEnv(t)
	importTestImage(t, managed)

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Namespace = "skiff-t" + randomHex(4)
	cfg.Socket = managed.cfg.socket()
	ext, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer ext.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- ext.Run(ctx) }()
	if err := ext.WaitReady(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	imgs, err := ext.ListImages(ctxT(t, 10*time.Second))
	if err != nil || len(imgs) != 0 {
		t.Fatalf("ListImages in another namespace = %+v, %v; want none", imgs, err)
	}
	if ext.ContainerdPID() != 0 {
		t.Fatalf("ContainerdPID in external mode = %d, want 0", ext.ContainerdPID())
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Ending an external-mode Run leaves the daemon alone.
	if _, err := managed.ListImages(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("managed containerd gone after the external runtime stopped: %v", err)
	}
}

// TestPrefixCommandNetns runs the managed containerd behind nsenter in a
// network namespace of its own: a host-network container then sees that
// namespace (loopback only), not the machine's.
func TestPrefixCommandNetns(t *testing.T) {
	requireContainerd(t)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	nsDir := t.TempDir()
	netns := filepath.Join(nsDir, "net")
	paths := map[string]string{"net": netns, "ipc": filepath.Join(nsDir, "ipc"), "uts": filepath.Join(nsDir, "uts")}
	if err := pinNamespaces(paths, "node-x"); err != nil {
		t.Fatalf("pin a node namespace: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = unpinNamespace(p)
		}
	})
	_, rt := startEnv(t, func(c *Config) { c.PrefixCommand = []string{nsenter, "--net=" + netns} })
	importTestImage(t, rt)
	spec := podSpec("hostnet", "app", "sleep", "1000")
	spec.HostNetwork = true
	id := runContainer(t, rt, spec)
	waitState(t, rt, id, agent.StateRunning, 10*time.Second)
	code, out := execOut(t, rt, id, "cat", "/proc/net/dev")
	if code != 0 {
		t.Fatalf("cat /proc/net/dev: %d %s", code, out)
	}
	var ifaces []string
	for _, line := range strings.Split(out, "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			ifaces = append(ifaces, name)
		}
	}
	if len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Fatalf("host-network container sees interfaces %q, want only lo of the node namespace", ifaces)
	}
}
