package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api"
)

const (
	// PathReadIndex answers a follower's read-index request (servers only).
	PathReadIndex = "/skiff/v1/internal/readindex"
	// headerAppliedIndex tells a forwarding server how far the leader had
	// applied when it answered, so it can wait to serve read-your-writes.
	headerAppliedIndex = "X-Skiff-Applied-Index"
	readIndexTimeout   = 5 * time.Second
)

// router sits behind the gate on a server that holds a replica: writes go
// to the leader, "most recent" reads first make sure the local replica has
// caught up with the leader (a read index), everything else is served here.
type router struct {
	node    *Node
	gossip  *Gossip
	next    http.Handler
	log     *slog.Logger
	client  *http.Client
	apiPort int // this cluster's API port, for leaders gossip has not described

	verify    coalescer // leader: confirm leadership
	readIndex coalescer // follower: ask the leader for its applied index
}

// newRouter builds the router; g and b are nil on an insecure single node,
// which is always its own leader.
func newRouter(n *Node, g *Gossip, b *TLSBundle, next http.Handler, log *slog.Logger) *router {
	rt := &router{node: n, gossip: g, next: next, log: log}
	if b != nil {
		rt.client = &http.Client{Transport: &http.Transport{TLSClientConfig: b.ClientConfig(), MaxIdleConnsPerHost: 64,
			DialContext:  (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	}
	rt.verify.fn = n.ReadIndex
	rt.readIndex.fn = rt.fetchReadIndex
	return rt
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathReadIndex {
		rt.serveReadIndex(w, r)
		return
	}
	info, isResource := api.ParseRequestInfo(r)
	switch {
	case !isResource:
		rt.next.ServeHTTP(w, r)
	case isWrite(r, info):
		rt.write(w, r)
	default:
		if needsBarrier(r, info) {
			if err := rt.barrier(r.Context()); err != nil {
				writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot serve a consistent read: %v", err)))
				return
			}
		}
		rt.next.ServeHTTP(w, r)
	}
}

// isWrite reports whether a request changes stored state (and so must be
// handled by the leader). Streams to agents are served locally.
func isWrite(r *http.Request, info api.RequestInfo) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch info.Subresource {
	case "exec", "attach", "portforward", "log", "proxy":
		return false
	}
	return true
}

// needsBarrier: a get, list or watch without a resourceVersion asks for the
// most recent state, which a follower may not have applied yet.
func needsBarrier(r *http.Request, info api.RequestInfo) bool {
	if info.Subresource != "" && info.Subresource != "status" && info.Subresource != "scale" {
		return false
	}
	return r.URL.Query().Get("resourceVersion") == ""
}

// catchUp makes a leader's replica hold everything committed so far, so
// the API's precondition checks never see older state than a client did.
func (rt *router) catchUp(ctx context.Context) error {
	idx, err := rt.node.WriteIndex(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	return rt.node.store.WaitApplied(ctx, idx)
}

// barrier makes the local replica at least as new as every write the
// leader had acknowledged when the read arrived.
func (rt *router) barrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		var (
			idx uint64
			err error
		)
		if rt.node.IsLeader() {
			idx, err = rt.verify.Do(ctx)
		} else {
			idx, err = rt.readIndex.Do(ctx)
		}
		if err == nil {
			return rt.node.store.WaitApplied(ctx, idx)
		}
		// No leader yet (an election is running): wait for one.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (rt *router) serveReadIndex(w http.ResponseWriter, r *http.Request) {
	if !rt.node.IsLeader() {
		writeStatus(w, apierrors.NewServiceUnavailable("not the leader"))
		return
	}
	idx, err := rt.verify.Do(r.Context())
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	writeJSONBody(w, map[string]uint64{"index": idx})
}

func (rt *router) fetchReadIndex(ctx context.Context) (uint64, error) {
	leader, err := rt.leaderAPI()
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+leader+PathReadIndex, nil)
	resp, err := rt.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct{ Index uint64 }
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("leader answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out); err != nil {
		return 0, err
	}
	return out.Index, nil
}

// ErrNoLeader means no Raft leader is known right now.
var ErrNoLeader = errors.New("no raft leader is known")

// leaderAPI returns the leader's API address: from gossip, or else the
// host of its Raft address at this cluster's API port.
func (rt *router) leaderAPI() (string, error) {
	addr, id := rt.node.raft.LeaderWithID()
	if id == "" || rt.gossip == nil {
		return "", ErrNoLeader
	}
	if m, ok := rt.gossip.Member(string(id)); ok && m.Meta.API != "" {
		return m.Meta.API, nil
	}
	host, _, err := net.SplitHostPort(string(addr))
	if err != nil || rt.apiPort == 0 {
		return "", fmt.Errorf("leader %s has no known API address", id)
	}
	return net.JoinHostPort(host, strconv.Itoa(rt.apiPort)), nil
}

// Headers between servers on a forwarded write.
const (
	// headerForwarded marks a write a server forwarded to the leader; the
	// receiver never forwards it again.
	headerForwarded = "X-Skiff-Forwarded"
	// headerNotLeader marks the receiver's refusal because it no longer
	// leads: nothing was applied, so the sender may retry elsewhere.
	headerNotLeader = "X-Skiff-Not-Leader"
)

var errNotLeaderThere = errors.New("cluster: the forwarding target is no longer the leader")

func tooLargeBody() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusRequestEntityTooLarge,
		Reason: metav1.StatusReasonRequestEntityTooLarge, Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", maxAuthzBody)}}
}

// leaderWait is how long a request waits for a leader (an election) before
// it is answered with a retryable 503.
const leaderWait = 5 * time.Second

// write serves a write on the leader, or forwards it there. While there is
// no reachable leader (an election is running) the request waits for one,
// so a client sees a failover as latency rather than as an error.
func (rt *router) write(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAuthzBody+1))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err)))
		return
	}
	if len(body) > maxAuthzBody {
		writeStatus(w, tooLargeBody())
		return
	}
	forwarded := r.Header.Get(headerForwarded) != ""
	deadline := time.Now().Add(leaderWait)
	failed, failedAt := "", time.Time{}
	for {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !rt.node.IsLeader() && forwarded {
			// Sent here as to the leader, but leadership has moved: never
			// forward a second time (no loops); the sender will retry.
			w.Header().Set(headerNotLeader, "1")
			w.Header().Set("Retry-After", "1")
			writeStatus(w, apierrors.NewServiceUnavailable("this node is no longer the Raft leader"))
			return
		}
		if rt.node.IsLeader() {
			if err := rt.catchUp(r.Context()); err == nil {
				rt.next.ServeHTTP(&appliedIndexWriter{ResponseWriter: w, n: rt.node}, r)
				return
			}
		} else if leader, err := rt.leaderAPI(); err == nil && (leader != failed || time.Since(failedAt) > 200*time.Millisecond) {
			if rt.forwardOnce(w, r, leader) {
				return
			}
			failed, failedAt = leader, time.Now() // not reachable (yet): wait, then try again
		}
		if time.Now().After(deadline) || r.Context().Err() != nil {
			w.Header().Set("Retry-After", "1")
			writeStatus(w, apierrors.NewServiceUnavailable("no reachable Raft leader; the cluster may be electing one or have lost its quorum"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forwardOnce proxies a write to leader on behalf of the caller, then waits
// until the local replica has applied it (read-your-writes here). It
// returns false, having written nothing, when the leader could not even be
// dialed; any other failure leaves the outcome unknown and is answered.
func (rt *router) forwardOnce(w http.ResponseWriter, r *http.Request, leader string) bool {
	id, _ := CallerFrom(r.Context())
	target := &url.URL{Scheme: "https", Host: leader}
	dialFailed := false
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = leader
			pr.Out.Header.Set(headerForwarded, "1")
			pr.Out.Header.Set(headerForwardedUser, id.User)
			pr.Out.Header.Del(headerForwardedGroup)
			for _, g := range id.Groups {
				pr.Out.Header.Add(headerForwardedGroup, g)
			}
		},
		Transport: rt.client.Transport,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(headerNotLeader) != "" {
				return errNotLeaderThere
			}
			if idx, err := strconv.ParseUint(resp.Header.Get(headerAppliedIndex), 10, 64); err == nil {
				ctx, cancel := context.WithTimeout(r.Context(), readIndexTimeout)
				defer cancel()
				rt.node.store.WaitApplied(ctx, idx)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, errNotLeaderThere) {
				dialFailed = true // nothing was applied there
				return
			}
			rt.log.Warn("forward: lost the leader mid-request", "leader", leader, "err", err)
			writeStatus(w, apierrors.NewTimeoutError(fmt.Sprintf("lost the connection to the leader at %s; the write's outcome is unknown: %v", leader, err), 0))
		},
	}
	proxy.ServeHTTP(w, r)
	return !dialFailed
}

// appliedIndexWriter stamps the leader's applied index on write responses.
type appliedIndexWriter struct {
	http.ResponseWriter
	n    *Node
	done bool
}

func (a *appliedIndexWriter) WriteHeader(code int) {
	if !a.done {
		a.done = true
		a.Header().Set(headerAppliedIndex, strconv.FormatUint(a.n.store.AppliedIndex(), 10))
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *appliedIndexWriter) Write(b []byte) (int, error) {
	if !a.done {
		a.WriteHeader(http.StatusOK)
	}
	return a.ResponseWriter.Write(b)
}

func (a *appliedIndexWriter) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
