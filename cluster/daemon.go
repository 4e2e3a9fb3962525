package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/proto"
)

// Task is a long-running part of the daemon that talks to the API through
// the given client configuration and stops when ctx ends.
type Task func(ctx context.Context, rc *rest.Config) error

// DaemonConfig configures the `skiff agent` daemon: a control-plane Node,
// the API server in front of it, and the tasks that run on it.
type DaemonConfig struct {
	// Node configures Raft and the store.
	Node Config
	// APIAddr is the TCP address the API listens on.
	APIAddr string
	// API adjusts the API server configuration (tests use it).
	API func(*api.Config)
	// LeaderTasks run only while this node is the Raft leader
	// (controllers, scheduler).
	LeaderTasks []Task
	// NodeTasks run on every node for the daemon's whole life (the pod
	// agent).
	NodeTasks []Task
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
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
	return c.Node.Validate()
}

// Daemon is one running skiff agent.
type Daemon struct {
	cfg    DaemonConfig
	log    *slog.Logger
	node   *Node
	api    *api.Server
	inproc *api.InProcessListener
	ln     net.Listener
}

// NewDaemon opens the data dir, starts Raft and binds the API address.
func NewDaemon(cfg DaemonConfig) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, inproc: api.NewInProcessListener()}
	if d.log == nil {
		d.log = slog.Default()
	}
	cfg.Node.Logger = d.log
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: API listener: %w", err)
	}
	d.ln = ln
	if d.node, err = New(cfg.Node); err != nil {
		ln.Close()
		return nil, err
	}
	ac := api.DefaultConfig()
	ac.Store = d.node.Store()
	ac.Proposer = d.node
	ac.Logger = d.log
	ac.Ready = d.ready
	if cfg.API != nil {
		cfg.API(&ac)
	}
	if d.api, err = api.New(ac); err != nil {
		d.node.Shutdown()
		ln.Close()
		return nil, err
	}
	return d, nil
}

// Node returns the daemon's control-plane node.
func (d *Daemon) Node() *Node { return d.node }

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
	nsKind, _ := proto.KindForResource("", "namespaces")
	if _, ok := d.node.Store().Get(nsKind, "", metav1.NamespaceDefault); !ok {
		return errors.New("default namespace not created yet")
	}
	return nil
}

// Run serves until ctx ends, then stops everything it started.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2+len(d.cfg.NodeTasks))
	serve := func(ln net.Listener) {
		defer wg.Done()
		if err := d.api.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("cluster: API server: %w", err)
		}
	}
	wg.Add(2)
	go serve(d.ln)
	go serve(d.inproc)
	d.log.Info("skiff: API listening", "addr", d.ln.Addr().String(), "node", d.cfg.Node.NodeName)
	for _, t := range d.cfg.LeaderTasks {
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
	for _, t := range d.cfg.NodeTasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t(ctx, d.ClientConfig("skiff-agent")); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	d.inproc.Close()
	if serr := d.node.Shutdown(); err == nil {
		err = serr
	}
	return err
}
