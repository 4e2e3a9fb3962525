package containerd

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsKind is a namespace type pinned for a sandbox: its /proc ns file name
// and its clone flag.
type nsKind struct {
	name string
	flag int
}

// podNamespaces are the namespaces a pod's containers share, as in
// Kubernetes: network, IPC and UTS (hostname).
var podNamespaces = []nsKind{
	{"net", unix.CLONE_NEWNET},
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
}

// pinNamespaces creates fresh network, IPC and UTS namespaces and
// bind-mounts each onto paths[kind.name] so they outlive every process. The
// network namespace gets its loopback up and the UTS namespace hostname.
//
// It works on a dedicated, locked OS thread that unshares its own
// namespaces. The thread is never unlocked: when the goroutine returns, the
// Go runtime ends the thread instead of reusing it with foreign namespaces.
func pinNamespaces(paths map[string]string, hostname string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- pinOnThisThread(paths, hostname)
	}()
	return <-errc
}

func pinOnThisThread(paths map[string]string, hostname string) (err error) {
	flags := 0
	for _, k := range podNamespaces {
		flags |= k.flag
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", hostname, err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	var pinned []string
	defer func() {
		if err != nil {
			for _, p := range pinned {
				_ = unpinNamespace(p)
			}
		}
	}()
	for _, k := range podNamespaces {
		target := paths[k.name]
		if err := bindNamespace("/proc/thread-self/ns/"+k.name, target); err != nil {
			return err
		}
		pinned = append(pinned, target)
	}
	return nil
}

// bindNamespace bind-mounts the namespace file src onto a new empty file.
func bindNamespace(src, target string) error {
	f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace file: %w", err)
	}
	f.Close()
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return fmt.Errorf("bind mount %s on %s: %w", src, target, err)
	}
	return nil
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// unpinNamespace lazily unmounts a pinned namespace file and removes it.
// The namespace itself lives on while processes use it.
func unpinNamespace(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isPinned reports whether path is a mounted namespace file.
func isPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
