package api_test

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
)

func TestDiscoveryDocuments(t *testing.T) {
	s := apitest.New(t)
	var versions metav1.APIVersions
	call{method: "GET", path: "/api"}.do(t, s).want(t, http.StatusOK).into(t, &versions)
	if versions.Kind != "APIVersions" || strings.Join(versions.Versions, ",") != "v1" {
		t.Fatalf("/api: %+v", versions)
	}
	var groups metav1.APIGroupList
	call{method: "GET", path: "/apis"}.do(t, s).want(t, http.StatusOK).into(t, &groups)
	if len(groups.Groups) != 1 || groups.Groups[0].Name != "apps" || groups.Groups[0].PreferredVersion.GroupVersion != "apps/v1" {
		t.Fatalf("/apis: %+v", groups)
	}
	var group metav1.APIGroup
	call{method: "GET", path: "/apis/apps"}.do(t, s).want(t, http.StatusOK).into(t, &group)
	if group.Name != "apps" {
		t.Fatalf("/apis/apps: %+v", group)
	}
	call{method: "GET", path: "/apis/batch"}.do(t, s).want(t, http.StatusNotFound)
	for _, gv := range proto.GroupVersions() {
		path := "/api/v1"
		if gv.Group != "" {
			path = "/apis/" + gv.String()
		}
		var list metav1.APIResourceList
		call{method: "GET", path: path}.do(t, s).want(t, http.StatusOK).into(t, &list)
		served := map[string]metav1.APIResource{}
		for _, r := range list.APIResources {
			served[r.Name] = r
		}
		for _, k := range proto.KindsIn(gv) {
			r, ok := served[k.Resource]
			if !ok || r.Kind != k.GVK.Kind || r.Namespaced != k.Namespaced || strings.Join(r.ShortNames, ",") != strings.Join(k.ShortNames, ",") {
				t.Fatalf("%s: resource %s is %+v", path, k.Resource, r)
			}
			if _, ok := served[k.Resource+"/status"]; ok != k.HasStatus {
				t.Fatalf("%s/status listed=%v, want %v", k.Resource, ok, k.HasStatus)
			}
			if sc, ok := served[k.Resource+"/scale"]; ok != k.HasScale || (ok && (sc.Group != "autoscaling" || sc.Kind != "Scale")) {
				t.Fatalf("%s/scale: %+v", k.Resource, sc)
			}
		}
	}
}

func TestDiscoveryClientAndRESTMapper(t *testing.T) {
	s := apitest.New(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(s.Config)
	groups, resources, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	if strings.Join(names, ",") != ",apps" {
		t.Fatalf("groups %v", names)
	}
	if len(resources) != 2 {
		t.Fatalf("%d resource lists", len(resources))
	}
	gr, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewShortcutExpander(restmapper.NewDiscoveryRESTMapper(gr), dc, func(string) {})
	tests := []struct {
		resource string
		want     schema.GroupVersionKind
	}{
		{"deploy", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}},
		{"po", schema.GroupVersionKind{Version: "v1", Kind: "Pod"}},
		{"svc", schema.GroupVersionKind{Version: "v1", Kind: "Service"}},
		{"ns", schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}},
		{"configmap", schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}},
		{"daemonsets", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			gvk, err := mapper.KindFor(schema.GroupVersionResource{Resource: tt.resource})
			if err != nil || gvk != tt.want {
				t.Fatalf("KindFor(%s) = %v, %v; want %v", tt.resource, gvk, err, tt.want)
			}
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := proto.KindFor(gvk)
			if m.Resource.Resource != k.Resource || (m.Scope.Name() == "namespace") != k.Namespaced {
				t.Fatalf("mapping %+v", m)
			}
		})
	}
	// kubectl get all expands the "all" category.
	var all []string
	for _, list := range resources {
		for _, r := range list.APIResources {
			for _, c := range r.Categories {
				if c == "all" {
					all = append(all, r.Name)
				}
			}
		}
	}
	sort.Strings(all)
	if strings.Join(all, ",") != "daemonsets,deployments,pods,replicasets,services" {
		t.Fatalf("category all: %v", all)
	}
}

func TestProcessEndpoints(t *testing.T) {
	notReady := errors.New("raft has no leader")
	var ready atomic.Bool
	ready.Store(true)
	s := apitest.New(t, func(c *api.Config) {
		c.Ready = func() error {
			if !ready.Load() {
				return notReady
			}
			return nil
		}
	})
	var v version.Info
	call{method: "GET", path: "/version"}.do(t, s).want(t, http.StatusOK).into(t, &v)
	if v.Major != "1" || v.Minor != "37" || !strings.HasPrefix(v.GitVersion, "v1.37") {
		t.Fatalf("version %+v", v)
	}
	sv, err := discovery.NewDiscoveryClientForConfigOrDie(s.Config).ServerVersion()
	if err != nil || sv.GitVersion != v.GitVersion {
		t.Fatalf("client-go ServerVersion: %v %v", sv, err)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if r := (call{method: "GET", path: p}).do(t, s).want(t, http.StatusOK); string(r.body) != "ok" {
			t.Fatalf("%s: %q", p, r.body)
		}
	}
	ready.Store(false)
	r := call{method: "GET", path: "/readyz"}.do(t, s).want(t, http.StatusServiceUnavailable)
	contains(t, string(r.body), notReady.Error())
}
