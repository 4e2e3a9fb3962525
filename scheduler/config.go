package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// Config configures a Manager. Start from DefaultConfig and set RESTConfig.
type Config struct {
	// RESTConfig reaches the API server. On the leader this is the
	// in-process listener's config (api.InProcessListener.RESTConfig).
	// Required.
	RESTConfig *rest.Config

	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger

	// Clock drives every delay, deadline and timestamp the controllers
	// compute: minReadySeconds, progress deadlines, queue delays,
	// expectation and assumed-pod timeouts, event timestamps. Default: the
	// real clock. Tests may pass a fake clock and step it.
	Clock clock.WithTicker

	// Resync is the informer resync period: how often every cached object
	// is handed to the controllers again although it did not change. It
	// costs CPU only (no API call unless something must change). 0
	// disables resyncs. Default 10 minutes.
	Resync time.Duration

	// Workers are the goroutines each controller runs. Each must be at
	// least 1. Defaults: 4 deployment, 4 replicaset, 2 daemonset, 4
	// garbage collector, 2 namespace, 1 scheduler. More scheduler workers
	// are safe (placement and assumption happen under one lock) but only
	// help when binding is slow.
	DeploymentWorkers int
	ReplicaSetWorkers int
	DaemonSetWorkers  int
	GCWorkers         int
	NamespaceWorkers  int
	SchedulerWorkers  int

	// SchedulerName selects the pods this scheduler places: those whose
	// spec.schedulerName equals it. Default "default-scheduler".
	SchedulerName string

	// Namespaces are created when missing, at start and whenever one of
	// them is deleted. Default: default, kube-system, kube-public,
	// kube-node-lease.
	Namespaces []string

	// BurstReplicas bounds how many pods one ReplicaSet or DaemonSet sync
	// creates or deletes; the rest follow in the next sync. Default 500,
	// as in Kubernetes.
	BurstReplicas int

	// SchedulingBackoff and MaxSchedulingBackoff are the first and the
	// longest wait before the scheduler tries again to place a pod that
	// fit nowhere. A node or pod change that may make room retries at
	// once. Defaults 1 second and 1 minute.
	SchedulingBackoff    time.Duration
	MaxSchedulingBackoff time.Duration

	// AssumedPodTTL is how long after a successful binding the scheduler
	// keeps counting a pod against its node while the pod informer has
	// not yet shown the binding. Default 30 seconds.
	AssumedPodTTL time.Duration

	// ExpectationsTimeout is how long a ReplicaSet or DaemonSet sync
	// waits for the informer to show the pods it created or deleted
	// before it stops trusting its expectations and counts again.
	// Default 5 minutes, as in Kubernetes.
	ExpectationsTimeout time.Duration

	// NamespaceRecheck is how long the namespace controller waits before
	// looking again at a terminating namespace that still has content
	// (typically pods that their nodes are still stopping). Default 2s.
	NamespaceRecheck time.Duration
}

// DefaultConfig returns the defaults; RESTConfig must still be set.
func DefaultConfig() Config {
	return Config{
		Clock:                clock.RealClock{},
		Resync:               10 * time.Minute,
		DeploymentWorkers:    4,
		ReplicaSetWorkers:    4,
		DaemonSetWorkers:     2,
		GCWorkers:            4,
		NamespaceWorkers:     2,
		SchedulerWorkers:     1,
		SchedulerName:        corev1.DefaultSchedulerName,
		Namespaces:           []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease},
		BurstReplicas:        500,
		SchedulingBackoff:    time.Second,
		MaxSchedulingBackoff: time.Minute,
		AssumedPodTTL:        30 * time.Second,
		ExpectationsTimeout:  5 * time.Minute,
		NamespaceRecheck:     2 * time.Second,
	}
}

// Validate checks the configuration, including the fields that only make
// sense together.
func (c Config) Validate() error {
	switch {
	case c.RESTConfig == nil:
		return errors.New("scheduler: RESTConfig is required")
	case c.Clock == nil:
		return errors.New("scheduler: Clock is required")
	case c.Resync < 0:
		return fmt.Errorf("scheduler: Resync %v must not be negative", c.Resync)
	case c.SchedulerName == "":
		return errors.New("scheduler: SchedulerName is required")
	case c.BurstReplicas < 1:
		return fmt.Errorf("scheduler: BurstReplicas %d must be at least 1", c.BurstReplicas)
	case c.SchedulingBackoff <= 0:
		return fmt.Errorf("scheduler: SchedulingBackoff %v must be positive", c.SchedulingBackoff)
	case c.MaxSchedulingBackoff < c.SchedulingBackoff:
		return fmt.Errorf("scheduler: MaxSchedulingBackoff %v is below SchedulingBackoff %v", c.MaxSchedulingBackoff, c.SchedulingBackoff)
	case c.AssumedPodTTL <= 0:
		return fmt.Errorf("scheduler: AssumedPodTTL %v must be positive", c.AssumedPodTTL)
	case c.ExpectationsTimeout <= 0:
		return fmt.Errorf("scheduler: ExpectationsTimeout %v must be positive", c.ExpectationsTimeout)
	case c.NamespaceRecheck <= 0:
		return fmt.Errorf("scheduler: NamespaceRecheck %v must be positive", c.NamespaceRecheck)
	}
	workers := []struct {
		name string
		n    int
	}{
		{"DeploymentWorkers", c.DeploymentWorkers}, {"ReplicaSetWorkers", c.ReplicaSetWorkers},
		{"DaemonSetWorkers", c.DaemonSetWorkers}, {"GCWorkers", c.GCWorkers},
		{"NamespaceWorkers", c.NamespaceWorkers}, {"SchedulerWorkers", c.SchedulerWorkers},
	}
	for _, w := range workers {
		if w.n < 1 {
			return fmt.Errorf("scheduler: %s %d must be at least 1", w.name, w.n)
		}
	}
	return nil
}
