package api_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto/prototest"
)

// fixedClock is a settable clock for the server.
type fixedClock struct{ now time.Time }

func (c *fixedClock) Now() time.Time { return c.now }

func createPod(t *testing.T, s *apitest.Server, name, node string) *corev1.Pod {
	t.Helper()
	pod := prototest.Sample(kindFor(t, "", "pods"), "default", name).(*corev1.Pod)
	pod.Spec.NodeName = node
	out, err := s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGracefulPodDeletion(t *testing.T) {
	clock := &fixedClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := apitest.New(t, apitest.WithClock(clock.Now))
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	createPod(t, s, "bound", "node-1")

	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a bound pod disappeared at once: %v", err)
	}
	want := clock.now.Add(30 * time.Second)
	if got.DeletionTimestamp == nil || !got.DeletionTimestamp.Time.Equal(want) || *got.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("deletion %v grace %v, want %v and 30", got.DeletionTimestamp, got.DeletionGracePeriodSeconds, want)
	}

	clock.now = clock.now.Add(5 * time.Second)
	steps := []struct {
		grace     int64
		wantGrace int64
		wantAt    time.Time
	}{
		{10, 10, clock.now.Add(10 * time.Second)}, // shortens
		{60, 10, clock.now.Add(10 * time.Second)}, // may not lengthen
	}
	for _, st := range steps {
		if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &st.grace}); err != nil {
			t.Fatal(err)
		}
		got, _ := pods.Get(ctx, "bound", metav1.GetOptions{})
		if *got.DeletionGracePeriodSeconds != st.wantGrace || !got.DeletionTimestamp.Time.Equal(st.wantAt) {
			t.Fatalf("grace %d: got %d at %v, want %d at %v", st.grace, *got.DeletionGracePeriodSeconds, got.DeletionTimestamp, st.wantGrace, st.wantAt)
		}
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Name: "n"}}, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("binding a terminating pod: %v", err)
	}
	// The node confirms with a forced delete.
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptrInt64(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a forced delete: %v", err)
	}
}

func TestImmediatePodDeletion(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	createPod(t, s, "unbound", "")
	done := createPod(t, s, "done", "node-1")
	done.Status.Phase = corev1.PodSucceeded
	if _, err := pods.UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"unbound", "done"} {
		var pod corev1.Pod
		call{method: "DELETE", path: "/api/v1/namespaces/default/pods/" + name}.do(t, s).want(t, http.StatusOK).into(t, &pod)
		if pod.Name != name {
			t.Fatalf("delete answered %+v, want the pod", pod.ObjectMeta)
		}
		if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: %v, want NotFound", name, err)
		}
	}
}

func TestFinalizersAndPropagation(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	tests := []struct {
		name       string
		finalizers []string
		policy     metav1.DeletionPropagation
		want       []string // finalizers after delete; nil means gone
	}{
		{"background", nil, metav1.DeletePropagationBackground, nil},
		{"orphan", nil, metav1.DeletePropagationOrphan, []string{metav1.FinalizerOrphanDependents}},
		{"foreground", nil, metav1.DeletePropagationForeground, []string{metav1.FinalizerDeleteDependents}},
		{"held", []string{"example.com/hold"}, "", []string{"example.com/hold"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := configMap(tt.name)
			cm.Finalizers = tt.finalizers
			if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			opts := metav1.DeleteOptions{}
			if tt.policy != "" {
				opts.PropagationPolicy = &tt.policy
			}
			if err := cms.Delete(ctx, tt.name, opts); err != nil {
				t.Fatal(err)
			}
			got, err := cms.Get(ctx, tt.name, metav1.GetOptions{})
			if tt.want == nil {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("got %v, want NotFound", err)
				}
				return
			}
			if err != nil || got.DeletionTimestamp == nil || strings.Join(got.Finalizers, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("err %v finalizers %v deletion %v", err, got.Finalizers, got.DeletionTimestamp)
			}
			// The garbage collector's part: drop the finalizers.
			got.Finalizers = nil
			if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cms.Get(ctx, tt.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("after the last finalizer: %v", err)
			}
		})
	}
	call{method: "DELETE", path: "/api/v1/namespaces/default/configmaps/x?propagationPolicy=Sideways"}.do(t, s).want(t, http.StatusBadRequest)
	call{method: "DELETE", path: "/api/v1/namespaces/default/configmaps/x?gracePeriodSeconds=soon"}.do(t, s).want(t, http.StatusBadRequest)
}

func TestDeleteStatusDryRunAndCollection(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	for _, n := range []string{"a", "b", "c"} {
		cm := configMap(n)
		if n == "c" {
			cm.Labels["keep"] = "yes"
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "a", metav1.GetOptions{}); err != nil {
		t.Fatalf("dry-run delete removed the object: %v", err)
	}
	st := call{method: "DELETE", path: "/api/v1/namespaces/default/configmaps/a"}.do(t, s).want(t, http.StatusOK).status(t)
	if st.Status != metav1.StatusSuccess || st.Details == nil || st.Details.Name != "a" || st.Details.Kind != "configmaps" || st.Details.UID == "" {
		t.Fatalf("delete status %+v", st)
	}
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "!keep"}); err != nil {
		t.Fatal(err)
	}
	list, _ := cms.List(ctx, metav1.ListOptions{})
	var names []string
	for _, cm := range list.Items {
		names = append(names, cm.Name)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "c" {
		t.Fatalf("after deletecollection: %v", names)
	}
}
