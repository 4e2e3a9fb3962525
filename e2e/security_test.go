package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/cluster"
	"github.com/skiffhq/skiff/cluster/dev"
)

// TestJoinSecurityAndRoles covers issue 4's identity rules with the real
// binary: bad tokens and a wrong CA are refused with nothing persisted, a
// second join changes nothing, a worker joins without a Raft seat and still
// runs pods and answers the API, a node may only change its own things, and
// a voter can leave gracefully.
func TestJoinSecurityAndRoles(t *testing.T) {
	c := UpDevCluster(t, 3, 3)
	ctx := context.Background()
	admin := NodeClient(t, c, c.Nodes[0].Name)

	t.Run("secrets sealed at rest", func(t *testing.T) { secretsSealed(t, c, admin) })
	t.Run("refused joins persist nothing", func(t *testing.T) { refusedJoins(t, c) })
	t.Run("join again changes nothing", func(t *testing.T) {
		n := c.Nodes[1]
		before, _ := os.ReadFile(filepath.Join(n.DataDir, "cluster.json"))
		out, err := runSkiff(t, "join", c.Nodes[0].IP+":6443", "--token", "skiff1.aaaaaa.bbbbbbbbbbbbbbbb."+strings.Repeat("0", 64), "--data-dir", n.DataDir)
		after, _ := os.ReadFile(filepath.Join(n.DataDir, "cluster.json"))
		if err != nil || !strings.Contains(out, "already belongs to cluster") || string(before) != string(after) {
			t.Fatalf("second join: err=%v out=%q (settings changed: %v)", err, out, string(before) != string(after))
		}
	})

	worker, err := c.AddNode(ctx, cluster.RoleWorker)
	if err != nil {
		t.Fatalf("adding a worker: %v", err)
	}
	t.Run("worker has no seat but serves", func(t *testing.T) { workerServes(t, c, worker, admin) })
	t.Run("node authorizer", func(t *testing.T) { nodeAuthorizer(t, c) })
	t.Run("graceful leave", func(t *testing.T) { gracefulLeave(t, c, c.Nodes[2]) })
}

func runSkiff(t *testing.T, args ...string) (string, error) {
	t.Helper()
	d := &Daemon{t: t, Bin: Binary(t), Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	return d.CLI("", args...)
}

func refusedJoins(t *testing.T, c *dev.Cluster) {
	ctx := context.Background()
	server := net.JoinHostPort(c.Nodes[0].IP, "6443")
	expired, err := c.CreateToken(ctx, cluster.RoleServer, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := c.CreateToken(ctx, cluster.RoleServer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := NodeClient(t, c, c.Nodes[0].Name).CoreV1().Secrets("kube-system").Delete(ctx, cluster.TokenSecretName(revoked.ID), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	good, err := c.CreateToken(ctx, cluster.RoleServer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wrongPin := good
	wrongPin.Pin = "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"expired", expired.String(), "expired"},
		{"revoked", revoked.String(), "unknown or was revoked"},
		{"wrong secret", strings.Replace(good.String(), good.Secret, strings.Repeat("x", 16), 1), "unknown or was revoked"},
		{"wrong CA pin", wrongPin.String(), "CA does not match"},
		{"malformed", "not-a-token", "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, err := runSkiff(t, "join", server, "--token", tc.token, "--data-dir", dir, "--node-name", "intruder",
				"--advertise-address", "10.250.0.99", "--no-start")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("join with %s token: err=%v, output %q, want it to mention %q", tc.name, err, out, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused join left %d files in the data dir", len(entries))
			}
		})
	}
}

func workerServes(t *testing.T, c *dev.Cluster, w *dev.Node, admin kubernetes.Interface) {
	ctx := context.Background()
	Eventually(t, 60*time.Second, "worker Ready", func() (bool, error) {
		n, err := admin.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		return err == nil && nodeReady(n), err
	})
	v, err := RaftView(ctx, c, c.Nodes[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Servers {
		if s.ID == w.Name {
			t.Fatalf("worker %s holds a Raft seat (%s)", w.Name, s.Suffrage)
		}
	}
	// The worker's API port passes the TLS stream through to a server.
	if _, err := NodeClient(t, c, w.Name).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("API through the worker: %v", err)
	}
	// And its agent runs pods, talking to the API through that port. The
	// pod's environment needs a Secret, which the node authorizer lets the
	// worker read because its pod refers to it: the container gets past
	// its configuration to the (failing) image pull.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "worker-env"}, StringData: map[string]string{"token": "t0ken"}}
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "on-worker"}, Spec: corev1.PodSpec{NodeName: w.Name,
		Containers: []corev1.Container{{Name: "c", Image: "127.0.0.1:1/none:v1", ImagePullPolicy: corev1.PullIfNotPresent,
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "worker-env"}, Key: "token"}}}}}}}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, "the worker's agent to resolve the env and try the pull", func() (bool, error) {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "on-worker", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, err
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		if w.Reason == "CreateContainerConfigError" {
			return false, fmt.Errorf("the worker could not build the environment: %s", w.Message)
		}
		return w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff", nil
	})
	// The worker may read that Secret, and no other.
	wc := nodeClient(t, w)
	if _, err := wc.CoreV1().Secrets("default").Get(ctx, "worker-env", metav1.GetOptions{}); err != nil {
		t.Fatalf("a worker reading its pod's Secret: %v", err)
	}
	if _, err := wc.CoreV1().Secrets("default").Get(ctx, "sealed", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("a worker reading another Secret: want 403, got %v", err)
	}
	if _, err := wc.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("a worker listing Secrets: want 403, got %v", err)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeClient authenticates as a node, with its own certificate.
func nodeClient(t *testing.T, n *dev.Node) kubernetes.Interface {
	t.Helper()
	pki := filepath.Join(n.DataDir, "pki")
	rc := &rest.Config{Host: "https://" + net.JoinHostPort(n.IP, "6443"), Timeout: 5 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(pki, "ca.crt"), CertFile: filepath.Join(pki, "node.crt"),
			KeyFile: filepath.Join(pki, "node.key"), ServerName: cluster.APIServerName}}
	cl, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func nodeAuthorizer(t *testing.T, c *dev.Cluster) {
	ctx := context.Background()
	self, other := c.Nodes[1], c.Nodes[0]
	cl := nodeClient(t, self)
	patch := []byte(`{"metadata":{"labels":{"skiff-test":"x"}}}`)
	if _, err := cl.CoreV1().Nodes().Patch(ctx, self.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("a node patching its own Node: %v", err)
	}
	_, err := cl.CoreV1().Nodes().Patch(ctx, other.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a node patching another node: want 403, got %v", err)
	}
	_, err = cl.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-node"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a node creating a ConfigMap: want 403, got %v", err)
	}
	if _, err := cl.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("a node listing pods: %v", err)
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) && !strings.Contains(se.Error(), "system:node:") {
		t.Fatalf("403 message does not name the node user: %v", se)
	}
}

func gracefulLeave(t *testing.T, c *dev.Cluster, n *dev.Node) {
	out, err := runSkiff(t, "leave", "--data-dir", n.DataDir)
	if err != nil {
		t.Fatalf("skiff leave: %v (%s)", err, out)
	}
	Eventually(t, 60*time.Second, n.Name+" out of Raft and gossip", func() (bool, error) {
		v, err := RaftView(context.Background(), c, c.Nodes[0].Name)
		if err != nil {
			return false, err
		}
		for _, s := range v.Servers {
			if s.ID == n.Name {
				return false, nil
			}
		}
		return true, nil
	})
}

// secretsSealed checks that no node's Raft log or snapshots hold a Secret's
// value in clear, while the API returns it.
func secretsSealed(t *testing.T, c *dev.Cluster, admin kubernetes.Interface) {
	ctx := context.Background()
	const plain = "s3cret-value-that-must-not-hit-the-disk"
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sealed"}, StringData: map[string]string{"password": plain}}
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := admin.CoreV1().Secrets("default").Get(ctx, "sealed", metav1.GetOptions{})
	if err != nil || string(got.Data["password"]) != plain {
		t.Fatalf("reading the secret back: %v %q", err, got.Data)
	}
	for _, n := range c.Nodes {
		Eventually(t, 10*time.Second, n.Name+" replicated the secret", func() (bool, error) {
			v, err := RaftView(ctx, c, n.Name)
			return err == nil && v.AppliedHere >= parseRV(got.ResourceVersion), err
		})
		filepath.WalkDir(filepath.Join(n.DataDir, "raft"), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if data, _ := os.ReadFile(path); strings.Contains(string(data), plain) {
				t.Errorf("%s holds the secret in clear", path)
			}
			return nil
		})
	}
}

func parseRV(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}
