// Package containerd implements agent.Runtime on containerd: images,
// pinned pod sandboxes, containers, exec, events and logs of one node.
//
// # containerd
//
// In managed mode (Config.Socket empty, the default) Run starts a private
// containerd with a config file generated under DataDir (own root, state,
// gRPC and ttrpc sockets, CRI disabled; /etc/containerd is never read),
// optionally behind Config.PrefixCommand (e.g. nsenter --net=...). It runs in
// its own process group with its output in a file, so it survives a kill -9
// of the agent; its PID is kept in a pid file and the next Run adopts it
// instead of starting a second daemon on the same root. A daemon that dies
// is restarted with back-off; when Run's context ends it is stopped by PID
// (SIGTERM, then SIGKILL). Containers survive both: their shims are separate
// processes that a restarted containerd reconnects to.
//
// In external mode (Config.Socket set) Run only waits for that daemon.
//
// Every node uses its own containerd namespace (NamespaceForNode) and cgroup
// parent (default "/<namespace>"), since several nodes may share a host and
// runc's state directory.
//
// # Containers
//
// Container IDs derive from (pod UID, container name, attempt); the pod and
// container identity, attempt, spec hash, log path and cgroup are stored as
// containerd labels (io.skiff.*), so ListContainers is all a restarted agent
// needs to adopt running containers. The shim writes a container's
// stdout+stderr to its log file itself (one O_APPEND descriptor per stream;
// see shimLogFile for why not containerd's file:// URI), which keeps logging
// while the agent is down. Exit reasons: OOMKilled when the
// container's memory cgroup counts an OOM kill (read from the kernel's
// oom_kill counter while the exited task is kept, with containerd's OOM
// events as fallback), else Completed or Error by exit code.
//
// Only classic containerd services are used (no Transfer or Sandbox API), so
// containerd 1.6 works. The on-disk layout is documented in docs/runtime.md.
package containerd
