package api_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/api/apitest"
)

// typedConfigMaps is the part of client-go's ConfigMaps client used here.
type typedConfigMaps interface {
	Create(context.Context, *corev1.ConfigMap, metav1.CreateOptions) (*corev1.ConfigMap, error)
}

// benchClients is how many clients create concurrently.
const benchClients = 16

// BenchmarkAPICreateConfigMap measures ConfigMap creates per second over
// HTTP against the in-process server (no Raft: writes go straight to the
// store), with 16 concurrent client-go clients.
func BenchmarkAPICreateConfigMap(b *testing.B) {
	for _, enc := range []struct{ name, contentType string }{
		{"protobuf", "application/vnd.kubernetes.protobuf"},
		{"json", "application/json"},
	} {
		b.Run(enc.name, func(b *testing.B) {
			s := apitest.New(b)
			cfg := rest.CopyConfig(s.Config)
			cfg.ContentType = enc.contentType
			clients := make([]kubernetes.Interface, benchClients)
			for i := range clients {
				clients[i] = kubernetes.NewForConfigOrDie(cfg)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range clients {
				wg.Add(1)
				go func(cms typedConfigMaps) {
					defer wg.Done()
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + strconv.FormatInt(n, 10)},
							Data: map[string]string{"key": "value"}}
						if _, err := cms.Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				}(c.CoreV1().ConfigMaps("default"))
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objs/s")
		})
	}
}
