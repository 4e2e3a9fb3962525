// Package agentapi is the HTTP contract between the node agent's server and
// its callers: the API server's pods/{log,exec} and nodes/{name}/proxy
// subresources, and the CLI's image commands. It has no dependencies beyond
// the standard library so that package api can import it without pulling in
// the agent.
//
// The paths follow the kubelet's:
//
//	GET         /healthz
//	GET         /containerLogs/{namespace}/{pod}/{container}?follow&previous&tailLines&limitBytes&timestamps
//	GET|POST    /exec/{namespace}/{pod}/{container}?command=...&input=1&output=1&error=1&tty=1
//	POST        /images/load        body: an OCI layout or docker save tar
//	GET         /images
//	DELETE      /images/{ref...}    ref path-escaped
//
// Errors are metav1.Status JSON bodies, like the API's.
package agentapi

import (
	"net/url"
	"strconv"
)

// DefaultPort is the agent's default port, the kubelet's.
const DefaultPort = 10250

// Paths of the image endpoints.
const (
	ImagesPath    = "/images"
	ImageLoadPath = "/images/load"
)

// Kubelet-style exec query parameters (the API's stdin/stdout/stderr/tty
// become input/output/error/tty on the way to the agent).
const (
	ExecCommandParam = "command"
	ExecStdinParam   = "input"
	ExecStdoutParam  = "output"
	ExecStderrParam  = "error"
	ExecTTYParam     = "tty"
)

// The path builders return unescaped paths (for url.URL.Path): namespaces,
// pod and container names are DNS labels, and an image reference's "/"
// and ":" are fine in a path ({ref...} takes the rest of it).

// ContainerLogsPath is the agent path serving a container's log.
func ContainerLogsPath(namespace, pod, container string) string {
	return "/containerLogs/" + namespace + "/" + pod + "/" + container
}

// ExecPath is the agent path serving exec in a container.
func ExecPath(namespace, pod, container string) string {
	return "/exec/" + namespace + "/" + pod + "/" + container
}

// PortForwardPath is the agent path forwarding ports of a pod (the client
// names the ports: a "port" query parameter for WebSocket, stream headers
// for SPDY).
func PortForwardPath(namespace, pod string) string {
	return "/portForward/" + namespace + "/" + pod
}

// ImagePath is the agent path of one image (for DELETE).
func ImagePath(ref string) string { return ImagesPath + "/" + ref }

// LogQuery converts the query of an API pods/log request into the agent's
// containerLogs query. The parameter names are the same; only the ones the
// agent understands are passed.
func LogQuery(api url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"follow", "previous", "tailLines", "limitBytes", "timestamps", "sinceSeconds", "sinceTime"} {
		if v, ok := api[k]; ok {
			out[k] = v
		}
	}
	return out
}

// ExecQuery converts the query of an API pods/exec request (command, stdin,
// stdout, stderr, tty) into the agent's exec query.
func ExecQuery(api url.Values) url.Values {
	out := url.Values{}
	for _, c := range api["command"] {
		out.Add(ExecCommandParam, c)
	}
	for from, to := range map[string]string{"stdin": ExecStdinParam, "stdout": ExecStdoutParam, "stderr": ExecStderrParam, "tty": ExecTTYParam} {
		if truthy(api.Get(from)) {
			out.Set(to, "1")
		}
	}
	return out
}

// truthy parses a Kubernetes boolean query value ("true", "1", ...).
func truthy(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}
