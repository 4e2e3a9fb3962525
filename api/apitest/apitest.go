// Package apitest runs a real skiff API server in-process for tests: the
// same HTTP handlers and store as production, with writes applied directly
// to the store instead of through Raft.
package apitest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// DirectProposer applies commands straight to a store with increasing
// indexes, standing in for Raft on a single node. Safe for concurrent use.
type DirectProposer struct {
	Store *fsm.Store

	mu    sync.Mutex
	index uint64
}

// Propose applies cmd at the next index.
func (p *DirectProposer) Propose(_ context.Context, cmd *proto.Command) (proto.Object, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index == 0 {
		p.index = p.Store.AppliedIndex()
	}
	p.index++
	res := p.Store.Apply(p.index, cmd.Encode())
	return res.Object, res.Err
}

// Server is a running test API server.
type Server struct {
	Store  *fsm.Store
	API    *api.Server
	HTTP   *httptest.Server
	Config *rest.Config
	Client kubernetes.Interface
}

// New starts a server with the default and kube-system namespaces created,
// and stops it when the test ends. Options may adjust the API config.
func New(t testing.TB, opts ...func(*api.Config)) *Server {
	t.Helper()
	cfg := api.DefaultConfig()
	WithStoreConfig(func(*fsm.Config) {})(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Store == nil {
		t.Fatal("apitest: WithStoreConfig failed")
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatalf("api: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		// Watches stay open until their client goes; cut them so Close
		// does not wait for watches a test forgot to stop.
		hs.CloseClientConnections()
		hs.Close()
	})
	rc := &rest.Config{Host: hs.URL, QPS: -1}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	s := &Server{Store: cfg.Store, API: srv, HTTP: hs, Config: rc, Client: client}
	for _, ns := range []string{"default", "kube-system"} {
		s.CreateNamespace(t, ns)
	}
	return s
}

// WithStoreConfig gives the server a fresh store built from the default
// store configuration changed by adjust (a small watch history, a small
// service CIDR), with a DirectProposer writing to it.
func WithStoreConfig(adjust func(*fsm.Config)) func(*api.Config) {
	return func(c *api.Config) {
		sc := fsm.DefaultConfig()
		adjust(&sc)
		store, err := fsm.NewStore(sc)
		if err != nil {
			c.Store = nil
			return
		}
		c.Store = store
		c.Proposer = &DirectProposer{Store: store}
	}
}

// WithClock makes the server read the time from now (for stable ages and
// timestamps in tests).
func WithClock(now func() time.Time) func(*api.Config) {
	return func(c *api.Config) { c.Now = now }
}
