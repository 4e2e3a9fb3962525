package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/skiffhq/skiff/cluster"
	"github.com/skiffhq/skiff/cluster/dev"
)

// RequireRoot skips tests that need namespaces, bridges and containerd.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, iptables and containerd")
	}
}

// UpDevCluster starts a dev cluster with a per-run name and removes it when
// the test ends, whatever happened.
func UpDevCluster(t testing.TB, nodes, voters int) *dev.Cluster {
	t.Helper()
	RequireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "e" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := dev.Up(ctx, dev.Options{Name: name, Nodes: nodes, Voters: voters, StateDir: os.TempDir() + "/skiff-e2e",
		Binary: Binary(t), Kubeconfig: "-", Progress: testWriter{t}})
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				keep := filepath.Join(os.TempDir(), "skiff-e2e-logs", name)
				os.MkdirAll(keep, 0o755)
				for _, n := range c.Nodes {
					if data, err := os.ReadFile(n.LogPath); err == nil {
						os.WriteFile(filepath.Join(keep, n.Name+".log"), data, 0o644)
						t.Logf("---- log of %s (last 2 KiB) ----\n%s", n.Name, tail(data, 2048))
					}
				}
				t.Logf("full node logs kept in %s", keep)
			}
			if err := c.Down(); err != nil {
				t.Logf("dev down: %v", err)
			}
		})
	}
	if err := err; err != nil {
		t.Fatalf("dev up: %v", err)
	}
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// NodeClient returns an admin client whose requests enter through node.
func NodeClient(t testing.TB, c *dev.Cluster, node string) kubernetes.Interface {
	t.Helper()
	rc, err := c.RESTConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 5 * time.Second
	cl, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// RaftView asks node for the Raft configuration and states.
func RaftView(ctx context.Context, c *dev.Cluster, node string) (*cluster.RaftView, error) {
	rc, err := c.RESTConfig(node)
	if err != nil {
		return nil, err
	}
	rc.Timeout = 3 * time.Second
	cl, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	data, err := cl.Discovery().RESTClient().Get().AbsPath(cluster.PathRaftPeers).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	v := &cluster.RaftView{}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("raft view: %w", err)
	}
	return v, nil
}

// Leader returns the leader as seen through any of the given nodes.
func Leader(ctx context.Context, c *dev.Cluster, via ...string) (string, error) {
	var last error
	for _, n := range via {
		v, err := RaftView(ctx, c, n)
		if err != nil {
			last = err
			continue
		}
		if v.Leader != "" {
			return v.Leader, nil
		}
	}
	if last == nil {
		last = fmt.Errorf("no leader")
	}
	return "", last
}
