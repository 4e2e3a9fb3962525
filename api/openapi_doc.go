package api

import (
	"reflect"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/proto"
)

// The media types a PATCH accepts. Listing strategic merge patch tells
// kubectl apply to compute its patch from these schemas.
var patchMediaTypes = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}

// writeParams are the query parameters of create, update and patch.
// fieldValidation must be listed for every write: kubectl then leaves the
// unknown-field check to the server instead of validating client-side.
var writeParams = []string{"dryRun", "fieldManager", "fieldValidation"}

// docBuilder assembles the paths of an OpenAPI document over a schemaGen.
type docBuilder struct {
	g     *schemaGen
	paths obj
}

func gvkExtension(gvk schema.GroupVersionKind) obj {
	return obj{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// addKind adds the collection, item and subresource paths of kind, and
// marks its object and list schemas with x-kubernetes-group-version-kind.
func (b *docBuilder) addKind(k *proto.Kind) {
	objName := b.g.define(reflect.TypeOf(k.New()).Elem())
	listName := b.g.define(reflect.TypeOf(k.NewList()).Elem())
	for _, n := range []struct {
		name string
		gvk  schema.GroupVersionKind
	}{{objName, k.GVK}, {listName, k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List")}} {
		b.g.defs[n.name].(obj)["x-kubernetes-group-version-kind"] = []interface{}{gvkExtension(n.gvk)}
	}
	status := b.g.define(reflect.TypeOf(metav1.Status{}))
	b.g.defs[status].(obj)["x-kubernetes-group-version-kind"] = []interface{}{gvkExtension(schema.GroupVersionKind{Version: "v1", Kind: "Status"})}

	base := "/api/v1"
	if k.GVK.Group != "" {
		base = "/apis/" + k.APIVersion()
	}
	coll := base + "/" + k.Resource
	if k.Namespaced {
		b.add(coll, k, "", nil, op{"get", "list", "", listName})
		coll = base + "/namespaces/{namespace}/" + k.Resource
	}
	b.add(coll, k, "", nil,
		op{"get", "list", "", listName},
		op{"post", "create", objName, objName},
		op{"delete", "deletecollection", "", status})
	item := coll + "/{name}"
	b.add(item, k, "", nil,
		op{"get", "get", "", objName},
		op{"put", "update", objName, objName},
		op{"patch", "patch", "", objName},
		op{"delete", "delete", "", objName})
	if k.HasStatus {
		b.add(item+"/status", k, "Status", nil,
			op{"get", "get", "", objName}, op{"put", "update", objName, objName}, op{"patch", "patch", "", objName})
	}
	if k.HasScale {
		scale := b.g.define(reflect.TypeOf(autoscalingv1.Scale{}))
		gvk := autoscalingv1.SchemeGroupVersion.WithKind("Scale")
		b.g.defs[scale].(obj)["x-kubernetes-group-version-kind"] = []interface{}{gvkExtension(gvk)}
		b.add(item+"/scale", k, "Scale", &gvk,
			op{"get", "get", "", scale}, op{"put", "update", scale, scale}, op{"patch", "patch", "", scale})
	}
}

// op is one operation: HTTP method, Kubernetes action, request and
// response model names.
type op struct{ method, action, body, response string }

func (b *docBuilder) add(path string, k *proto.Kind, sub string, gvk *schema.GroupVersionKind, ops ...op) {
	if gvk == nil {
		gvk = &k.GVK
	}
	item := obj{}
	var params []interface{}
	for _, p := range []string{"namespace", "name"} {
		if strings.Contains(path, "{"+p+"}") {
			params = append(params, b.param(p, "path"))
		}
	}
	if len(params) > 0 {
		item["parameters"] = params
	}
	for _, o := range ops {
		item[o.method] = b.operation(k, sub, *gvk, o, strings.Contains(path, "{namespace}"))
	}
	b.paths[path] = item
}

func (b *docBuilder) param(name, in string) obj {
	p := obj{"name": name, "in": in}
	if in == "path" {
		p["required"] = true
	}
	if b.g.v3 {
		p["schema"] = obj{"type": "string", "uniqueItems": true}
		return p
	}
	p["type"], p["uniqueItems"] = "string", true
	return p
}

func (b *docBuilder) operation(k *proto.Kind, sub string, gvk schema.GroupVersionKind, o op, namespaced bool) obj {
	group := "Core"
	if g := k.GVK.Group; g != "" {
		group = strings.ToUpper(g[:1]) + g[1:]
	}
	scope, name := "", k.GVK.Kind
	if namespaced {
		scope = "Namespaced"
	} else if k.Namespaced {
		name += "ForAllNamespaces"
	}
	out := obj{
		"operationId":                     o.action + group + "V1" + scope + name + sub,
		"tags":                            []interface{}{strings.ToLower(group) + "_v1"},
		"x-kubernetes-action":             o.action,
		"x-kubernetes-group-version-kind": gvkExtension(gvk),
	}
	var params []interface{}
	if o.method != "get" && o.method != "delete" {
		for _, p := range writeParams {
			params = append(params, b.param(p, "query"))
		}
	}
	b.body(out, &params, o)
	if len(params) > 0 {
		out["parameters"] = params
	}
	return out
}

// body adds the request body and the responses of an operation.
func (b *docBuilder) body(out obj, params *[]interface{}, o op) {
	types := []string{"application/json", "application/yaml", proto.ContentTypeProtobuf}
	if o.method == "patch" {
		types = patchMediaTypes
	}
	var reqSchema obj
	switch {
	case o.body != "":
		reqSchema = b.g.ref(o.body)
	case o.method == "patch":
		reqSchema = obj{"type": "object"}
	}
	resp := b.g.ref(o.response)
	if b.g.v3 {
		if reqSchema != nil {
			content := obj{}
			for _, t := range types {
				content[t] = obj{"schema": reqSchema}
			}
			out["requestBody"] = obj{"content": content, "required": true}
		}
		out["responses"] = obj{"200": obj{"description": "OK", "content": obj{"application/json": obj{"schema": resp}}}}
		return
	}
	if reqSchema != nil {
		out["consumes"] = types
		*params = append(*params, obj{"name": "body", "in": "body", "required": true, "schema": reqSchema})
	}
	out["produces"] = []string{"application/json", "application/yaml", proto.ContentTypeProtobuf}
	out["responses"] = obj{"200": obj{"description": "OK", "schema": resp}}
}
