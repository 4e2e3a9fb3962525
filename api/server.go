package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// Proposer replicates a command and returns the state machine's result. It
// is called concurrently from many request goroutines; implementations must
// be safe for that. Errors that are Kubernetes status errors (from the state
// machine) are passed to the client as they are; any other error becomes a
// 500 or, for ErrNotLeader-like conditions, whatever the implementation maps
// them to.
type Proposer interface {
	Propose(ctx context.Context, cmd *proto.Command) (proto.Object, error)
}

// Config configures a Server.
type Config struct {
	// Store is the local replica that reads are served from.
	Store *fsm.Store
	// Proposer replicates writes.
	Proposer Proposer
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies (413 above it).
	MaxBodyBytes int64
	// ConsistentReadTimeout bounds how long a read waits for the local
	// replica to catch up to a requested resourceVersion.
	ConsistentReadTimeout time.Duration
	// WatchTimeout is the longest a watch stays open when the client
	// does not ask for less.
	WatchTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Ready reports whether the server should answer /readyz with ok.
	Ready func() error
	// Version is served at /version.
	Version version.Info
	// SecretCipher, when set, seals Secret data before it is proposed and
	// opens it on the way out (encryption at rest).
	SecretCipher SecretCipher
	// AgentTransport reaches node agents for logs, exec and node proxy;
	// nil means plain HTTP. With a TLSClientConfig, agents are dialed
	// over HTTPS with it.
	AgentTransport *http.Transport
}

// DefaultConfig returns the defaults; Store and Proposer must still be set.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:          3 << 20,
		ConsistentReadTimeout: 3 * time.Second,
		WatchTimeout:          30 * time.Minute,
		Version:               DefaultVersion(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("api: Store is required")
	case c.Proposer == nil:
		return errors.New("api: Proposer is required")
	case c.MaxBodyBytes <= 0:
		return errors.New("api: MaxBodyBytes must be positive")
	case c.WatchTimeout <= 0:
		return errors.New("api: WatchTimeout must be positive")
	}
	return nil
}

// Server is the HTTP API. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *fsm.Store
	mux   *http.ServeMux

	openapi openAPIDocs
	pages   *pageCache // the rest of paged lists
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AgentTransport == nil {
		cfg.AgentTransport = defaultAgentTransport()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: cfg.Store, mux: http.NewServeMux(), pages: newPageCache(cfg.Now)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.routes()
	return s, nil
}

// Handler returns the root HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// Serve serves HTTP on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutCtx)
		hs.Close()
		return nil
	}
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.cfg.Version) })
	s.mux.HandleFunc("GET /version/{$}", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.cfg.Version) })
	for _, p := range []string{"/healthz", "/livez"} {
		s.mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	}
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /api", s.apiVersions)
	s.mux.HandleFunc("GET /apis", s.apiGroups)
	s.mux.HandleFunc("GET /api/v1", s.resourceList)
	s.mux.HandleFunc("GET /apis/{group}", s.apiGroup)
	s.mux.HandleFunc("GET /apis/{group}/{version}", s.resourceList)
	s.mux.HandleFunc("GET /openapi/v2", s.openAPIV2)
	s.mux.HandleFunc("GET /openapi/v3", s.openAPIV3Discovery)
	s.mux.HandleFunc("GET /openapi/v3/", s.openAPIV3)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Write([]byte("ok"))
}

// ServeHTTP routes resource requests to their handlers and everything else
// to the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			writeError(w, apierrors.NewInternalError(fmt.Errorf("%v", v)))
		}
	}()
	isWatch := r.URL.Query().Get("watch")
	req, ok := parseResourcePath(r.Method, r.URL.Path, isWatch == "1" || isWatch == "true")
	if !ok {
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/apis/") {
			if _, pattern := s.mux.Handler(r); pattern == "" {
				writeError(w, notFoundPath(r.URL.Path))
				return
			}
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	s.serveResource(w, r, req)
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, req *request) {
	if req.subresource != "" {
		s.serveSubresource(w, r, req)
		return
	}
	switch req.verb {
	case "get":
		s.get(w, r, req)
	case "list":
		s.list(w, r, req)
	case "watch":
		s.watch(w, r, req)
	case "create":
		if req.name != "" || (req.kind.Namespaced && req.namespace == "") {
			writeError(w, methodNotAllowed(r.Method, req))
			return
		}
		s.create(w, r, req)
	case "update":
		s.update(w, r, req, mainResource)
	case "patch":
		s.patch(w, r, req, mainResource)
	case "delete":
		s.delete(w, r, req)
	case "deletecollection":
		s.deleteCollection(w, r, req)
	default:
		writeError(w, methodNotAllowed(r.Method, req))
	}
}

func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, req *request) {
	switch {
	case req.subresource == "status" && req.kind.HasStatus:
		switch req.verb {
		case "get":
			s.get(w, r, req)
		case "update":
			s.update(w, r, req, statusSubresource)
		case "patch":
			s.patch(w, r, req, statusSubresource)
		default:
			writeError(w, methodNotAllowed(r.Method, req))
		}
	case req.subresource == "scale" && req.kind.HasScale:
		s.scale(w, r, req)
	case req.subresource == "binding" && req.kind.Resource == "pods" && req.verb == "create":
		s.bind(w, r, req)
	case req.kind.Resource == "pods" && (req.subresource == "log" || req.subresource == "exec" || req.subresource == "attach" || req.subresource == "portforward"):
		s.podStream(w, r, req)
	case req.kind.Resource == "nodes" && req.subresource == "proxy":
		s.nodeProxy(w, r, req)
	case req.subresource == "finalize" && req.kind.Resource == "namespaces" && req.verb == "update":
		s.update(w, r, req, finalizeSubresource)
	default:
		writeError(w, apierrors.NewNotFound(req.kind.GroupVersionResource().GroupResource(), req.name+"/"+req.subresource))
	}
}

// DefaultVersion is the version skiff reports: the Kubernetes API level it
// implements, so that kubectl's version-skew check is satisfied.
func DefaultVersion() version.Info {
	return version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-skiff", Platform: "linux/amd64", GoVersion: goVersion()}
}
