package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// ErrStopped is returned by methods that need a running agent after Run
// returned.
var ErrStopped = errors.New("agent stopped")

// Agent makes the node's runtime run the pods the API binds to the node,
// reports their status and the Node, and serves logs, exec and images.
// Create it with New and call Run once.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	rt     Runtime
	clock  clock.WithTicker
	client kubernetes.Interface
	config configSource // ConfigMaps and Secrets for environments
	nodeIP string

	cache   *containerCache
	images  *imageIDs
	workers *podWorkers
	status  *statusManager
	probes  *probeManager
	node    *nodeReporter

	podInformer cache.SharedIndexInformer
	podsSynced  func() bool   // the handler has seen the initial pods
	synced      chan struct{} // closed once podsSynced
	ln          net.Listener

	addrMu sync.Mutex
	addr   net.Addr
}

// New validates cfg and builds an Agent. It contacts nothing: Run does.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "agent", "node", cfg.NodeName)
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	client, err := kubernetes.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("agent API client: %w", err)
	}
	a := &Agent{
		cfg: cfg, log: log, rt: cfg.Runtime, clock: clk, client: client, config: apiConfigSource{client},
		cache:  newContainerCache(),
		images: &imageIDs{byRef: map[string]string{}},
		synced: make(chan struct{}),
	}
	a.workers = newPodWorkers(a)
	a.status = newStatusManager(client.CoreV1(), clk, log, cfg.StatusMinInterval, cfg.StatusWriters)
	a.probes = newProbeManager(clk, log, a.runProbe, a.workers.wake)
	if a.podInformer, err = a.newPodInformer(); err != nil {
		return nil, err
	}
	return a, nil
}

// newPodInformer watches the pods bound to this node.
func (a *Agent) newPodInformer() (cache.SharedIndexInformer, error) {
	selector := fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
	f := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = selector }))
	inf := f.Core().V1().Pods().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				a.workers.remove(pod)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	a.podsSynced = reg.HasSynced
	return inf, nil
}

func (a *Agent) podChanged(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName == a.cfg.NodeName {
		a.workers.update(pod)
	}
}

// Run runs the agent until ctx ends: it lists what the runtime already
// runs (adoption), registers the Node, watches the node's pods and drives
// one worker per pod, and serves HTTP. When ctx ends it stops its own
// goroutines and returns; containers keep running, to be adopted by the
// next Run. It returns an error only when it could not start.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := a.listen()
	if err != nil {
		return err
	}
	a.ln = ln
	a.addrMu.Lock()
	a.addr = ln.Addr()
	a.addrMu.Unlock()
	a.nodeIP = a.resolveNodeIP(ln)
	a.node = newNodeReporter(a, ln)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.workers.wait()
	defer a.probes.wait()
	defer cancel()
	events := a.rt.Events(ctx)
	if err := a.initialSync(ctx, events); err != nil {
		ln.Close()
		if ctx.Err() != nil {
			return nil // stopped before the runtime answered
		}
		return err
	}
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	a.workers.start(ctx)
	run(a.serve)
	run(a.node.run)
	run(a.status.run)
	run(func(ctx context.Context) { a.podInformer.Run(ctx.Done()) })
	if !cache.WaitForCacheSync(ctx.Done(), a.podsSynced) {
		return nil // ctx ended
	}
	close(a.synced)
	a.log.Info("agent running", "pods", len(a.podInformer.GetStore().ListKeys()), "containers", len(a.cache.all()))
	a.collectOrphans(ctx)
	run(a.housekeeping)
	a.eventLoop(ctx, events)
	return nil
}

// Addr returns the address the agent's HTTP server listens on, or nil
// before Run has started listening.
func (a *Agent) Addr() net.Addr {
	a.addrMu.Lock()
	defer a.addrMu.Unlock()
	return a.addr
}

// listen returns the configured listener or listens on ListenAddr.
func (a *Agent) listen() (net.Listener, error) {
	if a.cfg.Listener != nil {
		return a.cfg.Listener, nil
	}
	ln, err := net.Listen("tcp", a.cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("agent listen: %w", err)
	}
	return ln, nil
}

// serve runs the HTTP server until ctx ends.
func (a *Agent) serve(ctx context.Context) {
	hs := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
		hs.Close()
	}()
	if err := hs.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
		a.log.Error("agent HTTP server", "err", err)
	}
}

// initialSync waits for the event stream to be live, then loads every
// container into the cache, so that pod workers adopt what runs.
func (a *Agent) initialSync(ctx context.Context, events <-chan ContainerEvent) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				return fmt.Errorf("runtime event stream closed: %w", ErrUnavailable)
			}
			if ev.Type != EventResync {
				continue
			}
			if err := a.images.load(ctx, a.rt); err != nil {
				a.log.Warn("list images", "err", err)
			}
			return a.relist(ctx)
		}
	}
}

// relist replaces the cache with a full listing (retrying until it works
// or ctx ends) and wakes the pods whose containers changed.
func (a *Agent) relist(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		list, err := a.rt.ListContainers(ctx)
		if err == nil {
			for _, uid := range a.cache.replace(list) {
				a.workers.wake(uid)
			}
			return nil
		}
		a.log.Warn("list containers", "err", err, "retry", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.clock.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// eventLoop applies runtime events to the cache until ctx ends.
func (a *Agent) eventLoop(ctx context.Context, events <-chan ContainerEvent) {
	for ev := range events {
		if ev.Type == EventResync {
			if a.relist(ctx) == nil {
				a.collectOrphans(ctx)
			}
			continue
		}
		a.refresh(ctx, ev.ContainerID)
	}
}

// refresh re-reads one container into the cache and wakes its pod.
func (a *Agent) refresh(ctx context.Context, id string) {
	st, err := a.rt.ContainerStatus(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		if uid := a.cache.remove(id); uid != "" {
			a.workers.wake(uid)
		}
	case err != nil:
		a.log.Debug("container status", "id", id, "err", err)
	case a.cache.set(st):
		a.workers.wake(st.PodUID)
	}
}

// housekeeping periodically re-lists the runtime (a safety net for lost
// events and the runtime's health check) and collects orphans.
func (a *Agent) housekeeping(ctx context.Context) {
	t := a.clock.NewTicker(a.cfg.HousekeepingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		list, err := a.rt.ListContainers(ctx)
		if ctx.Err() != nil {
			return
		}
		a.node.setRuntimeHealth(err)
		if err != nil {
			a.log.Warn("runtime health check", "err", err)
			continue
		}
		for _, uid := range a.cache.replace(list) {
			a.workers.wake(uid)
		}
		a.collectOrphans(ctx)
	}
}
