package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestAgentRunsPod(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.ExecFn = func(ctx context.Context, id string, spec ExecSpec) (int, error) { return 0, nil }
	h.start(nil)
	pod := simplePod("web", corev1.RestartPolicyAlways, "a", "b")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
		PeriodSeconds: 1,
	}
	created := h.createPod(pod)
	got := h.waitPod("web", 10*time.Second, "pod ready", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	for _, name := range []string{"a", "b"} {
		cs, _ := containerState(got, name)
		if want := containerIDPrefix + fakeID(string(created.UID), name, 0); cs.ContainerID != want || cs.ImageID == "" {
			t.Fatalf("container %s: id %q imageID %q, want id %q", name, cs.ContainerID, cs.ImageID, want)
		}
	}
	if got.Status.StartTime == nil || got.Status.HostIP != "127.0.0.1" {
		t.Fatalf("startTime %v hostIP %q", got.Status.StartTime, got.Status.HostIP)
	}
	if n := len(h.rt.Calls("sandbox ")); n != 1 {
		t.Fatalf("%d sandboxes created", n)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestAgentRestartPolicies(t *testing.T) {
	tests := []struct {
		name      string
		policy    corev1.RestartPolicy
		exitCode  int32
		wantPhase corev1.PodPhase // "" : keeps restarting
	}{
		{"Never keeps a failure", corev1.RestartPolicyNever, 1, corev1.PodFailed},
		{"Never keeps a success", corev1.RestartPolicyNever, 0, corev1.PodSucceeded},
		{"OnFailure keeps a success", corev1.RestartPolicyOnFailure, 0, corev1.PodSucceeded},
		{"OnFailure restarts a failure", corev1.RestartPolicyOnFailure, 1, ""},
		{"Always restarts a success", corev1.RestartPolicyAlways, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.start(nil)
			pod := h.createPod(simplePod("p", tt.policy, "a"))
			exitWhenRunning := func(attempt uint32) {
				id := fakeID(string(pod.UID), "a", attempt)
				waitFor(t, 10*time.Second, "container "+id+" running", func() (bool, string) {
					st, ok := h.rt.Container(id)
					return ok && st.State == StateRunning, fmt.Sprintf("%+v", st)
				})
				h.rt.Exit(id, tt.exitCode, map[bool]string{true: ReasonCompleted, false: ReasonError}[tt.exitCode == 0])
			}
			exitWhenRunning(0)
			if tt.wantPhase != "" {
				got := h.waitPod("p", 10*time.Second, "phase "+string(tt.wantPhase), func(p *corev1.Pod) bool {
					return p != nil && p.Status.Phase == tt.wantPhase
				})
				cs, _ := containerState(got, "a")
				if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != tt.exitCode || cs.RestartCount != 0 {
					t.Fatalf("container status %s", describe(got))
				}
				if n := len(h.rt.Calls("create ")); n != 1 {
					t.Fatalf("%d containers created, want 1", n)
				}
				return
			}
			exitWhenRunning(1)
			exitWhenRunning(2)
			h.waitPod("p", 10*time.Second, "restartCount 3", func(p *corev1.Pod) bool {
				cs, ok := containerState(p, "a")
				return ok && cs.RestartCount == 3 && p.Status.Phase == corev1.PodRunning
			})
		})
	}
}

func TestAgentCrashLoopBackOffFakeClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	h := newHarness(t, clk)
	h.start(func(c *Config) {
		c.RestartBackoffBase, c.RestartBackoffMax = 10*time.Second, 5*time.Minute
	})
	pod := h.createPod(simplePod("crash", corev1.RestartPolicyAlways, "a"))
	id := func(n uint32) string { return fakeID(string(pod.UID), "a", n) }
	running := func(n uint32) func() (bool, string) {
		return func() (bool, string) {
			st, ok := h.rt.Container(id(n))
			return ok && st.State == StateRunning, fmt.Sprintf("%+v", st)
		}
	}
	waitFor(t, 10*time.Second, "first attempt", running(0))
	h.rt.Exit(id(0), 1, ReasonError)
	waitFor(t, 10*time.Second, "immediate first restart", running(1))
	h.rt.Exit(id(1), 1, ReasonError)
	h.waitPod("crash", 10*time.Second, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff && cs.RestartCount == 1
	})
	// Only fake time moves the back-off: step one second at a time and
	// note when attempt 2 appears.
	var waited time.Duration
	for ; waited <= 15*time.Second; waited += time.Second {
		if ok, _ := running(2)(); ok {
			break
		}
		clk.Step(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "second restart", running(2))
	if waited < 10*time.Second || waited > 12*time.Second {
		t.Fatalf("second restart after %s of back-off, want 10s", waited)
	}
}

func TestAgentImagePullFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.start(func(c *Config) { c.PullBackoffBase, c.PullBackoffMax = time.Hour, time.Hour })
	h.createPod(simplePod("fine", corev1.RestartPolicyAlways, "a"))
	missing := simplePod("missing", corev1.RestartPolicyAlways, "a")
	missing.Spec.Containers[0].Image = "missing:1"
	h.createPod(missing)
	h.waitPod("missing", 10*time.Second, "ErrImagePull", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonErrImagePull &&
			strings.Contains(cs.State.Waiting.Message, "registry unreachable")
	})
	h.waitPod("fine", 10*time.Second, "the other pod running", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning
	})
	// Loading the image retries at once, despite the hour of back-off.
	resp, err := httpPost(h.agentURL()+"/images/load", "missing:1")
	if err != nil || !strings.Contains(resp, `"ref":"missing:1"`) {
		t.Fatalf("load: %v %s", err, resp)
	}
	h.waitPod("missing", 10*time.Second, "running after the image load", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning
	})
}

func TestAgentGracefulDeletion(t *testing.T) {
	h := newHarness(t, nil)
	h.start(nil)
	pod := simplePod("del", corev1.RestartPolicyAlways, "a")
	pod.Spec.TerminationGracePeriodSeconds = new(int64(7))
	created := h.createPod(pod)
	h.waitPod("del", 10*time.Second, "running", func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning })
	if err := h.api.Client.CoreV1().Pods("default").Delete(context.Background(), "del", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitPod("del", 10*time.Second, "pod gone", func(p *corev1.Pod) bool { return p == nil })
	uid := string(created.UID)
	want := []string{
		"stop " + fakeID(uid, "a", 0) + " 7s",
		"remove " + fakeID(uid, "a", 0),
		"rmsandbox " + uid,
		"rmlogs " + uid,
	}
	for _, w := range want {
		if !slices.Contains(h.rt.Calls(""), w) {
			t.Fatalf("no call %q in %q", w, h.rt.Calls(""))
		}
	}
}

func TestAgentForceDeletion(t *testing.T) {
	h := newHarness(t, nil)
	h.start(func(c *Config) { c.ForceDeleteGracePeriod = 3 * time.Second })
	created := h.createPod(simplePod("gone", corev1.RestartPolicyAlways, "a"))
	h.waitPod("gone", 10*time.Second, "running", func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning })
	err := h.api.Client.CoreV1().Pods("default").Delete(context.Background(), "gone", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(created.UID)
	waitFor(t, 10*time.Second, "teardown", func() (bool, string) {
		return slices.Contains(h.rt.Calls(""), "rmlogs "+uid), fmt.Sprint(h.rt.Calls(""))
	})
	if !slices.Contains(h.rt.Calls(""), "stop "+fakeID(uid, "a", 0)+" 3s") {
		t.Fatalf("not stopped with the force-delete grace: %q", h.rt.Calls(""))
	}
}

func TestAgentAdoptsAfterRestart(t *testing.T) {
	h := newHarness(t, nil)
	keep := h.createPod(simplePod("keep", corev1.RestartPolicyAlways, "a"))
	died := h.createPod(simplePod("died", corev1.RestartPolicyAlways, "a"))
	now := time.Now()
	put := func(pod *corev1.Pod, attempt uint32, state ContainerState) string {
		id := fakeID(string(pod.UID), "a", attempt)
		st := ContainerStatus{ID: id, PodUID: string(pod.UID), PodName: pod.Name, PodNamespace: pod.Namespace, Name: "a",
			Attempt: attempt, SpecHash: specHash(pod, &pod.Spec.Containers[0]), Image: "img", State: state,
			StartedAt: now.Add(-time.Minute), Labels: map[string]string{labelRestartStreak: fmt.Sprint(attempt)}}
		if state == StateExited {
			st.ExitCode, st.Reason, st.FinishedAt = 1, ReasonError, now.Add(-time.Hour)
		}
		h.rt.Put(st)
		return id
	}
	keptID := put(keep, 3, StateRunning)
	put(died, 1, StateExited)
	ghost := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: "default", UID: "ghost-uid"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "img"}}}}
	ghostID := put(ghost, 0, StateRunning)
	if _, err := h.rt.CreateSandbox(context.Background(), SandboxSpec{PodUID: "ghost-uid", Name: "ghost", Namespace: "default"}); err != nil {
		t.Fatal(err)
	}

	h.start(nil)
	got := h.waitPod("keep", 10*time.Second, "adopted pod reported", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Running != nil && p.Status.Phase == corev1.PodRunning
	})
	if cs, _ := containerState(got, "a"); cs.ContainerID != containerIDPrefix+keptID || cs.RestartCount != 3 {
		t.Fatalf("adopted container: id %s restarts %d", cs.ContainerID, cs.RestartCount)
	}
	h.waitPod("died", 10*time.Second, "dead container restarted", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Running != nil && cs.RestartCount == 2
	})
	waitFor(t, 10*time.Second, "orphan removed", func() (bool, string) {
		calls := h.rt.Calls("")
		return slices.Contains(calls, "remove "+ghostID) && slices.Contains(calls, "rmsandbox ghost-uid") &&
			slices.Contains(calls, "rmlogs ghost-uid"), fmt.Sprint(calls)
	})
	for _, c := range h.rt.Calls("create ") {
		if strings.HasPrefix(c, "create keep/") {
			t.Fatalf("adopted pod got a new container: %s", c)
		}
	}
}
