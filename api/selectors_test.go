package api_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto/prototest"
)

// podSelectorCases select among the pods TestListSelectors creates.
type selectorCase struct {
	name, ns, label, field string
	want                   string
}

var podSelectorCases = []selectorCase{
	{"pods on a node", "default", "", "spec.nodeName=node-1", "p1"},
	{"pods on a node, all namespaces", "", "", "spec.nodeName=node-1", "p1 p4"},
	{"unscheduled pods", "default", "", "spec.nodeName=", "p3"},
	{"pods not on a node", "default", "", "spec.nodeName!=node-1", "p2 p3"},
	{"by name", "", "", "metadata.name=p2", "p2"},
	{"by namespace", "", "", "metadata.namespace=other", "p4"},
	{"by phase", "default", "", "status.phase=Pending", "p1 p2 p3"},
	{"label equality", "", "tier=web", "", "p1 p4"},
	{"label set", "default", "tier in (web,db)", "", "p1 p2"},
	{"label absent", "default", "!tier", "", "p3"},
	{"labels and fields", "", "app=sample,tier=web", "metadata.namespace=default", "p1"},
}

func TestListSelectors(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	s.CreateNamespace(t, "other")
	pods := []struct{ ns, name, node, tier string }{
		{"default", "p1", "node-1", "web"},
		{"default", "p2", "node-2", "db"},
		{"default", "p3", "", ""},
		{"other", "p4", "node-1", "web"},
	}
	for _, p := range pods {
		pod := prototest.Sample(kindFor(t, "", "pods"), p.ns, p.name).(*corev1.Pod)
		pod.Spec.NodeName = p.node
		if p.tier != "" {
			pod.Labels["tier"] = p.tier
		}
		if _, err := s.Client.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p1", "p2"} {
		ev := prototest.Sample(kindFor(t, "", "events"), "default", "ev-"+name).(*corev1.Event)
		ev.InvolvedObject.Name = name
		if name == "p2" {
			ev.Type = corev1.EventTypeWarning
		}
		if _, err := s.Client.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range podSelectorCases {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.Client.CoreV1().Pods(tt.ns).List(ctx, metav1.ListOptions{LabelSelector: tt.label, FieldSelector: tt.field})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range list.Items {
				got = append(got, p.Name)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
	events := []struct{ field, want string }{
		{"involvedObject.name=p1", "ev-p1"},
		{"involvedObject.kind=Pod,type=Warning", "ev-p2"},
		{"reason=Started,source=skiff-agent", "ev-p1 ev-p2"},
	}
	for _, tt := range events {
		t.Run("events "+tt.field, func(t *testing.T) {
			list, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: tt.field})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range list.Items {
				got = append(got, e.Name)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}
