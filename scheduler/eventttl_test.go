package scheduler

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api/apitest"
)

func TestExpireEvents(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	now := time.Now()
	cases := []struct {
		name string
		last time.Time
		keep bool
	}{
		{"fresh", now.Add(-time.Minute), true},
		{"old", now.Add(-2 * time.Hour), false},
	}
	for _, c := range cases {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: c.name}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "default"},
			Reason: "Test", LastTimestamp: metav1.NewTime(c.last)}
		if _, err := s.Client.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	expireEvents(ctx, s.Client, time.Hour, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Client.CoreV1().Events("default").Get(ctx, c.name, metav1.GetOptions{})
			if kept := err == nil; kept != c.keep {
				t.Fatalf("kept=%v, want %v (err %v)", kept, c.keep, err)
			}
		})
	}
}
