package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestProbeTrackerThresholds(t *testing.T) {
	tests := []struct {
		name     string
		kind     probeKind
		success  int32
		failure  int32
		outcomes string // s = success, f = failure
		want     string // published result after each outcome: S, F or ?
	}{
		{"readiness starts failed, one success makes it ready", readiness, 1, 3, "sff", "SSS"},
		{"readiness needs 3 failures", readiness, 1, 3, "sfffs", "SSSFS"},
		{"readiness needs 2 successes", readiness, 2, 1, "ssfss", "FSFFS"},
		{"liveness starts passing", liveness, 1, 3, "ffsfff", "SSSSSF"},
		{"liveness ignores successThreshold", liveness, 5, 1, "fs", "FS"},
		{"startup is unknown until decided", startup, 1, 2, "fs", "?S"},
		{"startup fails after the threshold", startup, 1, 2, "ff", "?F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newProbeTracker(tt.kind, &corev1.Probe{SuccessThreshold: tt.success, FailureThreshold: tt.failure})
			var got strings.Builder
			for _, o := range tt.outcomes {
				tr.observe(o == 's')
				got.WriteByte("?SF"[tr.result])
			}
			if got.String() != tt.want {
				t.Fatalf("results %s, want %s", got.String(), tt.want)
			}
		})
	}
}

func TestProbeWorkerTiming(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	var ok atomic.Bool
	calls := make(chan time.Time, 10)
	notified := make(chan string, 10)
	run := func(ctx context.Context, _ probeTarget, _ *corev1.Probe) (bool, string) {
		calls <- clk.Now()
		return ok.Load(), "scripted"
	}
	m := newProbeManager(clk, slog.New(slog.DiscardHandler), run, func(uid string) { notified <- uid })
	pod := testPod(corev1.RestartPolicyAlways, "a")
	c := &pod.Spec.Containers[0]
	c.ReadinessProbe = &corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, TimeoutSeconds: 1, SuccessThreshold: 2, FailureThreshold: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); m.wait() }()
	running := []ContainerStatus{{ID: "a-0", Name: "a", State: StateRunning, StartedAt: t0}}
	m.sync(ctx, pod, "", running)

	// step advances the fake clock once the worker waits on its timer, and
	// returns the time of the probe that follows, if any.
	step := func(d time.Duration, wantProbe bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatal("probe worker never waited on its timer")
			}
			time.Sleep(time.Millisecond)
		}
		clk.Step(d)
		select {
		case at := <-calls:
			if !wantProbe {
				t.Fatalf("unexpected probe at +%s", at.Sub(t0))
			}
		case <-time.After(200 * time.Millisecond):
			if wantProbe {
				t.Fatalf("no probe at +%s", clk.Now().Sub(t0))
			}
		}
	}
	ready := func() bool { return m.state("a-0", c).ready }

	ok.Store(true)
	step(4*time.Second, false) // within the initial delay
	step(time.Second, true)    // +5s: first success, threshold 2
	if ready() {
		t.Fatal("ready after one success with successThreshold 2")
	}
	step(2*time.Second, true) // +7s: second success
	if !ready() {
		t.Fatal("not ready after two successes")
	}
	if uid := <-notified; uid != "uid1" {
		t.Fatalf("notified %q", uid)
	}
	ok.Store(false)
	step(2*time.Second, true) // +9s: one failure, threshold 1
	if ready() {
		t.Fatal("still ready after a failure")
	}
	m.sync(ctx, pod, "", nil) // the container stopped: its worker goes
	m.mu.Lock()
	_, found := m.results[probeKey{id: "a-0", kind: readiness}]
	m.mu.Unlock()
	if found {
		t.Fatal("results of a stopped container kept")
	}
}

func TestProbeStateDefaults(t *testing.T) {
	m := newProbeManager(clocktesting.NewFakeClock(t0), slog.New(slog.DiscardHandler), nil, func(string) {})
	tests := []struct {
		name string
		c    corev1.Container
		want probeState
	}{
		{"no probes", corev1.Container{}, probeState{ready: true, started: true}},
		{"readiness not yet run", corev1.Container{ReadinessProbe: &corev1.Probe{}}, probeState{started: true}},
		{"startup not yet run", corev1.Container{StartupProbe: &corev1.Probe{}}, probeState{}},
		{"liveness not yet run", corev1.Container{LivenessProbe: &corev1.Probe{}}, probeState{ready: true, started: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.state("x", &tt.c); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
