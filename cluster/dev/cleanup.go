package dev

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
)

// cleanupRuntime removes what a killed node's containerd left behind: the
// processes of its containers and shims (found through their cgroups and
// command lines), mounts under the node's directories, cgroups and runc
// state. Only things named after this node's containerd namespace or
// living under its data dir are touched.
func cleanupRuntime(n *Node) { PurgeNode(n.Name, filepath.Dir(n.DataDir)) }

// PurgeNode removes every container, shim, mount, cgroup and runc state of
// the node named node whose files live under dir. The node's daemon and
// containerd must already be stopped.
func PurgeNode(node, dir string) {
	ns := containerd.NamespaceForNode(node)
	// Wait for the killed processes to be gone: a dying shim still holds
	// its state directory, and removing it then fails with ENOTEMPTY.
	for _, pid := range append(killCgroupProcs(ns), killShims(ns)...) {
		waitGone(pid)
	}
	unmountUnder(dir)
	removeCgroups(ns)
	os.RemoveAll(filepath.Join("/run/containerd/runc", ns))
}

// killCgroupProcs SIGKILLs every process in the namespace's cgroups and
// returns their PIDs.
func killCgroupProcs(ns string) []int {
	var pids []int
	for _, ctrl := range []string{"memory", "pids", "cpu", "freezer"} {
		filepath.WalkDir(filepath.Join("/sys/fs/cgroup", ctrl, ns), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// killShims SIGKILLs containerd shims started for the namespace and returns
// their PIDs.
func killShims(ns string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			for i, a := range args {
				if a == "-namespace" && i+1 < len(args) && args[i+1] == ns {
					syscall.Kill(pid, syscall.SIGKILL)
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// RemoveTree removes dir, retrying for a few seconds while the processes
// that wrote into it (shims, containerd) finish dying.
func RemoveTree(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// removeCgroups removes the namespace's (now empty) cgroup directories.
func removeCgroups(ns string) {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		root := filepath.Join("/sys/fs/cgroup", e.Name(), ns)
		var dirs []string
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
	}
}
