package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/api/apitest"
)

// env is a real API server with a running Manager.
type env struct {
	t   *testing.T
	srv *apitest.Server
	c   kubernetes.Interface
	ctx context.Context
}

// testWriter sends log lines to the test log while the test runs.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// newEnv starts an API server and a Manager with test-friendly timings.
func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	srv := apitest.New(t)
	w := &testWriter{t: t}
	cfg := DefaultConfig()
	cfg.RESTConfig = srv.Config
	cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.NamespaceRecheck = 50 * time.Millisecond
	cfg.SchedulingBackoff = 50 * time.Millisecond
	cfg.MaxSchedulingBackoff = time.Second
	for _, o := range opts {
		o(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return &env{t: t, srv: srv, c: srv.Client, ctx: context.Background()}
}

// eventually polls cond until it holds, failing the test after 15s.
func (e *env) eventually(what string, cond func() (bool, error)) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(e.ctx, 20*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

// node creates a Ready node with the given capacity and labels.
func (e *env) node(name, cpu, mem string, labels map[string]string) *corev1.Node {
	e.t.Helper()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
				corev1.ResourcePods: resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	n.Status.Capacity = n.Status.Allocatable
	out, err := e.c.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating node %s: %v", name, err)
	}
	return out
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

// deployment creates a Deployment of image with n replicas.
func (e *env) deployment(ns, name string, n int32, image string, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	e.t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, image),
		},
	}
	for _, m := range mutate {
		m(d)
	}
	out, err := e.c.AppsV1().Deployments(ns).Create(e.ctx, d, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating deployment %s: %v", name, err)
	}
	return out
}

// pods lists the pods of a namespace matching selector.
func (e *env) pods(ns, selector string) ([]corev1.Pod, error) {
	l, err := e.c.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// activePods lists the pods not being deleted and not finished.
func (e *env) activePods(ns, selector string) ([]corev1.Pod, error) {
	all, err := e.pods(ns, selector)
	var out []corev1.Pod
	for _, p := range all {
		if isPodActive(&p) {
			out = append(out, p)
		}
	}
	return out, err
}

// replicaSets lists the ReplicaSets of a namespace matching selector.
func (e *env) replicaSets(ns, selector string) ([]appsv1.ReplicaSet, error) {
	l, err := e.c.AppsV1().ReplicaSets(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// rolledOut reports whether a Deployment finished rolling out at want
// replicas, as kubectl rollout status decides it.
func (e *env) rolledOut(ns, name string, want int32) func() (bool, error) {
	return func() (bool, error) {
		d, err := e.c.AppsV1().Deployments(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := d.Status
		return st.ObservedGeneration >= d.Generation && *d.Spec.Replicas == want && st.UpdatedReplicas == want &&
			st.Replicas == want && st.AvailableReplicas == want, nil
	}
}

// gone reports whether a Get returns NotFound.
func gone(get func() error) func() (bool, error) {
	return func() (bool, error) {
		err := get()
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

// kubelet plays the node agents: it marks bound pods Running and Ready
// (unless notReady says otherwise) and completes graceful deletions. It
// stops when the test ends.
type kubelet struct {
	e        *env
	notReady func(*corev1.Pod) bool
	queue    chan *corev1.Pod
}

func (e *env) startKubelet(notReady func(*corev1.Pod) bool) {
	k := &kubelet{e: e, notReady: notReady, queue: make(chan *corev1.Pod, 1024)}
	f := informers.NewSharedInformerFactory(e.c, 0)
	inf := f.Core().V1().Pods().Informer()
	push := func(obj interface{}) {
		if p, ok := obj.(*corev1.Pod); ok {
			k.queue <- p
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: push, UpdateFunc: func(_, cur interface{}) { push(cur) },
	}); err != nil {
		e.t.Fatalf("kubelet: %v", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case p := <-k.queue:
				k.handle(p)
			}
		}
	}()
	f.Start(stop)
	e.t.Cleanup(func() {
		close(stop)
		f.Shutdown()
		wg.Wait()
	})
}

func (k *kubelet) handle(p *corev1.Pod) {
	ctx := context.Background()
	pods := k.e.c.CoreV1().Pods(p.Namespace)
	switch {
	case p.Spec.NodeName == "":
	case p.DeletionTimestamp != nil:
		_ = pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	case isPodTerminal(p) || isPodReady(p) || (k.notReady != nil && k.notReady(p)):
	default:
		out := p.DeepCopy()
		out.Status.Phase = corev1.PodRunning
		now := metav1.Now()
		out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now})
		_, _ = pods.UpdateStatus(ctx, out, metav1.UpdateOptions{})
	}
}

// events returns the messages of the events with reason about an object.
func (e *env) events(ns, name, reason string) ([]string, error) {
	l, err := e.c.CoreV1().Events(ns).List(e.ctx, metav1.ListOptions{FieldSelector: fmt.Sprintf("involvedObject.name=%s,reason=%s", name, reason)})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ev := range l.Items {
		out = append(out, ev.Message)
	}
	return out, nil
}
