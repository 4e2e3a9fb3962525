package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startBenchDaemon runs a real single-node daemon (Raft on disk, fsync on)
// on loopback ports and returns a client for its API.
func startBenchDaemon(tb testing.TB) (kubernetes.Interface, func()) {
	cfg := DefaultDaemonConfig()
	cfg.APIAddr = "127.0.0.1:0"
	cfg.Node.NodeName = "bench"
	cfg.Node.DataDir = tb.TempDir()
	cfg.Node.RaftBind = "127.0.0.1:0"
	cfg.Node.RaftAdvertise = ""
	cfg.Node.Bootstrap = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := NewDaemon(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	rc := &rest.Config{Host: "http://" + d.APIAddr().String(), QPS: -1}
	rc.ContentType = "application/json"
	client := kubernetes.NewForConfigOrDie(rc)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		tb.Fatalf("daemon never accepted a write: %v", err)
	}
	return client, func() { cancel(); <-done }
}

// BenchmarkAPICreateDurable measures ConfigMap creates per second through
// the HTTP API of a real single-node daemon with 16 concurrent clients;
// every create is committed to the fsynced Raft log before it is answered.
func BenchmarkAPICreateDurable(b *testing.B) {
	client, stop := startBenchDaemon(b)
	defer stop()
	const clients = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"k": "v"}}
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
