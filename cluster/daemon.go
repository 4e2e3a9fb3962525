package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/proto"
)

// Task is a long-running part of the daemon that talks to the API through
// the given client configuration and stops when ctx ends.
type Task func(ctx context.Context, rc *rest.Config) error

// DaemonConfig configures the `skiff agent` daemon.
type DaemonConfig struct {
	// Node configures Raft and the store (server role only).
	Node Config
	// APIAddr is the TCP address the API listens on.
	APIAddr string
	// Secure, when set, runs the node as a member of a secured cluster:
	// HTTPS with client certificates, mutual-TLS Raft, encrypted gossip,
	// autopilot and node lifecycle. Nil runs an insecure single node
	// (plain HTTP on APIAddr) for development and tests.
	Secure *SecureConfig
	// API adjusts the API server configuration (tests use it).
	API func(*api.Config)
	// LeaderTasks run only while this node is the Raft leader.
	LeaderTasks []Task
	// NodeTasks run on every node for the daemon's whole life (the pod
	// agent), with a client that authenticates as this node.
	NodeTasks []Task
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// SecureConfig is the cluster membership part of a daemon.
type SecureConfig struct {
	DataDir   string
	Settings  *Settings
	TLS       *TLSBundle
	GossipKey []byte
	// ClusterKey seals Secret data at rest (servers); nil leaves it clear.
	ClusterKey []byte
	Autopilot  AutopilotConfig
	Lifecycle  LifecycleConfig
	// LeaveOnTerminate makes a clean stop leave the cluster for good.
	LeaveOnTerminate bool
}

// DefaultDaemonConfig returns the defaults of a single-node daemon.
func DefaultDaemonConfig() DaemonConfig {
	return DaemonConfig{Node: DefaultConfig(), APIAddr: "127.0.0.1:6443"}
}

// Validate checks the configuration.
func (c DaemonConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		return fmt.Errorf("cluster: API address %q: %w", c.APIAddr, err)
	}
	if c.Secure != nil {
		if c.Secure.TLS == nil || c.Secure.Settings == nil {
			return errors.New("cluster: a secure daemon needs its TLS identity and settings")
		}
		if c.Secure.Settings.Role == RoleWorker {
			return nil // workers run no Raft
		}
	}
	return c.Node.Validate()
}

// Daemon is one running skiff agent.
type Daemon struct {
	cfg    DaemonConfig
	log    *slog.Logger
	node   *Node   // nil on workers
	gossip *Gossip // nil when insecure
	api    *api.Server
	inproc *api.InProcessListener
	ln     net.Listener
	join   *joinServer

	peerClient *http.Client // mutual TLS to other nodes' internal endpoints
	stop       context.CancelFunc
	left       sync.Once
}

// NewDaemon opens the data dir, starts Raft and gossip, and binds the API.
func NewDaemon(cfg DaemonConfig) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, inproc: api.NewInProcessListener()}
	if d.log == nil {
		d.log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: API listener: %w", err)
	}
	d.ln = ln
	if err := d.open(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) open() error {
	cfg := d.cfg
	if cfg.Secure != nil {
		if err := d.openGossip(); err != nil {
			return err
		}
		if cfg.Secure.Settings.Role == RoleWorker {
			return nil
		}
		cfg.Node.TLS = cfg.Secure.TLS
	}
	cfg.Node.Logger = d.log
	var err error
	if d.node, err = New(cfg.Node); err != nil {
		return err
	}
	ac := api.DefaultConfig()
	ac.Store = d.node.Store()
	ac.Proposer = d.node
	ac.Logger = d.log
	ac.Ready = d.ready
	if cfg.Secure != nil {
		ac.AgentTransport = cfg.Secure.TLS.AgentTransport()
		if len(cfg.Secure.ClusterKey) > 0 {
			if ac.SecretCipher, err = api.NewAESGCM(cfg.Secure.ClusterKey); err != nil {
				return err
			}
		}
	}
	if cfg.API != nil {
		cfg.API(&ac)
	}
	if d.api, err = api.New(ac); err != nil {
		return err
	}
	if d.join != nil {
		d.join.store = d.node.Store()
		d.join.cipher = ac.SecretCipher
		d.join.clusterKey = cfg.Secure.ClusterKey
	}
	return nil
}

func (d *Daemon) openGossip() error {
	s := d.cfg.Secure.Settings
	meta := NodeMeta{Role: s.Role, API: net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.APIPort)),
		Agent: net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.AgentPort))}
	if s.Role == RoleServer {
		meta.Raft = net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.RaftPort))
	}
	g, err := NewGossip(GossipConfig{NodeName: s.NodeName, BindAddr: "0.0.0.0", BindPort: s.GossipPort, AdvertiseAddr: s.AdvertiseIP,
		Key: d.cfg.Secure.GossipKey, Meta: meta, TimingMultiplier: s.TimingMultiplier, Logger: d.log})
	if err != nil {
		return err
	}
	d.gossip = g
	// No keep-alives: a pooled connection could stay piped to another
	// server by a peer's passthrough long after that peer can answer.
	d.peerClient = &http.Client{Transport: &http.Transport{TLSClientConfig: d.cfg.Secure.TLS.ClientConfig(), DisableKeepAlives: true,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	if ca := d.cfg.Secure.TLS.CA; ca.Key != nil {
		d.join = &joinServer{ca: ca, gossipKey: d.cfg.Secure.GossipKey, settings: *s, gossip: g, now: time.Now, log: d.log}
	}
	return nil
}

func (d *Daemon) close() {
	if d.node != nil {
		d.node.Shutdown()
	}
	if d.gossip != nil {
		d.gossip.Shutdown()
	}
	d.ln.Close()
}

// Node returns the daemon's control-plane node (nil on workers).
func (d *Daemon) Node() *Node { return d.node }

// Gossip returns the membership (nil on an insecure single node).
func (d *Daemon) Gossip() *Gossip { return d.gossip }

// APIAddr returns the address the API listens on.
func (d *Daemon) APIAddr() net.Addr { return d.ln.Addr() }

// ClientConfig returns an in-process client configuration for the API.
func (d *Daemon) ClientConfig(userAgent string) *rest.Config { return d.inproc.RESTConfig(userAgent) }

// ready is the API's readiness: a leader is known and the default
// namespace exists.
func (d *Daemon) ready() error {
	if addr, _ := d.node.raft.LeaderWithID(); addr == "" {
		return errors.New("no raft leader")
	}
	if d.node.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := d.node.WaitLeaderReady(ctx); err != nil {
			return errors.New("the leader is still applying its log")
		}
	} else if d.node.store.AppliedIndex() < d.node.raft.CommitIndex() {
		return errors.New("this replica is catching up")
	}
	nsKind, _ := proto.KindForResource("", "namespaces")
	if _, ok := d.node.Store().Get(nsKind, "", metav1.NamespaceDefault); !ok {
		return errors.New("default namespace not created yet")
	}
	return nil
}

// nodeClientConfig is how this node's own tasks reach the API: in-process
// when insecure; otherwise over TLS to the local API port as this node, so
// the node authorizer applies and the local listener fails over for it.
func (d *Daemon) nodeClientConfig() *rest.Config {
	if d.cfg.Secure == nil {
		return d.ClientConfig("skiff-agent")
	}
	b := d.cfg.Secure.TLS
	certPEM, keyPEM := b.CertPEM, b.KeyPEM
	_, port, _ := net.SplitHostPort(d.ln.Addr().String())
	return &rest.Config{
		Host:      "https://127.0.0.1:" + port,
		UserAgent: "skiff-agent",
		QPS:       50, Burst: 100,
		TLSClientConfig: rest.TLSClientConfig{CAData: b.CA.CertPEM, CertData: certPEM, KeyData: keyPEM, ServerName: APIServerName},
	}
}

// handler builds the TLS listener's handler chain.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	if d.join != nil {
		mux.HandleFunc("GET "+PathCACert, d.join.serveCACert)
		mux.HandleFunc("POST "+PathJoin, d.join.serveJoin)
	}
	mux.HandleFunc("GET "+PathMembers, d.serveMembers)
	mux.HandleFunc("GET "+PathRaftPeers, d.serveRaftPeers)
	mux.HandleFunc("GET "+PathRaftState, d.serveRaftState)
	mux.HandleFunc("POST "+PathRemoveServer, d.serveRemoveServer)
	mux.HandleFunc("/debug/pprof/", pprof.Index) // admins only (the gate)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	rt := newRouter(d.node, d.gossip, d.cfg.Secure.TLS, d.api, d.log)
	rt.apiPort = d.cfg.Secure.Settings.APIPort
	mux.Handle("/", rt)
	return &gate{store: d.node.Store(), self: d.cfg.Secure.Settings.NodeName, next: mux}
}

// Run serves until ctx ends, then stops everything it started.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.stop = cancel
	var wg sync.WaitGroup
	errc := make(chan error, 4+len(d.cfg.NodeTasks))
	d.startServing(ctx, &wg, errc)
	d.startTasks(ctx, &wg, errc)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if d.cfg.Secure != nil && d.cfg.Secure.LeaveOnTerminate && err == nil {
		d.leaveOnce()
	}
	cancel()
	wg.Wait()
	d.inproc.Close()
	d.close()
	return err
}

func (d *Daemon) startServing(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	serve := func(ln net.Listener, h http.Handler) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			go func() { <-ctx.Done(); hs.Close() }()
			if err := hs.Serve(ln); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("cluster: API server: %w", err)
			}
		}()
	}
	if d.api != nil {
		serve(d.inproc, d.api)
	}
	switch {
	case d.cfg.Secure == nil:
		serve(d.ln, newRouter(d.node, nil, nil, d.api, d.log))
	case d.node == nil: // worker: every connection goes to a server
		pl := &passthroughListener{Listener: d.ln, canServe: func() bool { return false }, targets: d.apiServers, log: d.log}
		serve(tls.NewListener(pl, d.cfg.Secure.TLS.ServerConfig(false)), http.HandlerFunc(noServer))
	default:
		pl := &passthroughListener{Listener: d.ln, canServe: d.canServe, targets: d.apiServers, log: d.log}
		serve(tls.NewListener(pl, d.cfg.Secure.TLS.ServerConfig(false)), d.handler())
	}
	d.log.Info("skiff: API listening", "addr", d.ln.Addr().String(), "secure", d.cfg.Secure != nil)
}

func (d *Daemon) startTasks(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	if d.gossip != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.serveControl(ctx); err != nil {
				d.log.Warn("control socket stopped", "err", err)
			}
		}()
		// Joining may wait on dead addresses for seconds: do it aside, and
		// keep the metadata (a replica or not) current meanwhile.
		go func() {
			if err := d.gossip.Join(d.joinAddrs()); err != nil {
				d.log.Warn("gossip: could not reach any known member yet", "err", err)
			}
		}()
		wg.Add(1)
		go func() { defer wg.Done(); d.maintainMembership(ctx) }()
	}
	if d.node != nil {
		for _, t := range d.leaderTasks() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.node.RunLeaderTasks(ctx, func(lctx context.Context) {
					if err := t(lctx, d.ClientConfig("skiff-controllers")); err != nil && lctx.Err() == nil {
						d.log.Error("skiff: leader task failed", "err", err)
					}
				})
			}()
		}
	}
	for _, t := range d.cfg.NodeTasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t(ctx, d.nodeClientConfig()); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
}

// leaderTasks are the configured ones plus, in a secure cluster, autopilot,
// node lifecycle and the first join token.
func (d *Daemon) leaderTasks() []Task {
	tasks := append([]Task{}, d.cfg.LeaderTasks...)
	if d.cfg.Secure == nil {
		return tasks
	}
	sc := d.cfg.Secure
	return append(tasks,
		func(ctx context.Context, _ *rest.Config) error {
			ap := sc.Autopilot
			ap.CaughtUp = func(id string) bool { return d.caughtUp(ctx, id) }
			d.node.RunAutopilot(ctx, d.gossip, ap)
			return nil
		},
		func(ctx context.Context, rc *rest.Config) error {
			lc := sc.Lifecycle
			lc.Roles = d.raftRoles
			return RunNodeLifecycle(ctx, rc, d.gossip, lc, d.log)
		},
		func(ctx context.Context, rc *rest.Config) error {
			return createBootstrapToken(ctx, rc, sc.DataDir, d.log)
		},
	)
}

// noServer answers on a worker when no server can be reached.
func noServer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	writeStatus(w, apierrors.NewServiceUnavailable("no skiff server is reachable from this worker right now"))
}

// leaveOnce leaves the cluster at most once.
func (d *Daemon) leaveOnce() { d.left.Do(d.leave) }
