package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/api/apitest"
)

// TestUIDPreconditionFromContext: an authorizer's UID precondition limits
// status writes and deletes to the pod it checked.
func TestUIDPreconditionFromContext(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	created, err := s.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, path string, body any, uid types.UID) int {
		t.Helper()
		data, _ := json.Marshal(body)
		req := httptest.NewRequest(method, path, bytes.NewReader(data))
		ctype := "application/json"
		if method == http.MethodPatch {
			ctype = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ctype)
		req = req.WithContext(api.WithUIDPrecondition(req.Context(), uid))
		rec := httptest.NewRecorder()
		s.API.ServeHTTP(rec, req)
		return rec.Code
	}
	status := created.DeepCopy()
	status.Status.Phase = corev1.PodRunning
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		uid    types.UID
		want   int
	}{
		{"status update for another UID", http.MethodPut, "/api/v1/namespaces/default/pods/p/status", status, "other", http.StatusConflict},
		{"status patch for another UID", http.MethodPatch, "/api/v1/namespaces/default/pods/p/status", map[string]any{"status": map[string]any{"phase": "Failed"}}, "other", http.StatusConflict},
		{"delete for another UID", http.MethodDelete, "/api/v1/namespaces/default/pods/p", nil, "other", http.StatusConflict},
		{"status update for its UID", http.MethodPut, "/api/v1/namespaces/default/pods/p/status", status, created.UID, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serve(tc.method, tc.path, tc.body, tc.uid); got != tc.want {
				t.Fatalf("HTTP %d, want %d", got, tc.want)
			}
		})
	}
	got, err := s.Client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod after the writes: phase %q, err %v; want Running and still there", got.Status.Phase, err)
	}
}
