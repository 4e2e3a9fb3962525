package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// errRetry asks the loop to requeue a key with back-off without logging an
// error: the sync already reported what went wrong (an unschedulable pod).
var errRetry = errors.New("retry later")

// loop is one controller's work queue and workers. Informer event
// handlers only Add keys; workers take a key, call sync, and requeue it
// with rate-limited back-off when sync fails. The queue guarantees that a
// key is never processed by two workers at once.
type loop[T comparable] struct {
	name    string
	log     *slog.Logger
	queue   workqueue.TypedRateLimitingInterface[T]
	sync    func(ctx context.Context, key T) error
	workers int
}

func newLoop[T comparable](name string, workers int, clk clock.WithTicker, limiter workqueue.TypedRateLimiter[T], log *slog.Logger, sync func(context.Context, T) error) *loop[T] {
	if limiter == nil {
		limiter = workqueue.DefaultTypedControllerRateLimiter[T]()
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[T]{Name: name, Clock: clk})
	return &loop[T]{name: name, log: log.With("controller", name), queue: q, sync: sync, workers: workers}
}

// add queues key now.
func (l *loop[T]) add(key T) { l.queue.Add(key) }

// addAfter queues key after d.
func (l *loop[T]) addAfter(key T, d time.Duration) { l.queue.AddAfter(key, d) }

// start runs the workers until the queue is shut down.
func (l *loop[T]) start(ctx context.Context, wg *sync.WaitGroup) {
	for i := 0; i < l.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
}

// stop shuts the queue down; workers return after their current key.
func (l *loop[T]) stop() { l.queue.ShutDown() }

func (l *loop[T]) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	err := l.sync(ctx, key)
	switch {
	case err == nil:
		l.queue.Forget(key)
	case ctx.Err() != nil:
		// Shutting down: the next leader starts from scratch.
	case errors.Is(err, errRetry):
		l.queue.AddRateLimited(key)
	default:
		lvl := slog.LevelWarn
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) || namespaceClosed(err) {
			lvl = slog.LevelDebug // a stale cache or a namespace going away
		}
		l.log.Log(ctx, lvl, "sync failed, will retry", "key", key, "retries", l.queue.NumRequeues(key), "err", err)
		l.queue.AddRateLimited(key)
	}
	return true
}

// objectKey returns the namespace/name key of an informer object,
// including the tombstones of deletions the informer missed.
func objectKey(obj interface{}) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	return key, err == nil
}

// untomb returns the object inside a deletion tombstone, or obj itself.
func untomb(obj interface{}) interface{} {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// isGone reports an error that means the object to change is no longer
// there: not found, or replaced by a namesake (UID precondition failed).
func isGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

// namespaceClosed reports a create refused because its namespace is being
// deleted or gone; controllers retry quietly until their owner goes too.
// Kubernetes marks the first case with the NamespaceTerminating cause;
// skiff's API does not (yet), so its Forbidden message is matched too.
func namespaceClosed(err error) bool {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return true
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return false
	}
	st := se.Status()
	switch {
	case st.Reason == metav1.StatusReasonForbidden:
		return strings.Contains(st.Message, "because it is being terminated")
	case st.Reason == metav1.StatusReasonNotFound:
		return st.Details != nil && st.Details.Kind == "namespaces"
	}
	return false
}
