// Package api serves skiff's Kubernetes-shaped HTTP API.
//
// Paths, verbs, status codes and bodies follow the Kubernetes API
// conventions closely enough that client-go, kubectl and skiff's own CLI
// talk to it unchanged:
//
//	/api, /apis, /api/v1, /apis/apps/v1        discovery
//	/api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]
//	/apis/{group}/{version}/...                the same for named groups
//	/version, /healthz, /readyz, /livez        process endpoints
//	/openapi/v2, /openapi/v3[/{gv}]            OpenAPI, generated from the Go types
//
// kubectl's needs beyond REST are met here too: server-side Tables with
// Kubernetes' columns (printers*.go), OpenAPI documents that let kubectl
// apply leave field validation to the server and compute strategic merge
// patches (openapi*.go), and the scale subresource. docs/kubectl-compat.md
// has the details.
//
// Reads (get, list, watch) are served from the local replica of the
// replicated store (package fsm). Writes are turned into proto.Command values
// and handed to a Proposer, which replicates them through Raft and returns
// the state machine's answer. Everything the state machine must not decide
// for itself — UIDs, timestamps, generated names, defaults — is fixed here
// before proposing, and every write is validated here first.
//
// Errors are always metav1.Status objects with the matching HTTP code: 400
// for malformed bodies and unknown fields (naming the field path), 403, 404,
// 409 (a conflict names the current resourceVersion in its message and in
// details.causes), 410 for a watch from a compacted resourceVersion, 413 for
// bodies over Config.MaxBodyBytes, 415 for unsupported content types and 422
// listing every invalid field, bad quantities included.
package api
