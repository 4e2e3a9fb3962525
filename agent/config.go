package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// Versions the agent reports in its Node's nodeInfo.
const (
	// KubeletVersion is the Kubernetes level skiff implements.
	KubeletVersion = "v1.37.2-skiff"
	// DefaultListenAddr is where the agent serves logs, exec and images.
	DefaultListenAddr = "127.0.0.1:10250"
)

// Config configures an Agent. Obtain one from DefaultConfig, then set at
// least NodeName, DataDir, RESTConfig and Runtime.
type Config struct {
	// NodeName is this node's name: the Node object it keeps current and
	// the spec.nodeName of the pods it runs. Required.
	NodeName string
	// DataDir is the agent's directory on the node (absolute). The agent
	// reports its file system as the node's ephemeral-storage capacity.
	// Required.
	DataDir string
	// RESTConfig reaches the API: in-process on a single node
	// (api.InProcessListener.RESTConfig), over the network later. Required.
	RESTConfig *rest.Config
	// Runtime runs the containers (agent/containerd in production).
	// Required. The agent does not start or stop it.
	Runtime Runtime
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Clock drives back-off, probes and status pacing; nil is the real
	// clock. Tests use a fake one.
	Clock clock.WithTicker

	// ListenAddr is the TCP address of the agent's HTTP server (logs,
	// exec, images), kubelet style. Ignored when Listener is set.
	ListenAddr string
	// Listener, when set, is served instead of listening on ListenAddr
	// (e.g. a TLS listener). Run closes it when it returns.
	Listener net.Listener
	// NodeIP is the InternalIP the Node advertises and the API proxy dials.
	// Empty: the listener's IP when it is a specific address, else the
	// first global unicast IPv4 address of the host, else 127.0.0.1.
	NodeIP string

	// Capacity returns the node's capacity (cpu, memory, ephemeral-storage);
	// nil reads /proc and statfs(DataDir). "pods" is added from MaxPods.
	Capacity func() (corev1.ResourceList, error)
	// SystemReserved is subtracted from capacity to give allocatable.
	SystemReserved corev1.ResourceList
	// MaxPods is the node's pod capacity.
	MaxPods int64
	// NodeLabels are added to the Node's labels (kubernetes.io/hostname,
	// kubernetes.io/os and kubernetes.io/arch are always set).
	NodeLabels map[string]string
	// NodeStatusInterval is how often the Node object is compared with
	// the node's state; it is written only when something changed.
	NodeStatusInterval time.Duration

	// RestartBackoffBase and RestartBackoffMax bound the delay before a
	// failed container is restarted: the first restart is immediate, then
	// Base, doubling up to Max (Kubernetes: 10 s, 5 min).
	RestartBackoffBase time.Duration
	RestartBackoffMax  time.Duration
	// RestartBackoffReset: a container that ran at least this long before
	// exiting starts a fresh back-off sequence (Kubernetes: 10 min).
	RestartBackoffReset time.Duration
	// PullBackoffBase and PullBackoffMax bound the delay between attempts
	// to get a missing image (and to create a container that failed).
	PullBackoffBase time.Duration
	PullBackoffMax  time.Duration

	// StatusMinInterval is the least time between two status writes of one
	// pod; changes in between are coalesced (only the latest is written).
	// A change to a terminal phase is written at once.
	StatusMinInterval time.Duration
	// StatusWriters bounds concurrent status writes.
	StatusWriters int
	// ForceDeleteGracePeriod is the grace given to the containers of a pod
	// that vanished from the API without a graceful deletion.
	ForceDeleteGracePeriod time.Duration
	// HousekeepingInterval is how often orphaned containers and sandboxes
	// are collected and the runtime's health is checked.
	HousekeepingInterval time.Duration
	// StreamIdleTimeout closes an exec session without traffic.
	StreamIdleTimeout time.Duration
	// ConfigVolumeRefresh is how often the ConfigMap and Secret volumes of
	// running pods are rewritten from the API, so changes reach running
	// containers (the kubelet's sync period plays this part).
	ConfigVolumeRefresh time.Duration
}

// DefaultConfig returns a Config with every optional field set to the
// Kubernetes-like defaults.
func DefaultConfig() Config {
	return Config{
		ListenAddr:             DefaultListenAddr,
		MaxPods:                110,
		NodeStatusInterval:     time.Minute,
		RestartBackoffBase:     10 * time.Second,
		RestartBackoffMax:      5 * time.Minute,
		RestartBackoffReset:    10 * time.Minute,
		PullBackoffBase:        10 * time.Second,
		PullBackoffMax:         5 * time.Minute,
		StatusMinInterval:      500 * time.Millisecond,
		StatusWriters:          4,
		ForceDeleteGracePeriod: 2 * time.Second,
		HousekeepingInterval:   time.Minute,
		StreamIdleTimeout:      4 * time.Hour,
		ConfigVolumeRefresh:    time.Minute,
	}
}

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeName == "" {
		add("NodeName is required")
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		add("DataDir %q must be an absolute path", c.DataDir)
	}
	if c.RESTConfig == nil {
		add("RESTConfig is required")
	}
	if c.Runtime == nil {
		add("Runtime is required")
	}
	if c.Listener == nil && c.ListenAddr == "" {
		add("ListenAddr or Listener is required")
	}
	if c.NodeIP != "" && net.ParseIP(c.NodeIP) == nil {
		add("NodeIP %q is not an IP address", c.NodeIP)
	}
	if c.MaxPods <= 0 {
		add("MaxPods must be positive")
	}
	if c.RestartBackoffBase <= 0 || c.RestartBackoffMax < c.RestartBackoffBase || c.RestartBackoffReset <= 0 {
		add("need 0 < RestartBackoffBase <= RestartBackoffMax and RestartBackoffReset > 0")
	}
	if c.PullBackoffBase <= 0 || c.PullBackoffMax < c.PullBackoffBase {
		add("need 0 < PullBackoffBase <= PullBackoffMax")
	}
	if c.StatusMinInterval < 0 || c.StatusWriters <= 0 {
		add("StatusMinInterval must be >= 0 and StatusWriters > 0")
	}
	if c.NodeStatusInterval <= 0 || c.HousekeepingInterval <= 0 || c.StreamIdleTimeout <= 0 || c.ConfigVolumeRefresh <= 0 {
		add("NodeStatusInterval, HousekeepingInterval, StreamIdleTimeout and ConfigVolumeRefresh must be positive")
	}
	if c.ForceDeleteGracePeriod < 0 {
		add("ForceDeleteGracePeriod must be >= 0")
	}
	return errors.Join(errs...)
}

// backoffPolicy is the restart and image back-off part of the Config.
type backoffPolicy struct {
	restartBase, restartMax, restartReset time.Duration
	pullBase, pullMax                     time.Duration
}

func (c Config) backoff() backoffPolicy {
	return backoffPolicy{
		restartBase: c.RestartBackoffBase, restartMax: c.RestartBackoffMax, restartReset: c.RestartBackoffReset,
		pullBase: c.PullBackoffBase, pullMax: c.PullBackoffMax,
	}
}
