package api

import (
	"net/http"
	"strings"

	"github.com/skiffhq/skiff/proto"
)

// request is a parsed resource request.
type request struct {
	verb        string // get, list, watch, create, update, patch, delete, deletecollection
	kind        *proto.Kind
	namespace   string
	name        string
	subresource string
	proxyPath   string // for */proxy/{path}: the path after "proxy"
}

// parseResourcePath parses /api/v1/... and /apis/{g}/{v}/... resource paths.
// ok is false when the path is not a resource path at all; err is a
// Kubernetes status error for a resource path that names nothing served.
func parseResourcePath(method, path string, watchParam bool) (req *request, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group = parts[1]
		if parts[2] != "v1" {
			return nil, false
		}
		parts = parts[3:]
	default:
		return nil, false
	}
	req = &request{}
	if parts[0] == "watch" {
		watchParam = true
		parts = parts[1:]
		if len(parts) == 0 {
			return nil, false
		}
	}
	if len(parts) >= 3 && parts[0] == "namespaces" && !isNamespaceSubresource(group, parts) {
		req.namespace = parts[1]
		parts = parts[2:]
	} else if parts[0] == "namespaces" && len(parts) <= 3 && group == "" {
		// /api/v1/namespaces[/{name}[/status|finalize]]
		if len(parts) >= 2 {
			req.name = parts[1]
		}
		if len(parts) == 3 {
			req.subresource = parts[2]
		}
		parts = []string{"namespaces"}
	}
	kind, found := proto.KindForResource(group, parts[0])
	if !found {
		return nil, false
	}
	req.kind = kind
	switch len(parts) {
	case 1:
	case 2:
		req.name = parts[1]
	case 3:
		req.name, req.subresource = parts[1], parts[2]
	default:
		if parts[2] != "proxy" {
			return nil, false
		}
		// nodes/{name}/proxy/{path...}: the rest is the proxied path.
		req.name, req.subresource = parts[1], parts[2]
		req.proxyPath = "/" + strings.Join(parts[3:], "/")
	}
	if !kind.Namespaced && kind.Resource != "namespaces" && req.namespace != "" {
		return nil, false
	}
	req.verb = verbFor(method, req.name != "", watchParam)
	return req, req.verb != ""
}

// isNamespaceSubresource tells /api/v1/namespaces/{name}/status (or
// finalize) from /api/v1/namespaces/{namespace}/{resource}.
func isNamespaceSubresource(group string, parts []string) bool {
	return group == "" && len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")
}

func verbFor(method string, named, watch bool) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watch:
			return "watch"
		case named:
			return "get"
		}
		return "list"
	case http.MethodPost:
		if named {
			return "create" // subresources such as binding and eviction
		}
		return "create"
	case http.MethodPut:
		if named {
			return "update"
		}
	case http.MethodPatch:
		if named {
			return "patch"
		}
	case http.MethodDelete:
		if named {
			return "delete"
		}
		return "deletecollection"
	}
	return ""
}
