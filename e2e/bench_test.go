package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffhq/skiff/agent"
)

// BenchmarkFailover kills the leader of a 3-voter dev cluster with SIGKILL
// b.N times and measures the time until the first write through a surviving
// node succeeds. Run it with scripts/bench-failover.sh.
func BenchmarkFailover(b *testing.B) {
	c := UpDevCluster(b, 3, 3)
	names := nodeNames(c)
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		leader, err := Leader(context.Background(), c, names...)
		if err != nil {
			b.Fatal(err)
		}
		survivor := without(names, leader)[0]
		client := NodeClient(b, c, survivor)
		if err := c.Kill(leader); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for n := 0; ; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("f%d-%d", i, n)}}, metav1.CreateOptions{})
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no write succeeded 30s after killing %s: %v", leader, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		if err := c.Restart(leader); err != nil {
			b.Fatal(err)
		}
		Eventually(b, 60*time.Second, "all three voters back", func() (bool, error) {
			v, err := RaftView(context.Background(), c, survivor)
			if err != nil {
				return false, err
			}
			up := 0
			for _, s := range v.Servers {
				if s.State == "Follower" || s.State == "Leader" {
					up++
				}
			}
			return up == 3, nil
		})
		b.StartTimer()
	}
	reportDurations(b, times)
}

func reportDurations(b *testing.B, times []time.Duration) {
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) == 0 {
		return
	}
	b.ReportMetric(times[len(times)/2].Seconds(), "median-s")
	b.ReportMetric(times[len(times)-1].Seconds(), "max-s")
	b.ReportMetric(times[0].Seconds(), "min-s")
	b.Logf("trials: %v", times)
}

// BenchmarkAPICreate3Voters measures ConfigMap creates per second with 16
// concurrent clients writing through the leader of a 3-voter dev cluster.
func BenchmarkAPICreate3Voters(b *testing.B) {
	c := UpDevCluster(b, 3, 3)
	names := nodeNames(c)
	leader, err := Leader(context.Background(), c, names...)
	if err != nil {
		b.Fatal(err)
	}
	const clients = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < clients; i++ {
		rc, err := c.RESTConfig(leader)
		if err != nil {
			b.Fatal(err)
		}
		rc.ContentType = "application/vnd.kubernetes.protobuf"
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b-%d", n)}, Data: map[string]string{"k": "v"}}
				if _, err := client.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

// BenchmarkNodeLoss kills (SIGKILL) a non-leader node that runs pods of a
// Deployment and measures the time until all replicas are Running and Ready
// on the surviving nodes.
func BenchmarkNodeLoss(b *testing.B) {
	c := UpDevCluster(b, 4, 3)
	names := nodeNames(c)
	rc, err := c.RESTConfig("")
	if err != nil {
		b.Fatal(err)
	}
	images, err := agent.NewImageClient(rc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := images.LoadEverywhere(context.Background(), func() (io.ReadCloser, error) { return os.Open(TestImage(b)) }); err != nil {
		b.Fatal(err)
	}
	client := NodeClient(b, c, names[0])
	const replicas = 8
	if _, err := client.AppsV1().Deployments("default").Create(context.Background(), sleeperDeployment(replicas), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	waitReplicas(b, client, replicas, "")
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		leader, err := Leader(context.Background(), c, names...)
		if err != nil {
			b.Fatal(err)
		}
		victim := busiestNode(b, client, leader)
		client = NodeClient(b, c, leader)
		if err := c.Kill(victim); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		waitReplicas(b, client, replicas, victim)
		times = append(times, time.Since(start))
		b.StopTimer()
		if err := c.Restart(victim); err != nil {
			b.Fatal(err)
		}
		Eventually(b, 60*time.Second, victim+" Ready again", func() (bool, error) {
			n, err := client.CoreV1().Nodes().Get(context.Background(), victim, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					return cond.Status == corev1.ConditionTrue, nil
				}
			}
			return false, nil
		})
		b.StartTimer()
	}
	reportDurations(b, times)
}

func sleeperDeployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "sleeper"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers: []corev1.Container{{Name: "sleep", Image: "skiff.local/busybox:latest",
						ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}},
				},
			},
		},
	}
}

// waitReplicas waits until n sleeper pods are Running and Ready, none of
// them on the node avoid.
func waitReplicas(b testing.TB, client kubernetes.Interface, n int, avoid string) {
	Eventually(b, 120*time.Second, fmt.Sprintf("%d ready sleepers off %q", n, avoid), func() (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=sleeper"})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == avoid && avoid != "" {
				continue
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		return ready == n, nil
	})
}

// busiestNode returns the non-leader node running the most sleeper pods.
func busiestNode(b testing.TB, client kubernetes.Interface, leader string) string {
	pods, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=sleeper"})
	if err != nil {
		b.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != leader {
			count[p.Spec.NodeName]++
		}
	}
	best := ""
	for n, k := range count {
		if best == "" || k > count[best] {
			best = n
		}
	}
	if best == "" {
		b.Fatal("no pods outside the leader")
	}
	return best
}
