package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/skiffhq/skiff/agent"
	"github.com/skiffhq/skiff/api/apitest"
)

// TestRealPods runs pods on real containerd through the API: one node,
// one agent, the cases in parallel.
func TestRealPods(t *testing.T) {
	requireContainerd(t)
	api := apitest.New(t)
	n := newNode(t, api, func(c *agent.Config) {
		c.RestartBackoffBase, c.RestartBackoffMax = time.Second, 2*time.Second
		c.PullBackoffBase, c.PullBackoffMax = 3*time.Second, 3*time.Second
	})
	n.startRuntime()
	n.loadImage()
	n.startAgent()
	c := api.Client

	cases := []struct {
		name string
		run  func(t *testing.T, n *node, c kubernetes.Interface)
	}{
		{"httpd pods become ready, serve exec and logs", testHTTPD},
		{"crash loop backs off", testCrashLoop},
		{"restart policies Never and OnFailure", testRestartPolicies},
		{"memory limit kills with OOMKilled", testOOM},
		{"missing image", testMissingImage},
		{"init containers run first, in order", testInitContainers},
		{"failed liveness probe restarts", testLiveness},
		{"deletion honours the grace period and cleans up", testDeletion},
		{"node is registered", testNode},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, n, c)
			})
		}
	})
}

func testHTTPD(t *testing.T, n *node, c kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := map[string]bool{}
	for i := range 3 {
		pod := busybox(fmt.Sprintf("web-%d", i), corev1.RestartPolicyAlways,
			"sh", "-c", "echo serving; exec httpd -f -v -p 8080 -h /var/www")
		main := &pod.Spec.Containers[0]
		main.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
		main.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1,
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}}
		main.LivenessProbe = &corev1.Probe{PeriodSeconds: 1,
			ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
		createPod(t, c, n.name, pod)
	}
	for i := range 3 {
		p := waitPod(t, c, fmt.Sprintf("web-%d", i), 30*time.Second, "ready", isReady)
		ids[status(p, "main").ContainerID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("container IDs %v, want 3 distinct", ids)
	}
	for i, proto := range []agent.StreamProtocol{agent.WebSocket, agent.SPDY} {
		out, _, err := agent.ExecInPod(ctx, n.api.Config, proto, "default", fmt.Sprintf("web-%d", i), "", "",
			"timeout", "5", "wget", "-O-", "127.0.0.1:8080")
		if err != nil || !strings.Contains(out, "skiff test image") {
			t.Fatalf("exec wget (protocol %d): %q: %v", proto, out, err)
		}
	}
	out, errOut, err := agent.ExecInPod(ctx, n.api.Config, agent.WebSocket, "default", "web-2", "main", "",
		"sh", "-c", "echo out; echo err >&2; exit 3")
	var exitErr utilexec.CodeExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 3 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("exec exit 3: stdout %q stderr %q err %v", out, errOut, err)
	}
	logs, err := agent.PodLogs(ctx, c, "default", "web-0", &corev1.PodLogOptions{})
	if err != nil || !strings.Contains(logs, "serving") {
		t.Fatalf("logs: %q: %v", logs, err)
	}
	// Follow: new output (httpd -v logs each response) arrives on the
	// open stream.
	stream, err := c.CoreV1().Pods("default").GetLogs("web-1", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow logs: %v", err)
	}
	defer stream.Close()
	if _, _, err := agent.ExecInPod(ctx, n.api.Config, agent.SPDY, "default", "web-1", "", "",
		"timeout", "5", "wget", "-O-", "127.0.0.1:8080/followed"); err == nil {
		t.Fatal("wget of a missing page succeeded")
	}
	sc := bufio.NewScanner(stream)
	for sc.Scan() && !strings.Contains(sc.Text(), "response:404") {
	}
	if sc.Err() != nil {
		t.Fatalf("follow: %v", sc.Err())
	}
}

func testNode(t *testing.T, n *node, c kubernetes.Interface) {
	var node *corev1.Node
	waitFor(t, 30*time.Second, "node registered", func() (bool, string) {
		var err error
		node, err = c.CoreV1().Nodes().Get(context.Background(), n.name, metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	info := node.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://1.") || strings.Contains(info.ContainerRuntimeVersion, "~") ||
		info.KubeletVersion != agent.KubeletVersion || node.Status.Capacity.Memory().IsZero() || node.Status.Capacity.Cpu().IsZero() {
		t.Fatalf("node status: %+v", node.Status)
	}
}

func testCrashLoop(t *testing.T, n *node, c kubernetes.Interface) {
	createPod(t, c, n.name, busybox("crash", corev1.RestartPolicyAlways, "sh", "-c", "echo crashing; exit 1"))
	p := waitPod(t, c, "crash", 30*time.Second, "CrashLoopBackOff after restarts", func(p *corev1.Pod) bool {
		cs := status(p, "main")
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	last := status(p, "main").LastTerminationState.Terminated
	if last == nil || last.ExitCode != 1 || last.Reason != agent.ReasonError || p.Status.Phase != corev1.PodRunning {
		t.Fatalf("crash loop status: %s, lastState %+v", describe(p), last)
	}
	before := status(p, "main").RestartCount
	waitPod(t, c, "crash", 30*time.Second, "restart count growing", func(p *corev1.Pod) bool {
		return status(p, "main").RestartCount > before
	})
	tail := int64(1)
	logs, err := agent.PodLogs(context.Background(), c, "default", "crash", &corev1.PodLogOptions{Previous: true, TailLines: &tail})
	if err != nil || logs != "crashing\n" {
		t.Fatalf("previous logs: %q: %v", logs, err)
	}
}

func testRestartPolicies(t *testing.T, n *node, c kubernetes.Interface) {
	tests := []struct {
		pod        *corev1.Pod
		wantPhase  corev1.PodPhase
		wantReason string
		wantCode   int32
	}{
		{busybox("never-fails", corev1.RestartPolicyNever, "sh", "-c", "exit 1"), corev1.PodFailed, agent.ReasonError, 1},
		{busybox("onfailure-succeeds", corev1.RestartPolicyOnFailure, "sh", "-c", "exit 0"), corev1.PodSucceeded, agent.ReasonCompleted, 0},
	}
	for _, tt := range tests {
		createPod(t, c, n.name, tt.pod)
	}
	for _, tt := range tests {
		p := waitPod(t, c, tt.pod.Name, 30*time.Second, string(tt.wantPhase), func(p *corev1.Pod) bool {
			return p != nil && p.Status.Phase == tt.wantPhase
		})
		cs := status(p, "main")
		if term := cs.State.Terminated; term == nil || term.Reason != tt.wantReason || term.ExitCode != tt.wantCode || cs.RestartCount != 0 {
			t.Fatalf("%s: %s", tt.pod.Name, describe(p))
		}
	}
	createPod(t, c, n.name, busybox("onfailure-fails", corev1.RestartPolicyOnFailure, "sh", "-c", "exit 2"))
	waitPod(t, c, "onfailure-fails", 30*time.Second, "restarted", func(p *corev1.Pod) bool {
		return status(p, "main").RestartCount >= 1 && p.Status.Phase == corev1.PodRunning
	})
}

func testOOM(t *testing.T, n *node, c kubernetes.Interface) {
	pod := busybox("oom", corev1.RestartPolicyNever, "sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done")
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	createPod(t, c, n.name, pod)
	p := waitPod(t, c, "oom", 60*time.Second, "OOMKilled", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodFailed
	})
	if term := status(p, "main").State.Terminated; term == nil || term.Reason != agent.ReasonOOMKilled || term.ExitCode != 137 {
		t.Fatalf("oom: %s", describe(p))
	}
}

func testMissingImage(t *testing.T, n *node, c kubernetes.Interface) {
	// A registry on loopback that has nothing: the pull fails without
	// any name resolution or traffic off the host.
	reg := httptest.NewServer(http.NotFoundHandler())
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/skiff-test/missing:1"
	pod := busybox("missing", corev1.RestartPolicyAlways, "sleep", "1000")
	pod.Spec.Containers[0].Image = ref
	createPod(t, c, n.name, pod)
	createPod(t, c, n.name, busybox("bystander", corev1.RestartPolicyAlways, "sleep", "1000"))
	p := waitPod(t, c, "missing", 30*time.Second, "ErrImagePull", func(p *corev1.Pod) bool {
		w := status(p, "main").State.Waiting
		return w != nil && w.Reason == "ErrImagePull"
	})
	if msg := status(p, "main").State.Waiting.Message; !strings.Contains(msg, "not found") {
		t.Fatalf("ErrImagePull message %q does not say why", msg)
	}
	waitPod(t, c, "missing", 30*time.Second, "ImagePullBackOff", func(p *corev1.Pod) bool {
		w := status(p, "main").State.Waiting
		return w != nil && w.Reason == "ImagePullBackOff" && strings.Contains(w.Message, ref)
	})
	waitPod(t, c, "bystander", 30*time.Second, "running", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning
	})
}

func testInitContainers(t *testing.T, n *node, c kubernetes.Interface) {
	pod := busybox("init", corev1.RestartPolicyAlways, "sleep", "1000")
	for _, name := range []string{"first", "second"} {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{
			Name: name, Image: testImageRef, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sh", "-c", "echo init $STEP; sleep 1"},
			Env:     []corev1.EnvVar{{Name: "STEP", Value: name}},
		})
	}
	createPod(t, c, n.name, pod)
	p := waitPod(t, c, "init", 30*time.Second, "running", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning && status(p, "main").State.Running != nil
	})
	first, second := status(p, "first").State.Terminated, status(p, "second").State.Terminated
	if first == nil || second == nil || first.Reason != agent.ReasonCompleted || second.Reason != agent.ReasonCompleted {
		t.Fatalf("init containers: %s", describe(p))
	}
	if second.StartedAt.Before(&first.FinishedAt) || status(p, "main").State.Running.StartedAt.Before(&second.FinishedAt) {
		t.Fatalf("out of order: first %v-%v, second %v-%v, main %v", first.StartedAt, first.FinishedAt,
			second.StartedAt, second.FinishedAt, status(p, "main").State.Running.StartedAt)
	}
	logs, err := agent.PodLogs(context.Background(), c, "default", "init", &corev1.PodLogOptions{Container: "second"})
	if err != nil || logs != "init second\n" {
		t.Fatalf("init logs %q: %v", logs, err)
	}
}

func testLiveness(t *testing.T, n *node, c kubernetes.Interface) {
	pod := busybox("live", corev1.RestartPolicyAlways, "sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 1000")
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/alive"}}}}
	createPod(t, c, n.name, pod)
	p := waitPod(t, c, "live", 30*time.Second, "restarted by its liveness probe", func(p *corev1.Pod) bool {
		return status(p, "main").RestartCount >= 1 && status(p, "main").LastTerminationState.Terminated != nil
	})
	if last := status(p, "main").LastTerminationState.Terminated; last.ExitCode != 137 {
		t.Fatalf("killed container: %+v", last)
	}
}

func testDeletion(t *testing.T, n *node, c kubernetes.Interface) {
	polite := busybox("polite", corev1.RestartPolicyAlways, "sh", "-c", `trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done`)
	polite.Spec.TerminationGracePeriodSeconds = new(int64(30))
	stubborn := busybox("stubborn", corev1.RestartPolicyAlways, "sleep", "1000") // PID 1 ignores SIGTERM
	stubborn.Spec.TerminationGracePeriodSeconds = new(int64(2))
	for _, pod := range []*corev1.Pod{polite, stubborn} {
		created := createPod(t, c, n.name, pod)
		p := waitPod(t, c, pod.Name, 30*time.Second, "running", func(p *corev1.Pod) bool {
			return status(p, "main").State.Running != nil
		})
		id := strings.TrimPrefix(status(p, "main").ContainerID, "containerd://")
		start := time.Now()
		if err := c.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, c, pod.Name, 30*time.Second, "gone", func(p *corev1.Pod) bool { return p == nil })
		took := time.Since(start)
		switch {
		case pod.Name == "polite" && took > 10*time.Second:
			t.Fatalf("a container that exits on SIGTERM took %s to go", took)
		case pod.Name == "stubborn" && (took < 2*time.Second || took > 15*time.Second):
			t.Fatalf("a container that ignores SIGTERM went after %s, want the 2s grace period", took)
		}
		assertPodRemoved(t, n, created, id)
	}
}

// assertPodRemoved checks that nothing of a deleted pod is left on the
// node: containers, snapshot, sandbox, logs.
func assertPodRemoved(t *testing.T, n *node, pod *corev1.Pod, containerID string) {
	t.Helper()
	ctx := context.Background()
	cs, err := n.rt.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.PodUID == string(pod.UID) {
			t.Fatalf("container %s of deleted pod %s left", c.ID, pod.Name)
		}
	}
	sbs, err := n.rt.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range sbs {
		if sb.PodUID == string(pod.UID) {
			t.Fatalf("sandbox of deleted pod %s left", pod.Name)
		}
	}
	logDir := filepath.Join(n.rcfg.DataDir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Fatalf("log dir %s of deleted pod left (%v)", logDir, err)
	}
	out, err := exec.Command("ctr", "--address", filepath.Join(n.rcfg.DataDir, "containerd", "c.sock"),
		"-n", n.rcfg.Namespace, "snapshots", "ls").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr snapshots ls: %v\n%s", err, out)
	}
	if strings.Contains(string(out), containerID) {
		t.Fatalf("snapshot of container %s left:\n%s", containerID, out)
	}
}
