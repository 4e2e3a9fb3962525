package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/openapi3"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

// TestOpenAPIFieldValidationSupport runs kubectl's own checks: with both
// documents saying every kind's PATCH takes fieldValidation, kubectl apply
// leaves unknown-field validation to the server.
func TestOpenAPIFieldValidationSupport(t *testing.T) {
	s := apitest.New(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(s.Config)
	dyn := dynamic.NewForConfigOrDie(s.Config)
	v3 := resource.NewQueryParamVerifierV3(dyn, dc.OpenAPIV3(), resource.QueryParamFieldValidation)
	v2 := resource.NewQueryParamVerifier(dyn, dc, resource.QueryParamFieldValidation)
	for _, k := range proto.Kinds() {
		if err := v3.HasSupport(k.GVK); err != nil {
			t.Errorf("v3 %s: %v", k.GVK.Kind, err)
		}
		if err := v2.HasSupport(k.GVK); err != nil {
			t.Errorf("v2 %s: %v", k.GVK.Kind, err)
		}
	}
}

// TestOpenAPIV2Models parses /openapi/v2 (protobuf) the way kubectl does
// and finds a model for every kind.
func TestOpenAPIV2Models(t *testing.T) {
	s := apitest.New(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(s.Config)
	resources, err := kubectlopenapi.NewOpenAPIParser(dc).Parse()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range proto.Kinds() {
		if m := resources.LookupResource(k.GVK); m == nil {
			t.Errorf("no v2 model for %v", k.GVK)
		}
	}
	r := call{method: "GET", path: "/openapi/v2"}.do(t, s).want(t, http.StatusOK)
	call{method: "GET", path: "/openapi/v2", accept: r.header.Get("Etag")}.do(t, s).want(t, http.StatusOK)
	req, _ := http.NewRequest("GET", s.HTTP.URL+"/openapi/v2", nil)
	req.Header.Set("If-None-Match", r.header.Get("Etag"))
	if resp, err := s.HTTP.Client().Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %v %v", err, resp)
	}
	call{method: "GET", path: "/openapi/v3/apis/batch/v1"}.do(t, s).want(t, http.StatusNotFound)
}

// TestOpenAPIV3PatchMeta checks that a strategic merge patch computed from
// the served v3 schema (what kubectl apply does) equals one computed from
// the Go types (what the server applies), for every kind.
func TestOpenAPIV3PatchMeta(t *testing.T) {
	s := apitest.New(t)
	root := openapi3.NewRoot(discovery.NewDiscoveryClientForConfigOrDie(s.Config).OpenAPIV3())
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			doc, err := root.GVSpec(k.GVK.GroupVersion())
			if err != nil {
				t.Fatal(err)
			}
			var meta strategicpatch.LookupPatchMeta
			for _, c := range doc.Components.Schemas {
				var gvks []map[string]string
				if c.Extensions.GetObject("x-kubernetes-group-version-kind", &gvks) == nil && len(gvks) == 1 &&
					gvks[0]["kind"] == k.GVK.Kind && gvks[0]["group"] == k.GVK.Group {
					meta = strategicpatch.PatchMetaFromOpenAPIV3{Schema: c, SchemaList: doc.Components.Schemas}
				}
			}
			if meta == nil {
				t.Fatal("no schema carries the kind's x-kubernetes-group-version-kind")
			}
			original, modified, current := patchInputs(t, k)
			fromSchema, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, meta, false)
			if err != nil {
				t.Fatalf("patch from OpenAPI: %v", err)
			}
			structMeta, _ := strategicpatch.NewPatchMetaFromStruct(k.New())
			fromStruct, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, structMeta, false)
			if err != nil {
				t.Fatal(err)
			}
			var a, b interface{}
			json.Unmarshal(fromSchema, &a)
			json.Unmarshal(fromStruct, &b)
			if !apiequality.Semantic.DeepEqual(a, b) {
				t.Fatalf("patches differ:\nopenapi %s\nstruct  %s", fromSchema, fromStruct)
			}
		})
	}
}

// patchInputs returns apply's three documents for kind: the last applied
// configuration, the new one (labels and, for workloads, containers
// changed) and the live object (with a container someone else added).
func patchInputs(t *testing.T, k *proto.Kind) (original, modified, current []byte) {
	base := prototest.Sample(k, "default", "x")
	original = []byte(mustJSON(t, base))
	var mod, cur map[string]interface{}
	json.Unmarshal(original, &mod)
	json.Unmarshal(original, &cur)
	mod["metadata"].(map[string]interface{})["labels"] = map[string]interface{}{"app": "sample", "v": "2"}
	for _, path := range [][]string{{"spec"}, {"spec", "template", "spec"}} {
		if spec := nested(mod, path...); spec != nil && spec["containers"] != nil {
			spec["containers"] = []interface{}{map[string]interface{}{"name": "app", "image": "busybox:1.37"}}
			nested(cur, path...)["containers"] = append(nested(cur, path...)["containers"].([]interface{}),
				map[string]interface{}{"name": "sidecar", "image": "envoy"})
		}
	}
	modified, _ = json.Marshal(mod)
	current, _ = json.Marshal(cur)
	return original, modified, current
}

func nested(m map[string]interface{}, path ...string) map[string]interface{} {
	for _, p := range path {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func TestOpenAPIV3Discovery(t *testing.T) {
	s := apitest.New(t)
	var disco struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	call{method: "GET", path: "/openapi/v3"}.do(t, s).want(t, http.StatusOK).into(t, &disco)
	for _, gv := range []schema.GroupVersion{{Version: "v1"}, {Group: "apps", Version: "v1"}} {
		p := "api/v1"
		if gv.Group != "" {
			p = "apis/" + gv.String()
		}
		url := disco.Paths[p].ServerRelativeURL
		if !strings.HasPrefix(url, "/openapi/v3/"+p+"?hash=") {
			t.Fatalf("%s: %q", p, url)
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
		}
		call{method: "GET", path: url}.do(t, s).want(t, http.StatusOK).into(t, &doc)
		if doc.OpenAPI != "3.0.0" {
			t.Fatalf("%s: openapi %q", p, doc.OpenAPI)
		}
		r := call{method: "GET", path: url, accept: "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"}.do(t, s).want(t, http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "application/com.github.proto-openapi.spec.v3.v1.0+protobuf" {
			t.Fatalf("protobuf content type %q", ct)
		}
	}
}
