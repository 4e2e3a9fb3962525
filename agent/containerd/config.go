package containerd

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Config configures a Runtime. Obtain one from DefaultConfig and set at least
// DataDir and Namespace.
type Config struct {
	// DataDir is the node's runtime directory. It holds the managed
	// containerd's files, pinned sandboxes, exec FIFOs and container logs
	// (layout in docs/runtime.md). Required, absolute.
	DataDir string
	// Namespace is the containerd namespace of this node; every node on a
	// host needs its own (see NamespaceForNode). Required.
	Namespace string
	// Socket is the gRPC socket of an existing containerd to use (external
	// mode). Empty: managed mode, the Runtime runs its own containerd.
	Socket string

	// ContainerdBinary is the containerd executable for managed mode.
	ContainerdBinary string
	// PrefixCommand is prepended to the containerd command line in managed
	// mode, e.g. ["nsenter", "--net=/run/netns/node1"]. The prefix must
	// exec containerd in place (same PID), as nsenter does without --fork.
	PrefixCommand []string
	// StartTimeout bounds how long a managed containerd may take to serve.
	StartTimeout time.Duration
	// StopTimeout is how long a managed containerd gets after SIGTERM
	// before SIGKILL.
	StopTimeout time.Duration
	// RestartBackoffMin and RestartBackoffMax bound the delay before a dead
	// managed containerd is started again (doubling per quick failure).
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration

	// Snapshotter unpacks images and holds container root filesystems.
	Snapshotter string
	// RuntimeName is the containerd runtime (shim) for containers.
	RuntimeName string
	// CgroupParent is the cgroup (cgroupfs path) under which every container
	// gets ParentCgroup/<container ID>. Empty: "/" + Namespace, which is
	// node-unique because the namespace is.
	CgroupParent string
	// InsecureRegistries are registry hosts (host[:port]) pulled from over
	// plain HTTP, e.g. a peer node or a test registry on loopback.
	InsecureRegistries []string

	// LogMaxBytes is the size past which RotateLogs moves a container log
	// to "<file>.1" (copy + truncate). 0 disables rotation.
	LogMaxBytes int64
	// LogRotateInterval is how often Run calls RotateLogs. 0 disables it.
	LogRotateInterval time.Duration
	// LogFollowInterval is how often a following ReadLogs polls the file.
	LogFollowInterval time.Duration
}

// DefaultConfig returns a Config with every optional field set; callers
// fill DataDir and Namespace.
func DefaultConfig() Config {
	return Config{
		ContainerdBinary:  "containerd",
		StartTimeout:      30 * time.Second,
		StopTimeout:       10 * time.Second,
		RestartBackoffMin: 500 * time.Millisecond,
		RestartBackoffMax: 30 * time.Second,
		Snapshotter:       "overlayfs",
		RuntimeName:       "io.containerd.runc.v2",
		LogMaxBytes:       10 << 20,
		LogRotateInterval: 10 * time.Second,
		LogFollowInterval: 200 * time.Millisecond,
	}
}

// NamespaceForNode returns the containerd namespace for a node name:
// "skiff-" followed by the name with characters containerd rejects replaced.
func NamespaceForNode(node string) string {
	s := strings.ToLower(node)
	s = invalidNSChars.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-.")
	if s == "" {
		s = "default"
	}
	return "skiff-" + s
}

var (
	invalidNSChars = regexp.MustCompile(`[^a-z0-9.-]+`)
	validNamespace = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)
)

// maxSocketPath is the usable length of a unix socket path (108 bytes
// including the NUL, minus containerd's ".ttrpc" suffix headroom).
const maxSocketPath = 100

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		add("DataDir %q must be an absolute path", c.DataDir)
	}
	if !validNamespace.MatchString(c.Namespace) || len(c.Namespace) > 76 {
		add("Namespace %q is not a valid containerd namespace", c.Namespace)
	}
	if c.Socket == "" {
		if c.ContainerdBinary == "" {
			add("ContainerdBinary is required in managed mode")
		}
		if c.DataDir != "" && len(c.managedSocket()) > maxSocketPath {
			add("DataDir %q is too long: socket path %q exceeds %d bytes", c.DataDir, c.managedSocket(), maxSocketPath)
		}
	} else if !filepath.IsAbs(c.Socket) {
		add("Socket %q must be an absolute path", c.Socket)
	}
	if c.StartTimeout <= 0 || c.StopTimeout <= 0 {
		add("StartTimeout and StopTimeout must be positive")
	}
	if c.RestartBackoffMin <= 0 || c.RestartBackoffMax < c.RestartBackoffMin {
		add("need 0 < RestartBackoffMin <= RestartBackoffMax")
	}
	if c.Snapshotter == "" || c.RuntimeName == "" {
		add("Snapshotter and RuntimeName are required")
	}
	if c.CgroupParent != "" && !strings.HasPrefix(c.CgroupParent, "/") {
		add("CgroupParent %q must start with /", c.CgroupParent)
	}
	if c.LogMaxBytes < 0 || c.LogRotateInterval < 0 || c.LogFollowInterval <= 0 {
		add("LogMaxBytes and LogRotateInterval must be >= 0, LogFollowInterval > 0")
	}
	return errors.Join(errs...)
}

// managed reports whether the Runtime runs its own containerd.
func (c Config) managed() bool { return c.Socket == "" }

// Paths inside DataDir. See docs/runtime.md for the layout.
func (c Config) containerdDir() string { return filepath.Join(c.DataDir, "containerd") }
func (c Config) managedSocket() string { return filepath.Join(c.containerdDir(), "c.sock") }
func (c Config) configFile() string    { return filepath.Join(c.containerdDir(), "config.toml") }
func (c Config) pidFile() string       { return filepath.Join(c.containerdDir(), "containerd.pid") }
func (c Config) daemonLog() string     { return filepath.Join(c.containerdDir(), "containerd.log") }
func (c Config) fifoDir() string       { return filepath.Join(c.DataDir, "fifo") }
func (c Config) sandboxDir() string    { return filepath.Join(c.DataDir, "sandboxes") }
func (c Config) logDir() string        { return filepath.Join(c.DataDir, "logs") }

// socket is the gRPC address the client dials.
func (c Config) socket() string {
	if c.managed() {
		return c.managedSocket()
	}
	return c.Socket
}

// cgroupParent is CgroupParent or its default.
func (c Config) cgroupParent() string {
	if c.CgroupParent != "" {
		return c.CgroupParent
	}
	return "/" + c.Namespace
}
