package agent

import (
	"context"
	"errors"
	"io"
	"time"
)

// Runtime is the node's container runtime as the pod agent sees it: images,
// pod sandboxes (pinned namespaces) and containers. Production code uses
// agent/containerd; unit tests of the agent use a fake.
//
// Concurrency: every method is safe for concurrent use by multiple
// goroutines. The runtime does not serialise operations on the same pod or
// container: callers (one worker per pod) must not, for example, start and
// remove the same container at the same time.
//
// Idempotency: the lifecycle calls are safe to retry after an error or a
// crash of the caller. CreateSandbox returns the existing sandbox,
// CreateContainer returns the existing ID for an identical spec, StopContainer
// of a stopped container and Remove* of something absent return nil.
//
// Contexts: cancelling ctx aborts the call; the operation may then be half
// done, and the caller converges by retrying. Errors wrap the sentinels below
// so callers can branch with errors.Is.
type Runtime interface {
	// ImportImage loads an image archive (an OCI image layout tar or a
	// `docker save` archive) and unpacks every image in it for the
	// snapshotter. Names come from the archive's annotations and are
	// normalised (busybox -> docker.io/library/busybox:latest).
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
	// EnsureImage makes ref present and unpacked according to policy. It
	// pulls only when the policy allows and requires it. Errors wrap
	// ErrInvalidImageName, ErrImageNotPresent (PullNever and absent) or
	// ErrImagePull.
	EnsureImage(ctx context.Context, ref string, policy PullPolicy) (Image, error)
	// ListImages returns every image the runtime holds.
	ListImages(ctx context.Context) ([]Image, error)
	// RemoveImage deletes the image name ref; absent names are not an error.
	RemoveImage(ctx context.Context, ref string) error

	// CreateSandbox pins fresh network, IPC and UTS namespaces for a pod
	// (loopback up, hostname set), ready for a CNI ADD against
	// Sandbox.NetNSPath. It returns the existing sandbox for a known PodUID.
	CreateSandbox(ctx context.Context, spec SandboxSpec) (Sandbox, error)
	// RemoveSandbox unpins the pod's namespaces. Run CNI DEL before it and
	// remove the pod's containers first; absent sandboxes are not an error.
	RemoveSandbox(ctx context.Context, podUID string) error
	// ListSandboxes returns every pinned sandbox, also those created before
	// a restart of the caller.
	ListSandboxes(ctx context.Context) ([]Sandbox, error)

	// CreateContainer creates (but does not start) a container and returns
	// its ID. The ID is a function of (PodUID, Name, Attempt): creating the
	// same attempt again returns the same ID, or an error wrapping
	// ErrAlreadyExists when the stored SpecHash differs. The image must be
	// present (see EnsureImage), else the error wraps ErrImageNotPresent.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// StartContainer starts a created container. Its output goes to the
	// container's log file, written by the runtime's shim, not by the caller.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends the image's stop signal (SIGTERM by default),
	// waits up to grace for the container to exit, then sends SIGKILL and
	// waits for the exit. Stopping a container that is not running is a no-op.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer kills the container if needed and deletes its task,
	// metadata and root filesystem snapshot. Log files are kept (see
	// RemovePodLogs). Absent containers are not an error.
	RemoveContainer(ctx context.Context, id string) error
	// ContainerStatus reports one container; unknown IDs wrap ErrNotFound.
	ContainerStatus(ctx context.Context, id string) (ContainerStatus, error)
	// ListContainers reports every container of this node, running or not.
	// A restarted agent uses it to adopt what is already running.
	ListContainers(ctx context.Context) ([]ContainerStatus, error)
	// Exec runs a process inside a running container and waits for it. It
	// returns the process's exit code; err is non-nil only when the process
	// could not be run or waited for.
	Exec(ctx context.Context, id string, spec ExecSpec) (exitCode int, err error)
	// Events streams container lifecycle events until ctx ends, then closes
	// the channel. Each call gets its own stream. EventResync comes first,
	// once the stream is live, and again whenever events may have been
	// missed (e.g. the runtime daemon restarted): list containers after
	// each EventResync and no change goes unnoticed.
	Events(ctx context.Context) <-chan ContainerEvent

	// ReadLogs writes the log of container id (or of its previous attempt)
	// to w, honouring opts. With opts.Follow it keeps writing until ctx ends
	// or the container is no longer running.
	ReadLogs(ctx context.Context, id string, opts LogOptions, w io.Writer) error
	// RemovePodLogs deletes every log file of a pod; absent is not an error.
	RemovePodLogs(ctx context.Context, podNamespace, podName, podUID string) error
}

// Sentinel errors. Runtime errors wrap these (check with errors.Is) and carry
// the detail in their message.
var (
	// ErrNotFound: the container, sandbox or image does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the object exists with a different spec, or a
	// container was already started.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidSpec: the request is malformed (missing fields, no command).
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrInvalidImageName: the image reference cannot be parsed.
	ErrInvalidImageName = errors.New("invalid image name")
	// ErrImageNotPresent: the image is absent and the policy forbids pulling.
	ErrImageNotPresent = errors.New("image not present")
	// ErrImagePull: pulling the image failed (registry unreachable, name
	// unknown, unauthorised, ...); the message says why.
	ErrImagePull = errors.New("image pull failed")
	// ErrUnavailable: the runtime daemon cannot be reached right now; retry.
	ErrUnavailable = errors.New("runtime unavailable")
)

// PullPolicy says when EnsureImage may contact a registry, with the meaning
// of the Kubernetes imagePullPolicy of the same name.
type PullPolicy string

const (
	// PullAlways pulls on every call, even when the image is present.
	PullAlways PullPolicy = "Always"
	// PullIfNotPresent pulls only when the image is absent.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullNever never pulls; an absent image is ErrImageNotPresent.
	PullNever PullPolicy = "Never"
)

// Image is an image held by the runtime.
type Image struct {
	// Ref is the normalised name, e.g. docker.io/library/busybox:latest.
	Ref string `json:"ref"`
	// Digest is the digest of the manifest or index the name points at
	// (sha256:...), stable across nodes for the same content.
	Digest string `json:"digest"`
	// Size is the size in bytes of the image's content for this platform
	// (compressed layers + config + manifest).
	Size int64 `json:"size"`
}

// SandboxSpec describes a pod sandbox to create.
type SandboxSpec struct {
	// PodUID identifies the pod; it is the sandbox key. Required.
	PodUID string
	// Name is the pod's name. Required.
	Name string
	// Namespace is the pod's Kubernetes namespace. Required.
	Namespace string
	// Hostname is set in the pod's UTS namespace; empty means Name.
	Hostname string
}

// Sandbox is a pod's set of pinned namespaces that its containers join.
type Sandbox struct {
	// PodUID, Name, Namespace and Hostname repeat the SandboxSpec.
	PodUID    string
	Name      string
	Namespace string
	Hostname  string
	// NetNSPath is a bind-mounted network namespace file, the target for
	// CNI ADD/DEL and for ContainerSpec.NetNSPath.
	NetNSPath string
	// IPCNSPath is the pinned IPC namespace (ContainerSpec.IPCNSPath).
	IPCNSPath string
	// UTSNSPath is the pinned UTS namespace (ContainerSpec.UTSNSPath).
	UTSNSPath string
	// CreatedAt is when the sandbox was created.
	CreatedAt time.Time
}

// ContainerSpec describes a container to create, with Kubernetes semantics.
type ContainerSpec struct {
	// PodUID, PodName and PodNamespace identify the owning pod. Required.
	PodUID       string
	PodName      string
	PodNamespace string
	// Name is the container's name within the pod. Required.
	Name string
	// Attempt is the restart count: 0 for the first run, +1 per restart.
	Attempt uint32
	// SpecHash is the caller's hash of the container's desired spec, stored
	// so that an adopting agent can tell whether a running container is
	// still what it wants. Empty: the runtime hashes this ContainerSpec
	// (without Attempt and LogPath).
	SpecHash string
	// Image is the image reference; it is normalised like in EnsureImage.
	Image string
	// Command overrides the image's ENTRYPOINT when non-empty.
	Command []string
	// Args overrides the image's CMD when non-empty.
	Args []string
	// Env is a list of variables set on top of the image's environment.
	Env []EnvVar
	// WorkingDir overrides the image's working directory when non-empty.
	WorkingDir string
	// User overrides the image's user when non-empty ("uid", "uid:gid" or
	// a name from the image's /etc/passwd).
	User string
	// Mounts are bind mounts from the host into the container.
	Mounts []Mount
	// Resources are the cgroup limits and requests.
	Resources Resources
	// NetNSPath is the network namespace to join (Sandbox.NetNSPath).
	// Empty with HostNetwork false: a private namespace with loopback only.
	NetNSPath string
	// HostNetwork shares the node's network namespace; NetNSPath is ignored.
	HostNetwork bool
	// IPCNSPath and UTSNSPath are the pod's IPC and UTS namespaces to join;
	// empty means a private namespace.
	IPCNSPath string
	UTSNSPath string
	// Hostname is the container's hostname. Empty: the pod's hostname when
	// UTSNSPath is set, else PodName.
	Hostname string
	// LogPath is the absolute file the container's stdout+stderr go to.
	// Empty: the runtime's default layout (see docs/runtime.md).
	LogPath string
	// Labels are free-form labels stored with the container and returned
	// in ContainerStatus.Labels. Keys starting with "io.skiff." are reserved.
	Labels map[string]string
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// Mount is a bind mount of a host path into a container.
type Mount struct {
	// HostPath is the absolute source path on the node.
	HostPath string
	// ContainerPath is the absolute destination inside the container.
	ContainerPath string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// Resources are a container's cgroup settings. Zero values mean "unset".
type Resources struct {
	// MemoryLimitBytes is the memory cgroup limit; exceeding it gets the
	// container OOM-killed (ContainerStatus.Reason "OOMKilled").
	MemoryLimitBytes int64
	// CPULimitMilli caps CPU time via a CFS quota (1000 = one core) over a
	// 100 ms period.
	CPULimitMilli int64
	// CPURequestMilli sets the relative CPU weight (cpu.shares =
	// milli*1024/1000, at least 2).
	CPURequestMilli int64
}

// ContainerState is the lifecycle state of a container.
type ContainerState string

const (
	// StateCreated: created, never started.
	StateCreated ContainerState = "created"
	// StateRunning: its main process runs.
	StateRunning ContainerState = "running"
	// StateExited: its main process has exited; ExitCode and Reason are set.
	StateExited ContainerState = "exited"
	// StateUnknown: it was started but its process state is lost (for
	// example the shim died with the machine); treat it as dead.
	StateUnknown ContainerState = "unknown"
)

// Reasons reported in ContainerStatus.Reason for exited containers.
const (
	ReasonCompleted = "Completed" // exit code 0
	ReasonError     = "Error"     // non-zero exit code
	ReasonOOMKilled = "OOMKilled" // the memory cgroup killed a process
	ReasonUnknown   = "Unknown"   // state lost, see StateUnknown
)

// ContainerStatus is what the runtime knows about a container. Everything an
// adopting agent needs to re-identify it is here, read back from the
// runtime's metadata.
type ContainerStatus struct {
	// ID is the runtime's container ID.
	ID string
	// PodUID, PodName, PodNamespace, Name, Attempt and SpecHash are the
	// values given to CreateContainer.
	PodUID       string
	PodName      string
	PodNamespace string
	Name         string
	Attempt      uint32
	SpecHash     string
	// Image is the normalised image reference it was created from.
	Image string
	// State is the lifecycle state.
	State ContainerState
	// PID is the host PID of the main process while running, else 0.
	PID uint32
	// ExitCode is the exit code once exited (128+signal when killed).
	ExitCode int32
	// Reason is set once exited: ReasonCompleted, ReasonError,
	// ReasonOOMKilled or ReasonUnknown.
	Reason string
	// CreatedAt, StartedAt and FinishedAt are zero when not applicable.
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// LogPath is the file the container's output is written to.
	LogPath string
	// Labels are the caller's labels from ContainerSpec.Labels.
	Labels map[string]string
}

// ExecSpec describes a process to run in a container with Exec.
type ExecSpec struct {
	// Cmd is the command and its arguments. Required.
	Cmd []string
	// Env adds to (and overrides) the container's environment.
	Env []EnvVar
	// Stdin, if set, is copied to the process; its EOF closes the process's
	// stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output; nil discards it.
	// They may be the same writer (writes are then serialised); otherwise
	// they are written from different goroutines. With TTY, all output goes
	// to Stdout.
	Stdout io.Writer
	Stderr io.Writer
	// TTY allocates a terminal for the process.
	TTY bool
	// Resize, with TTY, delivers the client's terminal sizes; the runtime
	// applies each to the process's terminal until the channel closes or
	// the process ends.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// EventType is the kind of a ContainerEvent.
type EventType string

const (
	// EventStarted: a container's main process started.
	EventStarted EventType = "started"
	// EventExited: a container's main process exited (ExitCode set).
	EventExited EventType = "exited"
	// EventOOM: the memory cgroup of a container killed a process.
	EventOOM EventType = "oom"
	// EventDeleted: a container's task was deleted.
	EventDeleted EventType = "deleted"
	// EventResync: events may have been lost; re-list all containers.
	EventResync EventType = "resync"
)

// ContainerEvent tells that something happened to a container.
type ContainerEvent struct {
	// Type is the kind of event.
	Type EventType
	// ContainerID is the affected container (empty for EventResync).
	ContainerID string
	// ExitCode is set for EventExited.
	ExitCode int32
	// At is when it happened, by the runtime's clock.
	At time.Time
}

// LogOptions select what ReadLogs writes.
type LogOptions struct {
	// Previous reads the log of the attempt before the container's one.
	Previous bool
	// TailLines > 0 starts that many lines before the end; 0 means all.
	TailLines int
	// LimitBytes > 0 stops after that many bytes.
	LimitBytes int64
	// Follow keeps streaming new output until ctx ends or the container
	// stops running.
	Follow bool
}
