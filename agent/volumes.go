package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Pod volumes live under DataDir/pods/<uid>/volumes/<name>; containers get
// them as bind mounts. Supported: emptyDir (on disk, or tmpfs for medium
// Memory), hostPath (with its type checks), configMap and secret (files
// written when a container is created; secrets always on tmpfs, so their
// values never reach the node's disk). Other volume types are a
// CreateContainerConfigError naming the type.

// podVolumesDir is the directory of one pod's volumes.
func (a *Agent) podVolumesDir(uid string) string {
	return filepath.Join(a.cfg.DataDir, "pods", uid, "volumes")
}

// setUpVolumes prepares every volume of the pod (idempotent; ConfigMap and
// Secret contents are refreshed) and returns each volume's host path.
func (a *Agent) setUpVolumes(ctx context.Context, pod *corev1.Pod, src configSource) (map[string]string, error) {
	paths := make(map[string]string, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := a.setUpVolume(ctx, pod, v, src)
		if err != nil {
			return nil, fmt.Errorf("%w: volume %q: %w", errConfig, v.Name, err)
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func (a *Agent) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, src configSource) (string, error) {
	dir := filepath.Join(a.podVolumesDir(string(pod.UID)), v.Name)
	switch {
	case v.EmptyDir != nil:
		if v.EmptyDir.Medium == corev1.StorageMediumMemory {
			size := ""
			if q := v.EmptyDir.SizeLimit; q != nil {
				size = strconv.FormatInt(q.Value(), 10)
			}
			return dir, ensureTmpfs(dir, 0o777, size)
		}
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o777) // writable whatever the user, as the kubelet does
	case v.HostPath != nil:
		return v.HostPath.Path, checkHostPath(v.HostPath)
	case v.ConfigMap != nil:
		cv := v.ConfigMap
		data, _, err := configData(ctx, src, false, pod.Namespace, cv.Name, cv.Optional, true)
		if err != nil {
			return "", err
		}
		return dir, writeProjection(dir, data, cv.Items, cv.DefaultMode, cv.Optional, "ConfigMap "+pod.Namespace+"/"+cv.Name)
	case v.Secret != nil:
		sv := v.Secret
		if err := ensureTmpfs(dir, 0o755, ""); err != nil {
			return "", err
		}
		data, _, err := configData(ctx, src, true, pod.Namespace, sv.SecretName, sv.Optional, true)
		if err != nil {
			return "", err
		}
		return dir, writeProjection(dir, data, sv.Items, sv.DefaultMode, sv.Optional, "Secret "+pod.Namespace+"/"+sv.SecretName)
	}
	return "", fmt.Errorf("volume type %s is not supported", volumeType(v))
}

// refreshConfigVolumes rewrites a running pod's ConfigMap and Secret
// volumes every ConfigVolumeRefresh, and returns when to do it next (zero:
// the pod has none, or no container has started yet). Failures are logged;
// the files keep their last contents.
func (w *podWorker) refreshConfigVolumes(ctx context.Context, pod *corev1.Pod) time.Time {
	a := w.a
	if w.sandbox == nil || len(a.cache.pod(w.uid)) == 0 || !hasConfigVolumes(pod) {
		return time.Time{}
	}
	now := a.clock.Now()
	if next := w.volsAt.Add(a.cfg.ConfigVolumeRefresh); now.Before(next) {
		return next
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.ConfigMap == nil && v.Secret == nil {
			continue
		}
		if _, err := a.setUpVolume(ctx, pod, v, a.config); err != nil && ctx.Err() == nil {
			a.log.Warn("refreshing volume", "pod", podKey(pod), "volume", v.Name, "err", err)
		}
	}
	w.volsAt = now
	return now.Add(a.cfg.ConfigVolumeRefresh)
}

func hasConfigVolumes(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil {
			return true
		}
	}
	return false
}

// writeProjection writes data (all keys, or the listed items) into dir.
func writeProjection(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional *bool, what string) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	files := map[string][]byte{}
	modes := map[string]os.FileMode{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if isOptional(optional) {
				continue
			}
			return fmt.Errorf("couldn't find key %s in %s", it.Key, what)
		}
		if err := checkRelativePath(it.Path); err != nil {
			return err
		}
		files[it.Path] = v
		if it.Mode != nil {
			modes[it.Path] = os.FileMode(*it.Mode)
		}
	}
	return writePayload(dir, files, mode, modes)
}

// writePayload makes dir hold exactly files: each written to a temporary
// file and renamed into place (a container never reads half a file), and
// files no longer in the payload removed.
func writePayload(dir string, files map[string][]byte, mode os.FileMode, modes map[string]os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		m, ok := modes[name]
		if !ok {
			m = mode
		}
		tmp := filepath.Join(filepath.Dir(p), ".tmp-"+filepath.Base(p))
		if err := writeFileNoFollow(tmp, files[name], m.Perm()); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if _, keep := files[rel]; !keep {
			return os.Remove(p)
		}
		return nil
	})
}

// writeFileNoFollow writes a new file at path with mode (past the umask),
// refusing to follow a symbolic link there.
func writeFileNoFollow(path string, data []byte, mode os.FileMode) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkRelativePath refuses item paths that are absolute or leave the
// volume.
func checkRelativePath(p string) error {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..") {
		return fmt.Errorf("item path %q must be relative and stay inside the volume", p)
	}
	return nil
}

// checkHostPath applies a hostPath volume's type.
func checkHostPath(hp *corev1.HostPathVolumeSource) error {
	if !filepath.IsAbs(hp.Path) {
		return fmt.Errorf("hostPath %q must be absolute", hp.Path)
	}
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, err := os.Stat(hp.Path)
	switch typ {
	case corev1.HostPathUnset:
		if errors.Is(err, os.ErrNotExist) {
			return os.MkdirAll(hp.Path, 0o755) // as containerd's CRI does
		}
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return os.MkdirAll(hp.Path, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	want := map[corev1.HostPathType]func(os.FileMode) bool{
		corev1.HostPathDirectoryOrCreate: os.FileMode.IsDir,
		corev1.HostPathDirectory:         os.FileMode.IsDir,
		corev1.HostPathFileOrCreate:      os.FileMode.IsRegular,
		corev1.HostPathFile:              os.FileMode.IsRegular,
		corev1.HostPathSocket:            func(m os.FileMode) bool { return m&os.ModeSocket != 0 },
		corev1.HostPathCharDev:           func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 },
		corev1.HostPathBlockDev:          func(m os.FileMode) bool { return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 },
	}[typ]
	if want == nil || !want(fi.Mode()) {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, typ)
	}
	return nil
}

// volumeMounts turns c's volumeMounts into bind mounts of the prepared
// volumes. ConfigMap and Secret volumes are always read-only, as in
// Kubernetes: the agent rewrites them as root, so a container must not be
// able to plant links in them.
func volumeMounts(pod *corev1.Pod, c *corev1.Container, paths map[string]string) ([]Mount, error) {
	readOnly := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		readOnly[v.Name] = v.ConfigMap != nil || v.Secret != nil
	}
	out := make([]Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		host, ok := paths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("%w: volumeMount %q: the pod has no such volume", errConfig, vm.Name)
		}
		if vm.SubPath != "" {
			p, err := subPath(host, vm.SubPath)
			if err != nil {
				return nil, fmt.Errorf("%w: volumeMount %q: subPath: %w", errConfig, vm.Name, err)
			}
			host = p
		}
		out = append(out, Mount{HostPath: host, ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly || readOnly[vm.Name]})
	}
	return out, nil
}

// subPath resolves sub inside the volume at root, creating missing
// directories. Every component must be a real directory or file, never a
// symbolic link: a container could otherwise point a subPath anywhere on
// the node (CVE-2017-1002101). A link swapped in between this check and the
// runtime's mount is not caught.
func subPath(root, sub string) (string, error) {
	if err := checkRelativePath(sub); err != nil {
		return "", err
	}
	p := root
	for _, part := range strings.Split(filepath.Clean(sub), string(filepath.Separator)) {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(p, 0o777); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&os.ModeSymlink != 0:
			return "", fmt.Errorf("%s is a symbolic link", sub)
		}
	}
	return p, nil
}

// tearDownVolumes unmounts and removes a pod's volume directories.
func (a *Agent) tearDownVolumes(uid string) error {
	if uid == "" || uid == "." || uid == ".." || strings.Contains(uid, "/") {
		return fmt.Errorf("bad pod UID %q", uid)
	}
	root := filepath.Join(a.cfg.DataDir, "pods", uid)
	entries, _ := os.ReadDir(filepath.Join(root, "volumes"))
	for _, e := range entries {
		if err := unmountIfMounted(filepath.Join(root, "volumes", e.Name())); err != nil {
			return err
		}
	}
	return os.RemoveAll(root)
}

// volumeUIDs lists the pod UIDs that have volume directories.
func (a *Agent) volumeUIDs() []string {
	entries, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "pods"))
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// volumeType names the kind of an unsupported volume.
func volumeType(v *corev1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case v.Projected != nil:
		return "projected"
	case v.DownwardAPI != nil:
		return "downwardAPI"
	case v.NFS != nil:
		return "nfs"
	case v.CSI != nil:
		return "csi"
	case v.Ephemeral != nil:
		return "ephemeral"
	case v.Image != nil:
		return "image"
	}
	return "(unknown)"
}

// tmpfsOptions builds the mount data for a tmpfs of the given mode and
// size ("" or "0": no limit beyond the default).
func tmpfsOptions(mode os.FileMode, size string) string {
	opts := "mode=" + strconv.FormatUint(uint64(mode.Perm()), 8)
	if size != "" && size != "0" {
		opts += ",size=" + size
	}
	return opts
}
