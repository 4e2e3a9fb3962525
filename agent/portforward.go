package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

// servePortForward forwards connections to ports of a pod, like the
// kubelet: each stream the client opens (SPDY or WebSocket) becomes a TCP
// connection to localhost:PORT inside the pod's network namespace, so a
// port works whether the pod listens on loopback or on all addresses.
func (a *Agent) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	obj, ok, err := a.podInformer.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if !ok {
		writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), name))
		return
	}
	pod := obj.(*corev1.Pod)
	netNS, err := a.podNetNS(r.Context(), pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	portforward.ServePortForward(w, r, podPorts{netNS: netNS}, pod.Name, string(pod.UID), opts,
		a.cfg.StreamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// podNetNS is the network namespace of a running pod ("" for host
// network).
func (a *Agent) podNetNS(ctx context.Context, pod *corev1.Pod) (string, error) {
	if pod.Spec.HostNetwork {
		return "", nil
	}
	sbs, err := a.rt.ListSandboxes(ctx)
	if err != nil {
		return "", apierrors.NewInternalError(err)
	}
	for _, sb := range sbs {
		if sb.PodUID == string(pod.UID) && sb.NetNSPath != "" {
			return sb.NetNSPath, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s is not running", pod.Name))
}

// podPorts connects forwarded streams to ports in one network namespace.
type podPorts struct{ netNS string }

// PortForward implements portforward.PortForwarder; it returns when the
// pod side of the connection is done.
func (p podPorts) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	conn, err := dialInNetNS(ctx, p.netNS, "tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside the pod's network namespace: %w", port, err)
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the client is done sending
		}
	}()
	if _, err := io.Copy(stream, conn); err != nil {
		return fmt.Errorf("copying from localhost:%d: %w", port, err)
	}
	return nil
}
