package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeUserAgent is what HTTP probes send, like the kubelet's.
const probeUserAgent = "kube-probe/1.37"

// maxProbeOutput bounds what a probe reads of a body or command output.
const maxProbeOutput = 10 << 10

// Probes and the pod network: there is no pod IP before CNI, so HTTP and
// TCP probes connect to 127.0.0.1 (or the probe's host) from inside the
// pod's network namespace (dialInNetNS), which is also where they will
// connect to the pod IP once CNI assigns one. Exec probes run through the
// runtime like `skiff exec`.

// runProbe runs one probe against a container.
func (a *Agent) runProbe(ctx context.Context, t probeTarget, p *corev1.Probe) (bool, string) {
	switch {
	case p.Exec != nil:
		return a.execProbe(ctx, t, p.Exec)
	case p.HTTPGet != nil:
		return httpProbe(ctx, t, p.HTTPGet)
	case p.TCPSocket != nil:
		return tcpProbe(ctx, t, p.TCPSocket)
	case p.GRPC != nil:
		return grpcProbe(ctx, t, p.GRPC)
	}
	return false, "probe has no handler"
}

// execProbe passes when the command exits 0 within the timeout.
func (a *Agent) execProbe(ctx context.Context, t probeTarget, e *corev1.ExecAction) (bool, string) {
	var out bytes.Buffer
	w := &capWriter{w: &out, left: maxProbeOutput}
	code, err := a.rt.Exec(ctx, t.id, ExecSpec{Cmd: e.Command, Stdout: w, Stderr: w})
	switch {
	case ctx.Err() != nil:
		return false, "command timed out"
	case err != nil:
		return false, err.Error()
	case code != 0:
		return false, fmt.Sprintf("command exited with %d: %s", code, strings.TrimSpace(out.String()))
	}
	return true, ""
}

// httpProbe passes on a status in [200, 400).
func httpProbe(ctx context.Context, t probeTarget, h *corev1.HTTPGetAction) (bool, string) {
	addr, err := probeAddr(t, h.Host, h.Port)
	if err != nil {
		return false, err.Error()
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u := &url.URL{Scheme: scheme, Host: addr, Path: h.Path}
	if i := strings.IndexByte(h.Path, '?'); i >= 0 {
		u.Path, u.RawQuery = h.Path[:i], h.Path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialInNetNS(ctx, t.netNS, network, addr)
			},
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as the kubelet: probes do not verify
			DisableKeepAlives: true,
		},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 10 || r.URL.Host != addr {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeOutput))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return true, ""
}

// tcpProbe passes when a connection opens.
func tcpProbe(ctx context.Context, t probeTarget, s *corev1.TCPSocketAction) (bool, string) {
	addr, err := probeAddr(t, s.Host, s.Port)
	if err != nil {
		return false, err.Error()
	}
	conn, err := dialInNetNS(ctx, t.netNS, "tcp", addr)
	if err != nil {
		return false, err.Error()
	}
	conn.Close()
	return true, ""
}

// grpcProbe passes when the gRPC health service answers SERVING for the
// probe's service (plaintext, like the kubelet's).
func grpcProbe(ctx context.Context, t probeTarget, g *corev1.GRPCAction) (bool, string) {
	addr, err := probeAddr(t, "", intstr.FromInt32(g.Port))
	if err != nil {
		return false, err.Error()
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(probeUserAgent),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialInNetNS(ctx, t.netNS, "tcp", addr)
		}))
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			return false, fmt.Sprintf("service %s does not implement the grpc health protocol (grpc.health.v1.Health)", addr)
		}
		return false, fmt.Sprintf("failed to connect service %q: %v", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus())
	}
	return true, ""
}

// errProbeHost: the probe names a host, which would need name resolution.
var errProbeHost = errors.New("probe host must be an IP address")

// probeAddr returns host:port for a network probe: the probe's host (an
// IP) or the pod's loopback, and the port by number or container port name.
func probeAddr(t probeTarget, host string, port intstr.IntOrString) (string, error) {
	if host == "" {
		host = "127.0.0.1"
		if t.netNS == "" && t.pod != nil && t.pod.Status.PodIP != "" {
			host = t.pod.Status.PodIP
		}
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("%w, not %q", errProbeHost, host)
	}
	n, err := resolvePort(port, t.container)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// resolvePort turns a probe port (number or container port name) into a
// number.
func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal <= 0 || port.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	if c != nil {
		for _, p := range c.Ports {
			if p.Name == port.StrVal {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("port %q not found in the container's ports", port.StrVal)
}

// capWriter keeps the first left bytes and drops the rest without error.
type capWriter struct {
	w    io.Writer
	left int
}

func (c *capWriter) Write(p []byte) (int, error) {
	n := len(p)
	if c.left > 0 {
		keep := p[:min(len(p), c.left)]
		c.left -= len(keep)
		if _, err := c.w.Write(keep); err != nil {
			return 0, err
		}
	}
	return n, nil
}
