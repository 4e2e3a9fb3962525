package containerd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

// eventLog collects a runtime's events in the background.
type eventLog struct {
	mu     sync.Mutex
	events []agent.ContainerEvent
}

func collectEvents(t *testing.T, rt *Runtime) *eventLog {
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range rt.Events(ctx) {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "event stream to be live", func() (bool, string) {
		_, ok := l.has("", agent.EventResync)
		return ok, "no resync event"
	})
	return l
}

// has reports whether an event of type typ for id was seen.
func (l *eventLog) has(id string, typ agent.EventType) (agent.ContainerEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if ev.ContainerID == id && ev.Type == typ {
			return ev, true
		}
	}
	return agent.ContainerEvent{}, false
}

func TestExitReasons(t *testing.T) {
	_, rt := startEnv(t)
	importTestImage(t, rt)
	events := collectEvents(t, rt)

	tests := []struct {
		name       string
		cmd        []string
		memory     int64
		wantCode   int32
		wantReason string
		wantOOM    bool
	}{
		{name: "success", cmd: []string{"sh", "-c", "exit 0"}, wantCode: 0, wantReason: agent.ReasonCompleted},
		{name: "failure", cmd: []string{"sh", "-c", "exit 1"}, wantCode: 1, wantReason: agent.ReasonError},
		{name: "killed by a signal", cmd: []string{"sh", "-c", "sleep 100 & kill -9 $!; wait $!"}, wantCode: 137, wantReason: agent.ReasonError},
		{name: "over the memory limit", memory: 32 << 20, wantOOM: true, wantCode: 137, wantReason: agent.ReasonOOMKilled,
			cmd: []string{"sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := podSpec("reasons", tt.name, tt.cmd...)
			spec.Resources.MemoryLimitBytes = tt.memory
			id := runContainer(t, rt, spec)
			st := waitState(t, rt, id, agent.StateExited, 30*time.Second)
			if st.ExitCode != tt.wantCode || st.Reason != tt.wantReason {
				t.Fatalf("exit = %d %q, want %d %q", st.ExitCode, st.Reason, tt.wantCode, tt.wantReason)
			}
			if st.FinishedAt.Before(st.StartedAt) || st.StartedAt.IsZero() {
				t.Fatalf("startedAt %v, finishedAt %v", st.StartedAt, st.FinishedAt)
			}
			waitFor(t, 10*time.Second, "exit event", func() (bool, string) {
				ev, ok := events.has(id, agent.EventExited)
				return ok && ev.ExitCode == tt.wantCode, fmt.Sprintf("event %+v", ev)
			})
			if tt.wantOOM {
				waitFor(t, 10*time.Second, "oom event", func() (bool, string) {
					_, ok := events.has(id, agent.EventOOM)
					return ok, "no oom event"
				})
			}
		})
	}
}

func TestStopContainer(t *testing.T) {
	_, rt := startEnv(t)
	importTestImage(t, rt)
	tests := []struct {
		name     string
		script   string
		grace    time.Duration
		minTook  time.Duration
		maxTook  time.Duration
		wantCode int32
	}{
		{name: "ignores SIGTERM: killed after grace", script: "trap '' TERM; while true; do sleep 1; done",
			grace: 1500 * time.Millisecond, minTook: 1500 * time.Millisecond, maxTook: 10 * time.Second, wantCode: 137},
		{name: "exits on SIGTERM: before grace", script: "trap 'exit 0' TERM; while true; do sleep 0.1; done",
			grace: 20 * time.Second, maxTook: 10 * time.Second, wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := runContainer(t, rt, podSpec("stop", fmt.Sprintf("c%d", len(tt.name)), "sh", "-c", tt.script))
			waitState(t, rt, id, agent.StateRunning, 10*time.Second)
			// The shell must have set up its trap before the signal comes.
			waitFor(t, 10*time.Second, "SIGTERM trap in place", func() (bool, string) {
				_, out := execOut(t, rt, id, "cat", "/proc/1/status")
				return handlesSignal(out, 15), out
			})
			start := time.Now()
			if err := rt.StopContainer(ctxT(t, 30*time.Second), id, tt.grace); err != nil {
				t.Fatalf("StopContainer: %v", err)
			}
			took := time.Since(start)
			if took < tt.minTook || took > tt.maxTook {
				t.Fatalf("StopContainer took %v, want between %v and %v", took, tt.minTook, tt.maxTook)
			}
			st := waitState(t, rt, id, agent.StateExited, 5*time.Second)
			if st.ExitCode != tt.wantCode {
				t.Fatalf("exit code = %d, want %d", st.ExitCode, tt.wantCode)
			}
			if err := rt.StopContainer(ctxT(t, 5*time.Second), id, time.Second); err != nil {
				t.Fatalf("StopContainer of an exited container: %v", err)
			}
		})
	}
}

func TestContainerLifecycle(t *testing.T) {
	_, rt := startEnv(t)
	importTestImage(t, rt)
	ctx := ctxT(t, 30*time.Second)
	spec := podSpec("life", "app", "sleep", "1000")
	spec.Labels = map[string]string{"app": "life"}

	id, err := rt.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	st, err := rt.ContainerStatus(ctx, id)
	if err != nil || st.State != agent.StateCreated || st.Labels["app"] != "life" || st.Image != testImageRef {
		t.Fatalf("status after create = %+v, %v", st, err)
	}
	again, err := rt.CreateContainer(ctx, spec)
	if err != nil || again != id {
		t.Fatalf("CreateContainer again = %q, %v; want %q", again, err, id)
	}
	changed := spec
	changed.Args = []string{"other"}
	if _, err := rt.CreateContainer(ctx, changed); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("CreateContainer with another spec = %v, want ErrAlreadyExists", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if err := rt.StartContainer(ctx, id); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("StartContainer twice = %v, want ErrAlreadyExists", err)
	}
	waitState(t, rt, id, agent.StateRunning, 10*time.Second)
	if err := rt.RemoveContainer(ctx, id); err != nil {
		t.Fatalf("RemoveContainer of a running container: %v", err)
	}
	if _, err := rt.ContainerStatus(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("ContainerStatus after remove = %v, want ErrNotFound", err)
	}
	if err := rt.RemoveContainer(ctx, id); err != nil {
		t.Fatalf("RemoveContainer again: %v", err)
	}
	// The same attempt can be created again once removed (snapshot gone too).
	id2, err := rt.CreateContainer(ctx, spec)
	if err != nil || id2 != id {
		t.Fatalf("re-create = %q, %v", id2, err)
	}
}

// handlesSignal reports whether a /proc/PID/status text shows signal sig
// as caught or ignored.
func handlesSignal(status string, sig uint) bool {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigCgt" && k != "SigIgn") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err == nil && mask&(1<<(sig-1)) != 0 {
			return true
		}
	}
	return false
}
