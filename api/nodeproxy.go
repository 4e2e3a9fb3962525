package api

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// podStream serves pods/{name}/log and pods/{name}/exec by proxying to the
// agent on the pod's node. Not implemented yet.
func (s *Server) podStream(w http.ResponseWriter, r *http.Request, req *request) {
	writeError(w, apierrors.NewServiceUnavailable("pods/"+req.subresource+" is not implemented yet"))
}

// nodeProxy serves nodes/{name}/proxy/{path} by proxying to that node's
// agent. Not implemented yet.
func (s *Server) nodeProxy(w http.ResponseWriter, r *http.Request, req *request) {
	writeError(w, apierrors.NewServiceUnavailable("nodes/proxy is not implemented yet"))
}
