package containerd

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

func TestLogs(t *testing.T) {
	_, rt := startEnv(t, func(c *Config) { c.LogMaxBytes = 1024 })
	importTestImage(t, rt)
	ctx := ctxT(t, 60*time.Second)

	firstID, errID, secondID, st := startLogContainers(t, rt)
	checkLogReads(t, rt, firstID, errID, secondID)
	if err := rt.ReadLogs(ctx, firstID, agent.LogOptions{Previous: true}, &bytes.Buffer{}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("ReadLogs(previous) of attempt 0 = %v, want ErrNotFound", err)
	}

	t.Run("rotation keeps the shim writing at the start", func(t *testing.T) {
		waitFor(t, 10*time.Second, "the 4 KiB line", func() (bool, string) {
			fi, err := os.Stat(st.LogPath)
			return err == nil && fi.Size() == 4097, "log not written yet"
		})
		if err := rt.RotateLogs(ctx); err != nil {
			t.Fatalf("RotateLogs: %v", err)
		}
		rotated, err := os.ReadFile(st.LogPath + ".1")
		if err != nil || len(rotated) != 4097 {
			t.Fatalf("rotated file: %d bytes, %v; want 4097", len(rotated), err)
		}
		if code, out := execOut(t, rt, secondID, "touch", "/tmp/go"); code != 0 {
			t.Fatalf("touch: %d %s", code, out)
		}
		// O_APPEND: the next write lands at offset 0, not after a hole.
		waitFor(t, 10*time.Second, "output after rotation", func() (bool, string) {
			b, _ := os.ReadFile(st.LogPath)
			return string(b) == "after-rotation\n", strings.ReplaceAll(string(b), "\x00", `\0`)
		})
	})

	t.Run("follow a running container", func(t *testing.T) {
		fctx := ctxT(t, 2*time.Second) // follow ends with ctx; room for a loaded machine
		var buf bytes.Buffer
		if err := rt.ReadLogs(fctx, secondID, agent.LogOptions{Follow: true}, &buf); err != nil {
			t.Fatalf("ReadLogs(follow): %v", err)
		}
		if buf.String() != "after-rotation\n" {
			t.Fatalf("followed %q, want %q", buf.String(), "after-rotation\n")
		}
	})

	t.Run("RemovePodLogs", func(t *testing.T) {
		if err := rt.RemovePodLogs(ctx, "default", "logs", "uid-logs"); err != nil {
			t.Fatalf("RemovePodLogs: %v", err)
		}
		if _, err := os.Stat(st.LogPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("log still there: %v", err)
		}
	})
}

// startLogContainers runs the containers whose logs TestLogs reads.
func startLogContainers(t *testing.T, rt *Runtime) (string, string, string, agent.ContainerStatus) {
	t.Helper()
	// Attempt 0 prints lines and exits; attempt 1 keeps running and prints
	// a 4 KiB line, then more once /tmp/go exists. Another container closes
	// its stdout, then writes to stderr: the stderr line must still reach
	// the log (the shim copies the two streams independently, so their
	// relative order is not kept).
	first := podSpec("logs", "app", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done")
	firstID := runContainer(t, rt, first)
	errID := runContainer(t, rt, podSpec("logs", "stderr", "sh", "-c", "exec 1>&-; sleep 0.2; echo oops >&2"))
	waitState(t, rt, firstID, agent.StateExited, 10*time.Second)
	waitState(t, rt, errID, agent.StateExited, 10*time.Second)

	next := first
	next.Attempt = 1
	next.Command = []string{"sh", "-c",
		"head -c 4096 /dev/zero | tr '\\0' a; echo; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after-rotation; sleep 1000"}
	secondID := runContainer(t, rt, next)
	second := waitState(t, rt, secondID, agent.StateRunning, 10*time.Second)
	if want := rt.LogPath("default", "logs", "uid-logs", "app", 1); second.LogPath != want {
		t.Fatalf("LogPath = %q, want %q", second.LogPath, want)
	}
	return firstID, errID, secondID, second
}

// checkLogReads reads the logs of the exited containers in several ways.
func checkLogReads(t *testing.T, rt *Runtime, firstID, errID, secondID string) {
	reads := []struct {
		name string
		id   string
		opts agent.LogOptions
		want string
	}{
		{name: "all", id: firstID, want: "line1\nline2\nline3\nline4\nline5\n"},
		{name: "stderr", id: errID, want: "oops\n"},
		{name: "tail 2", id: firstID, opts: agent.LogOptions{TailLines: 2}, want: "line4\nline5\n"},
		{name: "limit bytes", id: firstID, opts: agent.LogOptions{LimitBytes: 8}, want: "line1\nli"},
		{name: "previous attempt", id: secondID, opts: agent.LogOptions{Previous: true, TailLines: 1}, want: "line5\n"},
		{name: "follow an exited container returns", id: firstID, opts: agent.LogOptions{Follow: true, TailLines: 1}, want: "line5\n"},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			// The shim copies output to the file on its own schedule, so a
			// container can be reported exited a moment before its last
			// bytes land: poll for the content, with a deadline.
			var got string
			deadline := time.Now().Add(5 * time.Second)
			for {
				var buf bytes.Buffer
				if err := rt.ReadLogs(ctxT(t, 10*time.Second), tt.id, tt.opts, &buf); err != nil {
					t.Fatalf("ReadLogs: %v", err)
				}
				if got = buf.String(); got == tt.want || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != tt.want {
				t.Fatalf("ReadLogs = %q, want %q", got, tt.want)
			}
		})
	}

}
