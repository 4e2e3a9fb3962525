package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/agent"
	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/api/apitest"
)

// helperEnv makes the test binary act as a node daemon (agentHelper) that
// the adoption test kills with SIGKILL.
const helperEnv = "SKIFF_AGENT_TEST_HELPER"

// helperArgs is what the test passes to the helper in helperEnv.
type helperArgs struct {
	DataDir, Namespace, NodeName, APIHost, Image string
}

// agentHelper runs a managed containerd and an agent until it is killed.
// It prints READY once both run.
func agentHelper() int {
	var a helperArgs
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "helper args:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rcfg := containerd.DefaultConfig()
	rcfg.DataDir, rcfg.Namespace = a.DataDir, a.Namespace
	rt, err := containerd.New(rcfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	go func() { _ = rt.Run(ctx) }()
	if err := helperLoadImage(ctx, rt, a.Image); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	cfg := agent.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.Runtime, cfg.Logger = a.NodeName, a.DataDir+"/agent", rt, log
	cfg.RESTConfig = &rest.Config{Host: a.APIHost, QPS: -1}
	cfg.ListenAddr = "127.0.0.1:0"
	ag, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() { _ = ag.Run(ctx) }()
	fmt.Println("READY")
	select {} // until SIGKILL
}

func helperLoadImage(ctx context.Context, rt *containerd.Runtime, image string) error {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := rt.WaitReady(wctx); err != nil {
		return err
	}
	f, err := os.Open(image)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = rt.ImportImage(wctx, f)
	return err
}

// startHelper runs the helper for node n and waits for READY.
func startHelper(t *testing.T, n *node) *exec.Cmd {
	t.Helper()
	args, _ := json.Marshal(helperArgs{DataDir: n.rcfg.DataDir, Namespace: n.rcfg.Namespace, NodeName: n.name,
		APIHost: n.api.Config.Host, Image: imagePath(t)})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(args))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("helper stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "READY" {
			t.Fatalf("helper said %q; stderr:\n%s", s, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("helper not ready; stderr:\n%s", stderr.String())
	}
	return cmd
}

// TestAgentKilledAndRestarted: kill -9 the agent while pods run, change
// things behind its back, start a new agent: it adopts what runs (same
// container IDs, restart counts kept), restarts what died, tears down
// pods deleted meanwhile and removes the containers of pods that are gone.
func TestAgentKilledAndRestarted(t *testing.T) {
	requireContainerd(t)
	api := apitest.New(t)
	n := newNode(t, api, nil)
	c := api.Client
	ctx := context.Background()
	helper := startHelper(t, n)

	names := []string{"keep", "dies", "deleted", "forced"}
	ids := map[string]string{}
	pods := map[string]*corev1.Pod{}
	for _, name := range names {
		pods[name] = createPod(t, c, n.name, busybox(name, corev1.RestartPolicyAlways, "sleep", "1000"))
	}
	for _, name := range names {
		p := waitPod(t, c, name, 60*time.Second, "running", func(p *corev1.Pod) bool { return status(p, "main").State.Running != nil })
		ids[name] = strings.TrimPrefix(status(p, "main").ContainerID, "containerd://")
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	// Behind the agent's back: a graceful delete (waits for the node), a
	// forced one (gone at once) and a container that dies.
	if err := c.CoreV1().Pods("default").Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Pods("default").Delete(ctx, "forced", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	rt := n.startRuntime() // adopts the helper's containerd
	st, err := rt.ContainerStatus(ctx, ids["dies"])
	if err != nil || st.PID == 0 {
		t.Fatalf("status of the container to kill: %+v %v", st, err)
	}
	if err := syscall.Kill(int(st.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "container to die", func() (bool, string) {
		st, err := rt.ContainerStatus(ctx, ids["dies"])
		return err == nil && st.State == agent.StateExited, fmt.Sprintf("%+v %v", st, err)
	})

	n.startAgent()
	waitPod(t, c, "dies", 30*time.Second, "restarted", func(p *corev1.Pod) bool {
		cs := status(p, "main")
		return cs.State.Running != nil && cs.RestartCount == 1 && cs.LastTerminationState.Terminated != nil
	})
	waitPod(t, c, "deleted", 30*time.Second, "gone", func(p *corev1.Pod) bool { return p == nil })
	waitFor(t, 30*time.Second, "containers of deleted pods removed", func() (bool, string) {
		list, err := rt.ListContainers(ctx)
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, c := range list {
			if c.PodName == "deleted" || c.PodName == "forced" {
				left = append(left, c.PodName+"/"+c.ID)
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
	p := waitPod(t, c, "keep", 30*time.Second, "ready", isReady)
	if cs := status(p, "main"); cs.ContainerID != "containerd://"+ids["keep"] || cs.RestartCount != 0 {
		t.Fatalf("keep: container %s restarts %d, want %s unchanged", cs.ContainerID, cs.RestartCount, ids["keep"])
	}
	list, err := rt.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.PodUID == string(pods["keep"].UID) && c.ID != ids["keep"] {
			t.Fatalf("duplicate container %s for the adopted pod", c.ID)
		}
	}
}
