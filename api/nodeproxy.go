package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"

	"github.com/skiffhq/skiff/agent/agentapi"
	"github.com/skiffhq/skiff/proto"
)

// The API reaches node agents like kube-apiserver reaches kubelets:
//
//	pods/{name}/log            GET  -> agent /containerLogs/{ns}/{pod}/{container}
//	pods/{name}/exec           GET|POST, upgraded (WebSocket or SPDY)
//	                                -> agent /exec/{ns}/{pod}/{container}
//	pods/{name}/portforward    GET|POST, upgraded -> agent /portForward/{ns}/{pod}
//	nodes/{name}/proxy/{path}  any  -> agent /{path}
//
// The agent's address is the Node's InternalIP (else ExternalIP) and its
// status.daemonEndpoints.kubeletEndpoint.port. Upgraded connections are
// spliced byte for byte (apimachinery's UpgradeAwareHandler), so the
// client and the agent negotiate the remotecommand protocol themselves.
// The client's Authorization header is not forwarded.

// defaultContainerAnnotation names a pod's default container for kubectl.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// agentTransport returns the transport to node agents: Config.AgentTransport
// (mutual TLS in a secure cluster), else plain HTTP (an insecure single
// node). New fills in the default once.
func agentTransport(s *Server) *http.Transport { return s.cfg.AgentTransport }

// defaultAgentTransport reaches agents over plain HTTP.
func defaultAgentTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
	}
}

func agentScheme(s *Server) string {
	if s.cfg.AgentTransport.TLSClientConfig != nil {
		return "https"
	}
	return "http"
}

// podStream serves pods/{name}/log, exec and portforward by proxying to
// the agent on the pod's node.
func (s *Server) podStream(w http.ResponseWriter, r *http.Request, req *request) {
	if req.subresource != "log" && req.subresource != "exec" && req.subresource != "portforward" {
		writeError(w, apierrors.NewServiceUnavailable("pods/"+req.subresource+" is not implemented yet"))
		return
	}
	if req.subresource == "log" && r.Method != http.MethodGet {
		writeError(w, methodNotAllowed(r.Method, req))
		return
	}
	obj, ok := s.store.Get(req.kind, req.namespace, req.name)
	if !ok {
		writeError(w, apierrors.NewNotFound(corev1.Resource("pods"), req.name))
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	q := r.URL.Query()
	container := ""
	if req.subresource != "portforward" {
		var err error
		if container, err = streamContainer(pod, q.Get("container")); err != nil {
			writeError(w, err)
			return
		}
	}
	loc, err := s.agentURL(pod.Spec.NodeName)
	if err != nil {
		writeError(w, err)
		return
	}
	switch req.subresource {
	case "log":
		loc.Path = agentapi.ContainerLogsPath(pod.Namespace, pod.Name, container)
		loc.RawQuery = agentapi.LogQuery(q).Encode()
		s.proxyToAgent(w, r, loc, false)
	case "portforward":
		// The client and the agent negotiate the protocol (SPDY, or
		// WebSocket with the ports in the query).
		loc.Path = agentapi.PortForwardPath(pod.Namespace, pod.Name)
		loc.RawQuery = r.URL.RawQuery
		s.proxyToAgent(w, r, loc, true)
	default:
		loc.Path = agentapi.ExecPath(pod.Namespace, pod.Name, container)
		loc.RawQuery = agentapi.ExecQuery(q).Encode()
		s.proxyToAgent(w, r, loc, true)
	}
}

// nodeProxy serves nodes/{name}/proxy/{path} by proxying to that node's
// agent.
func (s *Server) nodeProxy(w http.ResponseWriter, r *http.Request, req *request) {
	loc, err := s.agentURL(req.name)
	if err != nil {
		writeError(w, err)
		return
	}
	loc.Path = req.proxyPath
	if loc.Path == "" {
		loc.Path = "/"
	}
	loc.RawQuery = r.URL.RawQuery
	s.proxyToAgent(w, r, loc, false)
}

// proxyToAgent proxies r to loc; upgradeRequired refuses plain requests.
func (s *Server) proxyToAgent(w http.ResponseWriter, r *http.Request, loc *url.URL, upgradeRequired bool) {
	h := proxy.NewUpgradeAwareHandler(loc, agentTransport(s), false, upgradeRequired, proxyResponder{s})
	h.UseLocationHost = true
	h.FlushInterval = -1 // stream logs as they come
	out := r.Clone(r.Context())
	out.Header.Del("Authorization")
	out.URL.RawQuery = loc.RawQuery
	h.ServeHTTP(w, out)
}

// proxyResponder reports proxy errors as Kubernetes statuses.
type proxyResponder struct{ s *Server }

func (p proxyResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	p.s.log.Warn("api: node agent proxy", "path", r.URL.Path, "err", err)
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		err = apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach the node agent: %v", err))
	}
	writeError(w, err)
}

// agentURL returns the base URL of a node's agent.
func (s *Server) agentURL(nodeName string) (*url.URL, error) {
	kind, _ := proto.KindForResource("", "nodes")
	obj, ok := s.store.Get(kind, "", nodeName)
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), nodeName)
	}
	node := obj.(*corev1.Node)
	host := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no InternalIP or ExternalIP address", nodeName))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = agentapi.DefaultPort
	}
	return &url.URL{Scheme: agentScheme(s), Host: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// streamContainer picks the container a log or exec request is for, like
// kube-apiserver: the named one, the only one, or the default-container
// annotation's.
func streamContainer(pod *corev1.Pod, name string) (string, error) {
	var names, initNames []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		initNames = append(initNames, c.Name)
	}
	has := func(n string) bool {
		for _, x := range append(append([]string{}, names...), initNames...) {
			if x == n {
				return true
			}
		}
		return false
	}
	switch {
	case name != "" && has(name):
		return name, nil
	case name != "":
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	case len(names) == 1:
		return names[0], nil
	case has(pod.Annotations[defaultContainerAnnotation]):
		return pod.Annotations[defaultContainerAnnotation], nil
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))
	if len(initNames) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(initNames, " "))
	}
	return "", apierrors.NewBadRequest(msg)
}
