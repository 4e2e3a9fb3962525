package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent"
	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/cluster"
	"github.com/skiffhq/skiff/cluster/dev"
)

// TestNodeLossReplacesPods is issue 4's node failure path: a killed node
// turns NotReady with a reason within seconds and its pods are replaced on
// the others; when it returns it is Ready again and its stale pods are gone.
func TestNodeLossReplacesPods(t *testing.T) {
	c := UpDevCluster(t, 4, 3)
	ctx := context.Background()
	rc, err := c.RESTConfig("")
	if err != nil {
		t.Fatal(err)
	}
	images, err := agent.NewImageClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := images.LoadEverywhere(ctx, func() (io.ReadCloser, error) { return os.Open(TestImage(t)) }); err != nil {
		t.Fatal(err)
	}
	names := nodeNames(c)
	leader, err := Leader(ctx, c, names...)
	if err != nil {
		t.Fatal(err)
	}
	client := NodeClient(t, c, leader)
	if _, err := client.AppsV1().Deployments("default").Create(ctx, sleeperDeployment(6), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, client, 6, "")
	victim := busiestNode(t, client, leader)
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	Eventually(t, 30*time.Second, victim+" NotReady (NodeUnreachable)", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := readyCond(n)
		return c != nil && c.Status == corev1.ConditionUnknown && c.Reason == cluster.ReasonNodeUnreachable, nil
	})
	waitReplicas(t, client, 6, victim)
	t.Logf("%s lost; 6 pods ready elsewhere after %v", victim, time.Since(start))

	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, victim+" Ready again", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
		return err == nil && nodeReady(n), err
	})
	Eventually(t, 60*time.Second, "no pods left on "+victim, func() (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + victim})
		return err == nil && len(pods.Items) == 0, err
	})
	Eventually(t, 60*time.Second, "the stale containers on "+victim+" stopped", func() (bool, error) {
		return runningSleepers(t, c, victim) == 0, nil
	})
}

func readyCond(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// runningSleepers counts the sleeper container processes still alive in
// the node's containerd cgroups (/sys/fs/cgroup/memory/<namespace>/<id>).
func runningSleepers(t *testing.T, c *dev.Cluster, node string) int {
	t.Helper()
	n := 0
	procs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/memory", containerd.NamespaceForNode(node), "*", "cgroup.procs"))
	for _, f := range procs {
		data, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(data)) {
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			if string(cmd) == "sleep\x003600\x00" {
				n++
			}
		}
	}
	return n
}
