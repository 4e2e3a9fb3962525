package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"

	"github.com/skiffhq/skiff/api/apitest"
)

// TestPagedList: limit and continue page through one consistent list.
func TestPagedList(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	for i := 0; i < 5; i++ {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var rv string
	opts := metav1.ListOptions{Limit: 2}
	for page := 0; ; page++ {
		list, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if page == 0 {
			rv = list.ResourceVersion
			if list.RemainingItemCount == nil || *list.RemainingItemCount != 3 {
				t.Fatalf("first page remainingItemCount = %v, want 3", list.RemainingItemCount)
			}
			// Written after the first page: not in this list.
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-late"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if list.ResourceVersion != rv {
			t.Fatalf("page %d at resourceVersion %s, want %s (one snapshot)", page, list.ResourceVersion, rv)
		}
		for _, cm := range list.Items {
			names = append(names, cm.Name)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	if got := strings.Join(names, " "); got != "cm-0 cm-1 cm-2 cm-3 cm-4" {
		t.Fatalf("paged names = %q", got)
	}

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			path string
			code int
		}{
			{"unknown continue token", "/api/v1/namespaces/default/configmaps?limit=1&continue=nope", http.StatusGone},
			{"continue with a resourceVersion", "/api/v1/namespaces/default/configmaps?continue=x&resourceVersion=5", http.StatusBadRequest},
			{"negative limit", "/api/v1/namespaces/default/configmaps?limit=-1", http.StatusBadRequest},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				call{method: http.MethodGet, path: tc.path}.do(t, s).want(t, tc.code)
			})
		}
		first, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil || first.Continue == "" {
			t.Fatalf("first page: %v", err)
		}
		other := "/api/v1/namespaces/default/configmaps?labelSelector=x%3Dy&continue=" + first.Continue
		call{method: http.MethodGet, path: other}.do(t, s).want(t, http.StatusBadRequest)
		_, err = cms.List(ctx, metav1.ListOptions{Limit: 1, Continue: "nope"})
		if !apierrors.IsResourceExpired(err) {
			t.Fatalf("unknown token: %v, want Expired", err)
		}
	})

	t.Run("client-go pager", func(t *testing.T) {
		p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return cms.List(ctx, opts)
		})
		p.PageSize = 4
		var n int
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(runtime.Object) error { n++; return nil })
		if err != nil || n != 6 {
			t.Fatalf("pager saw %d items, err %v; want 6", n, err)
		}
	})

	t.Run("resourceVersion 0 is not paged", func(t *testing.T) {
		list, err := cms.List(ctx, metav1.ListOptions{Limit: 1, ResourceVersion: "0"})
		if err != nil || len(list.Items) != 6 || list.Continue != "" {
			t.Fatalf("list = %d items, continue %q, err %v; want all 6", len(list.Items), list.Continue, err)
		}
	})
}
