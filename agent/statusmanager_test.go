package agent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestStatusWritesAreCoalescedAndPaced(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	h := newHarness(t, clk)
	client, err := kubernetes.NewForConfig(h.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	pod := h.createPod(simplePod("p", corev1.RestartPolicyAlways, "a"))
	m := newStatusManager(client.CoreV1(), clk, slog.New(slog.DiscardHandler), 500*time.Millisecond, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	defer func() { cancel(); <-done }()

	status := func(msg string, phase corev1.PodPhase) corev1.PodStatus {
		return corev1.PodStatus{Phase: phase, Message: msg, Conditions: pod.Status.Conditions, QOSClass: pod.Status.QOSClass}
	}
	writes := func(want int64) {
		t.Helper()
		waitFor(t, 5*time.Second, fmt.Sprintf("%d status writes", want), func() (bool, string) {
			n := h.statusWrites.Load()
			return n == want, fmt.Sprintf("%d writes", n)
		})
	}
	apiMessage := func() string {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Status.Message
	}

	m.set(pod, status("first", corev1.PodRunning))
	writes(1) // the first change goes at once ...
	for i := range 50 {
		m.set(pod, status(fmt.Sprint("update ", i), corev1.PodRunning))
	}
	time.Sleep(50 * time.Millisecond)
	writes(1) // ... the next ones wait for the interval
	clk.Step(500 * time.Millisecond)
	writes(2)
	if got := apiMessage(); got != "update 49" {
		t.Fatalf("API has %q, want the latest status", got)
	}
	m.set(pod, status("update 49", corev1.PodRunning))
	m.set(pod, status("done", corev1.PodSucceeded))
	writes(3) // a terminal phase is not paced
	m.set(pod, status("done", corev1.PodSucceeded))
	clk.Step(time.Second)
	time.Sleep(50 * time.Millisecond)
	writes(3) // nothing changed, nothing written
	if got := apiMessage(); got != "done" {
		t.Fatalf("API has %q", got)
	}
}

func TestStatusWriteConflictIsRetried(t *testing.T) {
	h := newHarness(t, nil)
	client, err := kubernetes.NewForConfig(h.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	pod := h.createPod(simplePod("p", corev1.RestartPolicyAlways, "a"))
	stale := pod.DeepCopy()
	pod.Labels = map[string]string{"moved": "on"} // a write the manager has not seen
	if _, err := client.CoreV1().Pods("default").Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := newStatusManager(client.CoreV1(), h.clk, slog.New(slog.DiscardHandler), 0, 1)
	stored, err := m.update(context.Background(), stale, corev1.PodStatus{Phase: corev1.PodRunning, Message: "x"})
	if err != nil {
		t.Fatalf("update with a stale object: %v", err)
	}
	if stored.Status.Message != "x" || stored.Labels["moved"] != "on" {
		t.Fatalf("stored %+v", stored)
	}
}
