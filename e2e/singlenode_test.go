package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: skiff.local/busybox:latest
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080"]
`

// TestSingleNodeSurvivesKill is issue 2's process test: a Deployment's
// ReplicaSet and pods survive kill -9 of the only daemon, then scale and
// cascade-delete still work.
func TestSingleNodeSurvivesKill(t *testing.T) {
	d := NewDaemon(t, "solo")
	d.Start()
	if out := d.MustCLI(webDeployment, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web created") {
		t.Fatalf("apply said %q", out)
	}
	if out := d.MustCLI(webDeployment, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web unchanged") {
		t.Fatalf("second apply said %q", out)
	}
	waitPods(t, d, 3)
	before := podUIDs(t, d)

	d.Kill()
	d.Start()
	after := podUIDs(t, d)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("pods changed across kill -9: before %v after %v", before, after)
	}
	rs, err := d.Client().AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(rs.Items) != 1 {
		t.Fatalf("want 1 ReplicaSet after restart, got %v (err %v)", len(rs.Items), err)
	}

	d.MustCLI("", "scale", "deployment/web", "--replicas", "5")
	waitPods(t, d, 5)

	d.MustCLI("", "delete", "deployment", "web")
	Eventually(t, 30*time.Second, "all pods and replicasets gone", func() (bool, error) {
		pods, err := d.Client().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		rs, err := d.Client().AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0 && len(rs.Items) == 0, nil
	})
}

// waitPods waits until exactly n pods of the web Deployment exist, all bound
// to the daemon's node.
func waitPods(t *testing.T, d *Daemon, n int) {
	t.Helper()
	Eventually(t, 30*time.Second, fmt.Sprintf("%d bound pods", n), func() (bool, error) {
		pods, err := d.Client().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == d.Name && p.DeletionTimestamp == nil {
				bound++
			}
		}
		return bound == n && len(pods.Items) == n, nil
	})
}

func podUIDs(t *testing.T, d *Daemon) []string {
	t.Helper()
	pods, err := d.Client().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	var uids []string
	for _, p := range pods.Items {
		uids = append(uids, string(p.UID)+"@"+p.Spec.NodeName)
	}
	return uids
}
