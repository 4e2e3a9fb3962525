package scheduler

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// bootstrapper makes sure the system namespaces exist: at start, and again
// whenever one of them is deleted.
type bootstrapper struct {
	*loop[string]
	client kubernetes.Interface
	lister corelisters.NamespaceLister
	names  sets.Set[string]
}

func newBootstrapper(m *Manager) (*bootstrapper, error) {
	b := &bootstrapper{client: m.client, names: sets.New(m.cfg.Namespaces...)}
	b.loop = newLoop("bootstrap", 1, m.cfg.Clock, nil, m.log, b.sync)
	inf := m.factory.Core().V1().Namespaces()
	b.lister = inf.Lister()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: b.deleteNamespace}); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}

// start queues every system namespace, then runs the worker.
func (b *bootstrapper) start(ctx context.Context, wg *sync.WaitGroup) {
	for _, n := range sets.List(b.names) {
		b.add(n)
	}
	b.loop.start(ctx, wg)
}

func (b *bootstrapper) deleteNamespace(obj interface{}) {
	if key, ok := objectKey(obj); ok && b.names.Has(key) {
		b.add(key)
	}
}

func (b *bootstrapper) sync(ctx context.Context, name string) error {
	if _, err := b.lister.Get(name); err == nil {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := b.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
