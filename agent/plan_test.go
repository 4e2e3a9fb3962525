package agent

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var testPolicy = backoffPolicy{
	restartBase: 10 * time.Second, restartMax: 5 * time.Minute, restartReset: 10 * time.Minute,
	pullBase: 10 * time.Second, pullMax: 5 * time.Minute,
}

// testPod returns a pod with the given restart policy, init containers
// (names starting with "init") and containers.
func testPod(policy corev1.RestartPolicy, names ...string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid1"},
		Spec:       corev1.PodSpec{RestartPolicy: policy, NodeName: "n1"},
	}
	for _, n := range names {
		c := corev1.Container{Name: n, Image: "img", ImagePullPolicy: corev1.PullIfNotPresent}
		if strings.HasPrefix(n, "init") {
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
		} else {
			pod.Spec.Containers = append(pod.Spec.Containers, c)
		}
	}
	return pod
}

// ctr describes one attempt in a test's history.
type ctr struct {
	name    string
	attempt uint32
	state   ContainerState
	code    int32
	ranFor  time.Duration // run time before it finished
	agoFin  time.Duration // how long ago it finished
	streak  uint32
	hash    string // "" means the desired hash
}

// view builds a podView at t0 from a pod and attempts.
func view(pod *corev1.Pod, attempts ...ctr) *podView {
	hashes := map[string]string{}
	for _, c := range allContainers(pod) {
		hashes[c.Name] = specHash(pod, c)
	}
	var list []ContainerStatus
	for _, a := range attempts {
		st := ContainerStatus{
			ID: fmt.Sprintf("%s-%d", a.name, a.attempt), PodUID: string(pod.UID), Name: a.name, Attempt: a.attempt,
			SpecHash: hashes[a.name], State: a.state, ExitCode: a.code,
			Labels: map[string]string{labelRestartStreak: fmt.Sprint(a.streak)},
		}
		if a.hash != "" {
			st.SpecHash = a.hash
		}
		if a.state == StateRunning || exited(st) {
			st.StartedAt = t0.Add(-a.agoFin - a.ranFor)
		}
		if exited(st) {
			st.FinishedAt = t0.Add(-a.agoFin)
			st.Reason = ReasonCompleted
			if a.code != 0 {
				st.Reason = ReasonError
			}
		}
		list = append(list, st)
	}
	return &podView{pod: pod, now: t0, history: groupHistory(list), hashes: hashes,
		probes: map[string]probeState{}, failures: map[string]*failure{}, messages: map[string]string{}}
}

// summary renders a decision compactly: starts, kills, waiting reasons.
func summary(a podActions) string {
	var parts []string
	for _, s := range a.start {
		if s.existingID != "" {
			parts = append(parts, "start-existing "+s.existingID)
		} else {
			parts = append(parts, fmt.Sprintf("start %s/%d/s%d", s.container.Name, s.attempt, s.streak))
		}
	}
	for _, k := range a.kill {
		parts = append(parts, "kill "+k.id)
	}
	var waits []string
	for name, w := range a.waiting {
		waits = append(waits, "wait "+name+":"+w.reason)
	}
	slices.Sort(waits)
	parts = append(parts, waits...)
	if !a.wakeAt.IsZero() {
		parts = append(parts, "wake +"+a.wakeAt.Sub(t0).String())
	}
	parts = append(parts, string(a.phase))
	return strings.Join(parts, "; ")
}

func TestComputeActions(t *testing.T) {
	always, onFailure, never := corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever
	tests := []struct {
		name     string
		pod      *corev1.Pod
		attempts []ctr
		tweak    func(v *podView)
		want     string
	}{
		{name: "new pod starts every container", pod: testPod(always, "a", "b"),
			want: "start a/0/s0; start b/0/s0; Pending"},
		{name: "first init container first", pod: testPod(always, "init1", "init2", "a"),
			want: "start init1/0/s0; wait a:PodInitializing; Pending"},
		{name: "second init after the first succeeded", pod: testPod(always, "init1", "init2", "a"),
			attempts: []ctr{{name: "init1", state: StateExited}},
			want:     "start init2/0/s0; wait a:PodInitializing; Pending"},
		{name: "running init container blocks the rest", pod: testPod(always, "init1", "init2", "a"),
			attempts: []ctr{{name: "init1", state: StateRunning}},
			want:     "wait a:PodInitializing; Pending"},
		{name: "containers after all init containers", pod: testPod(always, "init1", "init2", "a"),
			attempts: []ctr{{name: "init1", state: StateExited}, {name: "init2", state: StateExited}},
			want:     "start a/0/s0; Pending"},
		{name: "failed init container restarts", pod: testPod(always, "init1", "a"),
			attempts: []ctr{{name: "init1", state: StateExited, code: 1, agoFin: time.Second}},
			want:     "start init1/1/s1; wait a:PodInitializing; Pending"},
		{name: "failed init container with Never fails the pod", pod: testPod(never, "init1", "a"),
			attempts: []ctr{{name: "init1", state: StateExited, code: 1}},
			want:     "Failed"},
		{name: "adopted running container is kept", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 3, state: StateRunning, streak: 3}},
			want:     "Running"},
		{name: "changed spec replaces a running container", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", state: StateRunning, hash: "old"}},
			want:     "kill a-0; Running"},
		{name: "failed liveness probe kills", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", state: StateRunning}},
			tweak:    func(v *podView) { v.probes["a-0"] = probeState{failed: true} },
			want:     "kill a-0; Running"},
		{name: "a container replaced for a new spec restarts without back-off", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 4, state: StateExited, code: 137, streak: 4, hash: "old"}},
			want:     "start a/5/s0; Running"},
		{name: "created but never started is started", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 2, state: StateCreated, streak: 2}},
			want:     "start-existing a-2; Running"},
		{name: "Always restarts a success at once the first time", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", state: StateExited, code: 0, agoFin: time.Second}},
			want:     "start a/1/s1; Running"},
		{name: "crash loop waits out the back-off", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 2, state: StateExited, code: 1, streak: 2, agoFin: 5 * time.Second}},
			want:     "wait a:CrashLoopBackOff; wake +15s; Running"},
		{name: "crash loop restarts after the back-off", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 2, state: StateExited, code: 1, streak: 2, agoFin: 21 * time.Second}},
			want:     "start a/3/s3; Running"},
		{name: "long run resets the back-off", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", attempt: 7, state: StateExited, code: 1, streak: 7, ranFor: 11 * time.Minute}},
			want:     "start a/8/s1; Running"},
		{name: "OnFailure does not restart a success", pod: testPod(onFailure, "a"),
			attempts: []ctr{{name: "a", state: StateExited, code: 0}},
			want:     "Succeeded"},
		{name: "OnFailure restarts a failure", pod: testPod(onFailure, "a"),
			attempts: []ctr{{name: "a", state: StateExited, code: 2}},
			want:     "start a/1/s1; Running"},
		{name: "OnFailure waits for the others", pod: testPod(onFailure, "a", "b"),
			attempts: []ctr{{name: "a", state: StateExited}, {name: "b", state: StateRunning}},
			want:     "Running"},
		{name: "Never keeps a failure", pod: testPod(never, "a"),
			attempts: []ctr{{name: "a", state: StateExited, code: 1}},
			want:     "Failed"},
		{name: "Never with all successes", pod: testPod(never, "a", "b"),
			attempts: []ctr{{name: "a", state: StateExited}, {name: "b", state: StateExited}},
			want:     "Succeeded"},
		{name: "terminal pod kills what still runs", pod: testPod(always, "a"),
			attempts: []ctr{{name: "a", state: StateRunning}},
			tweak:    func(v *podView) { v.apiTerminal = true },
			want:     "kill a-0; Running"},
		{name: "image pull failure backs off", pod: testPod(always, "a"),
			tweak: func(v *podView) {
				v.failures["a"] = &failure{reason: reasonErrImagePull, image: "img", count: 1, at: t0.Add(-time.Second)}
			},
			want: "wait a:ErrImagePull; wake +1s; Pending"},
		{name: "image pull back-off after the error was shown", pod: testPod(always, "a"),
			tweak: func(v *podView) {
				v.failures["a"] = &failure{reason: reasonErrImagePull, image: "img", count: 2, at: t0.Add(-5 * time.Second)}
			},
			want: "wait a:ImagePullBackOff; wake +15s; Pending"},
		{name: "image pull retried after the back-off", pod: testPod(always, "a"),
			tweak: func(v *podView) {
				v.failures["a"] = &failure{reason: reasonErrImagePull, image: "img", count: 1, at: t0.Add(-11 * time.Second)}
			},
			want: "start a/0/s0; Pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view(tt.pod, tt.attempts...)
			if tt.tweak != nil {
				tt.tweak(v)
			}
			if got := summary(computeActions(v, testPolicy)); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPodPhase(t *testing.T) {
	always, onFailure, never := corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever
	tests := []struct {
		name     string
		pod      *corev1.Pod
		attempts []ctr
		want     corev1.PodPhase
	}{
		{"nothing yet", testPod(always, "a"), nil, corev1.PodPending},
		{"init running", testPod(always, "init1", "a"), []ctr{{name: "init1", state: StateRunning}}, corev1.PodPending},
		{"one of two waiting", testPod(always, "a", "b"), []ctr{{name: "a", state: StateRunning}}, corev1.PodPending},
		{"all running", testPod(always, "a", "b"), []ctr{{name: "a", state: StateRunning}, {name: "b", state: StateRunning}}, corev1.PodRunning},
		{"Always, all exited", testPod(always, "a"), []ctr{{name: "a", state: StateExited}}, corev1.PodRunning},
		{"OnFailure, all succeeded", testPod(onFailure, "a"), []ctr{{name: "a", state: StateExited}}, corev1.PodSucceeded},
		{"OnFailure, one failed", testPod(onFailure, "a"), []ctr{{name: "a", state: StateExited, code: 1}}, corev1.PodRunning},
		{"Never, one failed", testPod(never, "a", "b"), []ctr{{name: "a", state: StateExited, code: 1}, {name: "b", state: StateExited}}, corev1.PodFailed},
		{"Never, one still running", testPod(never, "a", "b"), []ctr{{name: "a", state: StateExited, code: 1}, {name: "b", state: StateRunning}}, corev1.PodRunning},
		{"Never, init failed", testPod(never, "init1", "a"), []ctr{{name: "init1", state: StateExited, code: 1}}, corev1.PodFailed},
		{"unknown state counts as exited", testPod(never, "a"), []ctr{{name: "a", state: StateUnknown, code: 255}}, corev1.PodFailed},
		{"restarting attempt is not waiting", testPod(always, "a"), []ctr{{name: "a", attempt: 1, state: StateCreated}}, corev1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := view(tt.pod, tt.attempts...).phase(); got != tt.want {
				t.Fatalf("phase = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRestartDelaySequence(t *testing.T) {
	// Each row: the exited attempt's streak and run time -> delay, next streak.
	tests := []struct {
		streak     uint32
		ran        time.Duration
		wantDelay  time.Duration
		wantStreak uint32
	}{
		{0, time.Second, 0, 1},
		{1, time.Second, 10 * time.Second, 2},
		{2, time.Second, 20 * time.Second, 3},
		{3, time.Second, 40 * time.Second, 4},
		{5, time.Second, 160 * time.Second, 6},
		{6, time.Second, 5 * time.Minute, 7},
		{40, time.Second, 5 * time.Minute, 41},
		{9, 10 * time.Minute, 0, 1},
		{9, 9 * time.Minute, 5 * time.Minute, 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("streak %d ran %s", tt.streak, tt.ran), func(t *testing.T) {
			st := ContainerStatus{StartedAt: t0, FinishedAt: t0.Add(tt.ran),
				Labels: map[string]string{labelRestartStreak: fmt.Sprint(tt.streak)}}
			delay, streak := testPolicy.restartDelay(st)
			if delay != tt.wantDelay || streak != tt.wantStreak {
				t.Fatalf("got %s, streak %d; want %s, streak %d", delay, streak, tt.wantDelay, tt.wantStreak)
			}
		})
	}
}
