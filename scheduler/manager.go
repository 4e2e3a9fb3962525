package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiffhq/skiff/proto"
)

// Informer indexes shared by the controllers.
const (
	indexUID    = "uid"    // an object's own UID
	indexOwner  = "owner"  // the UIDs of an object's owners
	indexOrphan = "orphan" // the namespace of an object without a controller
)

// runner is one controller's work loop as the Manager sees it.
type runner interface {
	start(ctx context.Context, wg *sync.WaitGroup)
	stop()
}

// Manager runs the leader-only controllers and the scheduler. Create it
// with New and call Run once; make a new Manager for every leadership term.
type Manager struct {
	cfg         Config
	log         *slog.Logger
	client      kubernetes.Interface
	dynamic     dynamic.Interface
	factory     informers.SharedInformerFactory
	broadcaster record.EventBroadcaster
	// informers holds the informer of every kind but Event, for the
	// garbage collector's owner lookups.
	informers map[*proto.Kind]cache.SharedIndexInformer
	runners   []runner
	ran       atomic.Bool
}

// New builds the clients, informers and controllers. Nothing talks to the
// API until Run.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rc := rest.CopyConfig(cfg.RESTConfig)
	typed := rest.CopyConfig(rc)
	if typed.ContentType == "" {
		// Protobuf: far cheaper than JSON for the leader's informers. The
		// dynamic client (garbage collector, namespaces) stays on JSON.
		typed.ContentType = "application/vnd.kubernetes.protobuf"
		typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return nil, fmt.Errorf("scheduler: clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("scheduler: dynamic client: %w", err)
	}
	m := &Manager{
		cfg: cfg, log: log.With("component", "controllers"), client: client, dynamic: dyn,
		factory:     informers.NewSharedInformerFactory(client, cfg.Resync),
		broadcaster: record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{Clock: cfg.Clock})),
	}
	if err := m.buildInformers(); err != nil {
		return nil, err
	}
	if err := m.buildControllers(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) buildInformers() error {
	m.informers = map[*proto.Kind]cache.SharedIndexInformer{}
	for _, k := range proto.Kinds() {
		if k.Resource == "events" {
			continue // events own nothing and are many; never cached
		}
		gi, err := m.factory.ForResource(k.GroupVersionResource())
		if err != nil {
			return fmt.Errorf("scheduler: informer for %s: %w", k.Resource, err)
		}
		inf := gi.Informer()
		if err := inf.AddIndexers(cache.Indexers{indexUID: uidIndex, indexOwner: ownerIndex, indexOrphan: orphanIndex}); err != nil {
			return fmt.Errorf("scheduler: indexing %s: %w", k.Resource, err)
		}
		m.informers[k] = inf
	}
	return nil
}

func (m *Manager) buildControllers() error {
	builders := []func() (runner, error){
		func() (runner, error) { return newBootstrapper(m) },
		func() (runner, error) { return newDeploymentController(m) },
		func() (runner, error) { return newReplicaSetController(m) },
		func() (runner, error) { return newDaemonSetController(m) },
		func() (runner, error) { return newGarbageCollector(m) },
		func() (runner, error) { return newNamespaceController(m) },
		func() (runner, error) { return newPodScheduler(m) },
	}
	for _, b := range builders {
		r, err := b()
		if err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		m.runners = append(m.runners, r)
	}
	return nil
}

// recorder returns an event recorder that reports as component.
func (m *Manager) recorder(component string) record.EventRecorder {
	return m.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

// Run starts the informers and every controller and blocks until ctx
// ends (leadership lost or the daemon stopping); it then stops the
// workers, the informers and the event writer and returns nil. It fails
// early only when the caches cannot be filled while ctx is still live.
func (m *Manager) Run(ctx context.Context) error {
	if !m.ran.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice; make a new Manager")
	}
	sink := &eventSink{sink: &typedcorev1.EventSinkImpl{Interface: m.client.CoreV1().Events("")}}
	w := m.broadcaster.StartRecordingToSink(sink)
	defer m.broadcaster.Shutdown()
	defer w.Stop()
	defer sink.stop(2 * time.Second)

	m.factory.Start(ctx.Done())
	defer m.factory.Shutdown()
	for typ, ok := range m.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scheduler: informer cache for %v did not sync", typ)
		}
	}
	var wg sync.WaitGroup
	for _, r := range m.runners {
		r.start(ctx, &wg)
	}
	m.log.Info("controllers and scheduler running")
	<-ctx.Done()
	for _, r := range m.runners {
		r.stop()
	}
	wg.Wait()
	m.log.Info("controllers and scheduler stopped")
	return nil
}

func uidIndex(obj interface{}) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	return []string{string(m.GetUID())}, nil
}

func ownerIndex(obj interface{}) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	refs := m.GetOwnerReferences()
	if len(refs) == 0 {
		return nil, nil
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = string(r.UID)
	}
	return out, nil
}

func orphanIndex(obj interface{}) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if metav1.GetControllerOfNoCopy(m) != nil {
		return nil, nil
	}
	return []string{m.GetNamespace()}, nil
}

// informerFor returns the shared informer of a served resource.
func (m *Manager) informerFor(group, resource string) cache.SharedIndexInformer {
	k, _ := proto.KindForResource(group, resource)
	return m.informers[k]
}
