package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/skiffhq/skiff/agent"
)

// Runtime implements agent.Runtime on containerd. Create it with New, then
// call Run (in its own goroutine) and WaitReady before other methods.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	client *client.Client
	daemon *daemon // nil in external mode
	now    func() time.Time

	ready     chan struct{} // closed once containerd first serves
	readyOnce sync.Once
	runDone   chan struct{} // closed when Run returns
	runErr    error         // Run's result, valid after runDone

	sandboxMu sync.Mutex // serialises sandbox create/remove

	oomMu   sync.Mutex
	oomSeen map[string]bool // container IDs with an OOM event (fallback)
}

var _ agent.Runtime = (*Runtime)(nil)

// New validates cfg and returns a Runtime. It starts nothing: Run starts (or
// adopts) the managed containerd.
func New(cfg Config, logger *slog.Logger) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("containerd runtime config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "containerd", "namespace", cfg.Namespace)
	// Reconnect quickly after a containerd restart instead of grpc's
	// default back-off of up to the client timeout.
	connect := grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: grpcbackoff.Config{
			BaseDelay:  100 * time.Millisecond,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   2 * time.Second,
		},
		MinConnectTimeout: 5 * time.Second,
	})
	c, err := client.New(cfg.socket(),
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithDefaultRuntime(cfg.RuntimeName),
		client.WithExtraDialOpts([]grpc.DialOption{connect}))
	if err != nil {
		return nil, fmt.Errorf("containerd client for %s: %w", cfg.socket(), err)
	}
	r := &Runtime{
		cfg:     cfg,
		log:     logger,
		client:  c,
		now:     time.Now,
		ready:   make(chan struct{}),
		runDone: make(chan struct{}),
		oomSeen: map[string]bool{},
	}
	if cfg.managed() {
		r.daemon = &daemon{cfg: cfg, log: logger}
	}
	return r, nil
}

// Run starts or adopts the managed containerd (managed mode) or waits for
// the external one, then supervises it until ctx ends: a managed containerd
// that dies is restarted with back-off, and on ctx end it is stopped by PID
// (SIGTERM, then SIGKILL after StopTimeout). Containers keep running in
// either case. Run also rotates logs every LogRotateInterval. It returns an
// error only when containerd could not be brought up the first time.
func (r *Runtime) Run(ctx context.Context) error {
	defer close(r.runDone)
	for _, dir := range []string{r.cfg.DataDir, r.cfg.fifoDir(), r.cfg.sandboxDir(), r.cfg.logDir()} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			r.runErr = fmt.Errorf("create %s: %w", dir, err)
			return r.runErr
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	bgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); r.rotateLoop(bgCtx) }()
	go func() { defer wg.Done(); r.trackOOM(bgCtx) }()
	if r.daemon == nil {
		r.runErr = r.waitServing(ctx, nil, r.cfg.StartTimeout)
		if r.runErr != nil {
			return r.runErr
		}
		r.markReady()
		<-ctx.Done()
		return nil
	}
	r.runErr = r.supervise(ctx)
	return r.runErr
}

// supervise keeps the managed containerd running until ctx ends.
func (r *Runtime) supervise(ctx context.Context) error {
	bo := newBackoff(r.cfg.RestartBackoffMin, r.cfg.RestartBackoffMax, time.Minute)
	first := true
	for {
		p, err := r.daemon.startOrAdopt()
		if err == nil {
			err = r.waitServing(ctx, p.done, r.cfg.StartTimeout)
		}
		if err != nil && p != nil {
			r.stopDaemon(p)
		}
		if err != nil && first {
			return fmt.Errorf("bring up containerd: %w", err)
		}
		startedAt := r.now()
		if err == nil {
			first = false
			r.markReady()
			select {
			case <-ctx.Done():
				return r.stopDaemon(p)
			case <-p.done:
			}
		} else if ctx.Err() == nil {
			r.log.Error("containerd start failed", "err", err)
		}
		delay := bo.next(r.now().Sub(startedAt))
		r.log.Warn("restarting containerd", "after", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// stopDaemon stops p and logs a failure; it returns the error for Run.
func (r *Runtime) stopDaemon(p *daemonProc) error {
	err := r.daemon.stop(p)
	if err != nil {
		r.log.Error("stop containerd", "pid", p.pid, "err", err)
	}
	return err
}

func (r *Runtime) markReady() { r.readyOnce.Do(func() { close(r.ready) }) }

// WaitReady blocks until containerd serves for the first time, Run fails,
// or ctx ends.
func (r *Runtime) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-r.runDone:
		if r.runErr != nil {
			return r.runErr
		}
		return errors.New("containerd runtime stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the client connection. It does not stop containerd (Run's
// context does) nor any container.
func (r *Runtime) Close() error { return r.client.Close() }

// Namespace returns the containerd namespace of this node.
func (r *Runtime) Namespace() string { return r.cfg.Namespace }

// ContainerdPID returns the PID of the live managed containerd of this
// DataDir, or 0 (external mode, or not running).
func (r *Runtime) ContainerdPID() int {
	if r.daemon == nil {
		return 0
	}
	pid, ok := r.daemon.findRunning()
	if !ok {
		return 0
	}
	return pid
}

// nsCtx returns ctx carrying this node's containerd namespace.
func (r *Runtime) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}
