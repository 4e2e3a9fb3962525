package dev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffhq/skiff/cluster"
)

func kubeconfigPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	return clientcmd.RecommendedHomeFile
}

// startAgent runs `skiff agent` for n inside its namespace, detached from
// this process so it outlives the dev command.
func (c *Cluster) startAgent(n *Node) error {
	if alive(n.PID) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(n.LogPath), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"--net=/run/netns/" + n.Netns, "--", c.Binary, "agent", "--data-dir", n.DataDir}, c.AgentArgs...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dev: starting %s: %w", n.Name, err)
	}
	n.PID = cmd.Process.Pid
	go cmd.Wait() // reap it if it exits while we still run
	return c.save()
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// killNode SIGKILLs the node's daemon and its managed containerd: as close
// to pulling the plug as one machine allows.
func (c *Cluster) killNode(n *Node) {
	if alive(n.PID) {
		syscall.Kill(n.PID, syscall.SIGKILL)
		waitGone(n.PID)
	}
	KillContainerd(n.DataDir)
	n.PID = 0
}

// KillContainerd SIGKILLs the managed containerd of the node whose data
// dir is dataDir (found through its pid file), which outlives its daemon
// by design.
func KillContainerd(dataDir string) {
	for _, pid := range containerdPIDs(dataDir) {
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid)
	}
}

func waitGone(pid int) {
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
}

// containerdPIDs finds the node's managed containerd through its pid file.
func containerdPIDs(dataDir string) []int {
	var pids []int
	filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "containerd.pid" {
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
					pids = append(pids, pid)
				}
			}
		}
		return nil
	})
	return pids
}

// RESTConfig returns admin credentials talking to the given node (the first
// node if name is "").
func (c *Cluster) RESTConfig(name string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	n := c.Nodes[0]
	if name != "" {
		if n = c.node(name); n == nil {
			return nil, fmt.Errorf("dev: no node %q", name)
		}
	}
	rc.Host = "https://" + net.JoinHostPort(n.IP, strconv.Itoa(cluster.DefaultAPIPort))
	rc.QPS, rc.Burst = -1, 0
	rc.Timeout = 10 * time.Second
	return rc, nil
}

func (c *Cluster) node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (c *Cluster) nodes(names []string) ([]*Node, error) {
	var out []*Node
	for _, name := range names {
		n := c.node(name)
		if n == nil {
			return nil, fmt.Errorf("dev: no node %q in cluster %q", name, c.Name)
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *Cluster) waitAPI(ctx context.Context, n *Node, timeout time.Duration) error {
	rc, err := c.RESTConfig(n.Name)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("dev: %s's API not ready after %v (log: %s)", n.Name, timeout, n.LogPath)
	}
	return nil
}

// waitSettled waits until every node is a Ready Node and Raft has its
// target number of voters.
func (c *Cluster) waitSettled(ctx context.Context, timeout time.Duration) error {
	rc, err := c.RESTConfig("")
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ready, voters := 0, 0
		if nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			for _, n := range nodes.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
		}
		var view cluster.RaftView
		if data, err := client.Discovery().RESTClient().Get().AbsPath(cluster.PathRaftPeers).DoRaw(ctx); err == nil {
			if jsonUnmarshal(data, &view) == nil {
				for _, s := range view.Servers {
					if s.Suffrage == "voter" {
						voters++
					}
				}
			}
		}
		now := fmt.Sprintf("%d/%d nodes ready, %d/%d voters", ready, len(c.Nodes), voters, c.Voters)
		if now != last {
			c.logf("waiting: %s", now)
			last = now
		}
		return ready == len(c.Nodes) && voters == c.Voters, nil
	})
	if err != nil {
		return fmt.Errorf("dev: cluster did not settle in %v (%s)", timeout, last)
	}
	return nil
}

var errNotRoot = errors.New("dev: needs root (network namespaces, bridges, iptables)")

// CheckRoot fails unless the process runs as root.
func CheckRoot() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	return nil
}
