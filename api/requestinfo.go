package api

import (
	"net/http"

	"github.com/skiffhq/skiff/proto"
)

// RequestInfo describes a resource request, for authorization and routing
// layers in front of the Server.
type RequestInfo struct {
	// Verb is get, list, watch, create, update, patch, delete or
	// deletecollection.
	Verb        string
	Kind        *proto.Kind
	Namespace   string
	Name        string
	Subresource string
}

// ParseRequestInfo parses a request the way the Server will route it; ok is
// false for non-resource paths (discovery, health, version).
func ParseRequestInfo(r *http.Request) (RequestInfo, bool) {
	w := r.URL.Query().Get("watch")
	req, ok := parseResourcePath(r.Method, r.URL.Path, w == "1" || w == "true")
	if !ok {
		return RequestInfo{}, false
	}
	return RequestInfo{Verb: req.verb, Kind: req.kind, Namespace: req.namespace, Name: req.name, Subresource: req.subresource}, true
}
