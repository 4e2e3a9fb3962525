package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/skiffhq/skiff/agent"
)

// A sandbox lives in DataDir/sandboxes/<podUID>/: the pinned namespace
// files net, ipc and uts, and sandbox.json with the agent.Sandbox record.

const sandboxFile = "sandbox.json"

var validUID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// sandboxPaths returns the directory and namespace files of a pod.
func (r *Runtime) sandboxPaths(podUID string) (string, map[string]string) {
	dir := filepath.Join(r.cfg.sandboxDir(), podUID)
	paths := map[string]string{}
	for _, k := range podNamespaces {
		paths[k.name] = filepath.Join(dir, k.name)
	}
	return dir, paths
}

// CreateSandbox implements agent.Runtime.
func (r *Runtime) CreateSandbox(ctx context.Context, spec agent.SandboxSpec) (agent.Sandbox, error) {
	if err := validateSandboxSpec(spec); err != nil {
		return agent.Sandbox{}, err
	}
	r.sandboxMu.Lock()
	defer r.sandboxMu.Unlock()
	if sb, err := r.loadSandbox(spec.PodUID); err == nil {
		return sb, nil
	}
	// Anything left from a half-done earlier attempt goes first.
	if err := r.removeSandboxLocked(spec.PodUID); err != nil {
		return agent.Sandbox{}, err
	}
	dir, paths := r.sandboxPaths(spec.PodUID)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return agent.Sandbox{}, fmt.Errorf("create sandbox dir: %w", err)
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = spec.Name
	}
	hostname = truncateHostname(hostname)
	if err := pinNamespaces(paths, hostname); err != nil {
		_ = os.RemoveAll(dir)
		return agent.Sandbox{}, fmt.Errorf("pin namespaces for pod %s: %w", spec.PodUID, err)
	}
	sb := agent.Sandbox{
		PodUID:    spec.PodUID,
		Name:      spec.Name,
		Namespace: spec.Namespace,
		Hostname:  hostname,
		NetNSPath: paths["net"],
		IPCNSPath: paths["ipc"],
		UTSNSPath: paths["uts"],
		CreatedAt: r.now().UTC(),
	}
	b, _ := json.MarshalIndent(sb, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, sandboxFile), b, 0o644); err != nil {
		_ = r.removeSandboxLocked(spec.PodUID)
		return agent.Sandbox{}, fmt.Errorf("record sandbox: %w", err)
	}
	r.log.Info("created sandbox", "pod", spec.Namespace+"/"+spec.Name, "uid", spec.PodUID, "netns", sb.NetNSPath)
	return sb, nil
}

// truncateHostname shortens a name to the 63 bytes a hostname may have, as
// the kubelet does, without a trailing '-' or '.'.
func truncateHostname(name string) string {
	if len(name) <= 63 {
		return name
	}
	return strings.TrimRight(name[:63], "-.")
}

func validateSandboxSpec(spec agent.SandboxSpec) error {
	var missing []string
	if spec.PodUID == "" {
		missing = append(missing, "PodUID")
	}
	if spec.Name == "" {
		missing = append(missing, "Name")
	}
	if spec.Namespace == "" {
		missing = append(missing, "Namespace")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: sandbox needs %s", agent.ErrInvalidSpec, strings.Join(missing, ", "))
	}
	if !validUID.MatchString(spec.PodUID) {
		return fmt.Errorf("%w: pod UID %q has characters outside [A-Za-z0-9._-]", agent.ErrInvalidSpec, spec.PodUID)
	}
	return nil
}

// loadSandbox reads a complete sandbox: its record and all pinned files.
func (r *Runtime) loadSandbox(podUID string) (agent.Sandbox, error) {
	dir, paths := r.sandboxPaths(podUID)
	b, err := os.ReadFile(filepath.Join(dir, sandboxFile))
	if err != nil {
		return agent.Sandbox{}, err
	}
	var sb agent.Sandbox
	if err := json.Unmarshal(b, &sb); err != nil {
		return agent.Sandbox{}, fmt.Errorf("decode %s: %w", dir, err)
	}
	for _, p := range paths {
		if !isPinned(p) {
			return agent.Sandbox{}, fmt.Errorf("%s is not a pinned namespace", p)
		}
	}
	return sb, nil
}

// RemoveSandbox implements agent.Runtime.
func (r *Runtime) RemoveSandbox(ctx context.Context, podUID string) error {
	if !validUID.MatchString(podUID) {
		return fmt.Errorf("%w: pod UID %q", agent.ErrInvalidSpec, podUID)
	}
	r.sandboxMu.Lock()
	defer r.sandboxMu.Unlock()
	return r.removeSandboxLocked(podUID)
}

func (r *Runtime) removeSandboxLocked(podUID string) error {
	dir, paths := r.sandboxPaths(podUID)
	var errs []error
	for _, p := range paths {
		errs = append(errs, unpinNamespace(p))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	return nil
}

// ListSandboxes implements agent.Runtime. Incomplete sandboxes (left by a
// crash during CreateSandbox) are removed, not listed.
func (r *Runtime) ListSandboxes(ctx context.Context) ([]agent.Sandbox, error) {
	r.sandboxMu.Lock()
	defer r.sandboxMu.Unlock()
	entries, err := os.ReadDir(r.cfg.sandboxDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []agent.Sandbox
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sb, err := r.loadSandbox(e.Name())
		if err != nil {
			r.log.Warn("removing incomplete sandbox", "uid", e.Name(), "err", err)
			if err := r.removeSandboxLocked(e.Name()); err != nil {
				r.log.Warn("remove incomplete sandbox", "uid", e.Name(), "err", err)
			}
			continue
		}
		out = append(out, sb)
	}
	slices.SortFunc(out, func(a, b agent.Sandbox) int { return strings.Compare(a.PodUID, b.PodUID) })
	return out, nil
}
