package agent

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// grpcServer serves gRPC on a loopback port, with the health service when
// withHealth; it returns the port.
func grpcServer(t *testing.T, withHealth bool) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	if withHealth {
		hs := health.NewServer()
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
		healthpb.RegisterHealthServer(s, hs)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func TestGRPCProbe(t *testing.T) {
	healthy, bare := grpcServer(t, true), grpcServer(t, false)
	closed := func() int32 {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return int32(ln.Addr().(*net.TCPAddr).Port)
	}()
	tests := []struct {
		name    string
		action  corev1.GRPCAction
		ok      bool
		message string
	}{
		{"serving", corev1.GRPCAction{Port: healthy}, true, ""},
		{"a service not serving", corev1.GRPCAction{Port: healthy, Service: ptr.To("db")}, false, `service unhealthy (responded with "NOT_SERVING")`},
		{"no health service", corev1.GRPCAction{Port: bare}, false, "does not implement the grpc health protocol"},
		{"nothing listening", corev1.GRPCAction{Port: closed}, false, "failed to connect service"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ok, msg := grpcProbe(ctx, probeTarget{}, &tc.action)
			if ok != tc.ok || !strings.Contains(msg, tc.message) {
				t.Fatalf("grpcProbe = %v, %q; want %v, %q", ok, msg, tc.ok, tc.message)
			}
		})
	}
}
