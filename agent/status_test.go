package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionOf returns a pod condition's status and reason.
func conditionOf(st corev1.PodStatus, t corev1.PodConditionType) (corev1.ConditionStatus, string) {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

func TestComputeStatus(t *testing.T) {
	always := corev1.RestartPolicyAlways
	tests := []struct {
		name      string
		pod       *corev1.Pod
		attempts  []ctr
		probes    map[string]probeState
		check     func(t *testing.T, st corev1.PodStatus)
		wantPhase corev1.PodPhase
	}{
		{name: "ready when running and probes pass", pod: testPod(always, "a"),
			attempts:  []ctr{{name: "a", attempt: 2, state: StateRunning, streak: 2}, {name: "a", attempt: 1, state: StateExited, code: 1, agoFin: time.Minute}},
			probes:    map[string]probeState{"a-2": {ready: true, started: true}},
			wantPhase: corev1.PodRunning,
			check: func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if !cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 2 || cs.ContainerID != "containerd://a-2" {
					t.Fatalf("container status %+v", cs)
				}
				if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != ReasonError {
					t.Fatalf("lastState %+v", cs.LastTerminationState)
				}
				if s, _ := conditionOf(st, corev1.PodReady); s != corev1.ConditionTrue {
					t.Fatalf("Ready = %s", s)
				}
				if s, _ := conditionOf(st, corev1.PodScheduled); s != corev1.ConditionTrue {
					t.Fatalf("PodScheduled = %s", s)
				}
			}},
		{name: "not ready until readiness passes", pod: testPod(always, "a"),
			attempts:  []ctr{{name: "a", state: StateRunning}},
			probes:    map[string]probeState{"a-0": {ready: false, started: true}},
			wantPhase: corev1.PodRunning,
			check: func(t *testing.T, st corev1.PodStatus) {
				if s, r := conditionOf(st, corev1.ContainersReady); s != corev1.ConditionFalse || r != "ContainersNotReady" {
					t.Fatalf("ContainersReady = %s %s", s, r)
				}
			}},
		{name: "crash loop shows waiting with the last termination", pod: testPod(always, "a"),
			attempts:  []ctr{{name: "a", attempt: 3, state: StateExited, code: 1, streak: 3, agoFin: time.Second}},
			wantPhase: corev1.PodRunning,
			check: func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonCrashLoopBackOff {
					t.Fatalf("state %+v", cs.State)
				}
				if cs.LastTerminationState.Terminated == nil || cs.RestartCount != 3 {
					t.Fatalf("status %+v", cs)
				}
			}},
		{name: "init containers pending", pod: testPod(always, "init1", "a"),
			attempts:  []ctr{{name: "init1", state: StateRunning}},
			wantPhase: corev1.PodPending,
			check: func(t *testing.T, st corev1.PodStatus) {
				if s, r := conditionOf(st, corev1.PodInitialized); s != corev1.ConditionFalse || r != "ContainersNotInitialized" {
					t.Fatalf("Initialized = %s %s", s, r)
				}
				if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != reasonPodInitializing {
					t.Fatalf("app container %+v", st.ContainerStatuses[0].State)
				}
			}},
		{name: "completed pod", pod: testPod(corev1.RestartPolicyNever, "a"),
			attempts:  []ctr{{name: "a", state: StateExited}},
			wantPhase: corev1.PodSucceeded,
			check: func(t *testing.T, st corev1.PodStatus) {
				if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != ReasonCompleted {
					t.Fatalf("state %+v", st.ContainerStatuses[0].State)
				}
				if s, r := conditionOf(st, corev1.PodReady); s != corev1.ConditionFalse || r != "PodCompleted" {
					t.Fatalf("Ready = %s %s", s, r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view(tt.pod, tt.attempts...)
			for id, p := range tt.probes {
				v.probes[id] = p
			}
			acts := computeActions(v, testPolicy)
			st := computeStatus(v, &acts, statusInput{hostIP: "10.0.0.1"})
			if st.Phase != tt.wantPhase || st.HostIP != "10.0.0.1" || st.StartTime == nil {
				t.Fatalf("phase %s hostIP %q startTime %v", st.Phase, st.HostIP, st.StartTime)
			}
			tt.check(t, st)
		})
	}
}

func TestConditionTransitionTimesAreKept(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, "a")
	v := view(pod, ctr{name: "a", state: StateRunning})
	v.probes["a-0"] = probeState{ready: true, started: true}
	acts := computeActions(v, testPolicy)
	first := computeStatus(v, &acts, statusInput{})
	v.now = t0.Add(time.Minute)
	second := computeStatus(v, &acts, statusInput{old: first})
	for i := range first.Conditions {
		if !first.Conditions[i].LastTransitionTime.Equal(&second.Conditions[i].LastTransitionTime) {
			t.Fatalf("condition %s moved: %v -> %v", first.Conditions[i].Type, first.Conditions[i].LastTransitionTime, second.Conditions[i].LastTransitionTime)
		}
	}
	v.probes["a-0"] = probeState{ready: false, started: true}
	third := computeStatus(v, &acts, statusInput{old: second})
	for _, c := range third.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.Equal(&metav1.Time{Time: v.now}) {
			t.Fatalf("Ready changed but kept its time %v", c.LastTransitionTime)
		}
	}
}

func TestImageIDFor(t *testing.T) {
	tests := []struct{ ref, digest, want string }{
		{"docker.io/library/busybox:latest", "sha256:ab", "docker.io/library/busybox@sha256:ab"},
		{"127.0.0.1:5000/x/y:v1", "sha256:cd", "127.0.0.1:5000/x/y@sha256:cd"},
		{"127.0.0.1:5000/x/y", "sha256:cd", "127.0.0.1:5000/x/y@sha256:cd"},
		{"busybox", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			if got := imageIDFor(tt.ref, tt.digest); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
