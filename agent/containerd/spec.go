package containerd

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/agent"
)

const (
	// cfsPeriod is the CFS period used for CPU limits (as in Kubernetes).
	cfsPeriod = 100_000
	// minCFSQuota is the smallest quota the kernel accepts (1 ms).
	minCFSQuota = 1_000
	// minShares is the smallest cpu.shares value (Kubernetes' minimum).
	minShares = 2
)

// validateContainerSpec checks the fields CreateContainer needs.
func validateContainerSpec(s agent.ContainerSpec) error {
	var problems []string
	for name, v := range map[string]string{"PodUID": s.PodUID, "PodName": s.PodName,
		"PodNamespace": s.PodNamespace, "Name": s.Name, "Image": s.Image} {
		if v == "" {
			problems = append(problems, name+" is required")
		}
	}
	if s.PodUID != "" && !validUID.MatchString(s.PodUID) {
		problems = append(problems, fmt.Sprintf("PodUID %q has characters outside [A-Za-z0-9._-]", s.PodUID))
	}
	if strings.ContainsAny(s.Name+s.PodName+s.PodNamespace, "/\x00") {
		problems = append(problems, "names must not contain '/'")
	}
	if s.LogPath != "" && !filepath.IsAbs(s.LogPath) {
		problems = append(problems, fmt.Sprintf("LogPath %q must be absolute", s.LogPath))
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.HostPath) || !path.IsAbs(m.ContainerPath) {
			problems = append(problems, fmt.Sprintf("mount %q -> %q: paths must be absolute", m.HostPath, m.ContainerPath))
		}
	}
	for k := range s.Labels {
		if strings.HasPrefix(k, "io.skiff.") {
			problems = append(problems, fmt.Sprintf("label %q uses the reserved prefix io.skiff.", k))
		}
	}
	if s.Resources.MemoryLimitBytes < 0 || s.Resources.CPULimitMilli < 0 || s.Resources.CPURequestMilli < 0 {
		problems = append(problems, "resources must not be negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: container %q: %s", agent.ErrInvalidSpec, s.Name, strings.Join(problems, "; "))
	}
	return nil
}

// resolveArgs applies Kubernetes semantics: Command replaces the image's
// ENTRYPOINT (and drops its CMD), Args replaces the image's CMD.
func resolveArgs(img ocispec.ImageConfig, command, args []string) ([]string, error) {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(append(argv, command...), args...)
	case len(args) > 0:
		argv = append(append(argv, img.Entrypoint...), args...)
	default:
		argv = append(append(argv, img.Entrypoint...), img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: no command: the image has no ENTRYPOINT or CMD and the spec sets none", agent.ErrInvalidSpec)
	}
	return argv, nil
}

// cpuQuota converts a CPU limit in millicores to a CFS quota for cfsPeriod.
func cpuQuota(milli int64) int64 {
	q := milli * cfsPeriod / 1000
	if q < minCFSQuota {
		q = minCFSQuota
	}
	return q
}

// cpuShares converts a CPU request in millicores to cpu.shares.
func cpuShares(milli int64) uint64 {
	s := milli * 1024 / 1000
	if s < minShares {
		s = minShares
	}
	return uint64(s)
}

// envList renders env vars as KEY=VALUE.
func envList(env []agent.EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// specOpts builds the OCI spec of a container: image defaults first, then
// the ContainerSpec's overrides, namespaces, mounts and cgroup settings.
func specOpts(img client.Image, s agent.ContainerSpec, argv []string, cgroup string) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(argv...),
		oci.WithCgroup(cgroup),
	}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(envList(s.Env)))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
	}
	opts = append(opts, namespaceOpts(s)...)
	if len(s.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(bindMounts(s.Mounts)))
	}
	return append(opts, resourceOpts(s.Resources)...)
}

// namespaceOpts joins the sandbox's namespaces and sets the hostname.
func namespaceOpts(s agent.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case s.HostNetwork:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	case s.NetNSPath != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNSPath}))
	}
	if s.IPCNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: s.IPCNSPath}))
	}
	if s.UTSNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: s.UTSNSPath}))
	}
	switch {
	case s.Hostname != "":
		opts = append(opts, oci.WithHostname(truncateHostname(s.Hostname)))
	case s.UTSNSPath == "":
		opts = append(opts, oci.WithHostname(truncateHostname(s.PodName)))
	}
	return opts
}

// bindMounts converts host bind mounts to OCI mounts.
func bindMounts(ms []agent.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Destination: m.ContainerPath,
			Type:        "bind",
			Source:      m.HostPath,
			Options:     []string{"rbind", "rprivate", mode},
		})
	}
	return out
}

// resourceOpts sets memory and CPU cgroup values; zero means unset.
func resourceOpts(res agent.Resources) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if res.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(res.MemoryLimitBytes)))
	}
	if res.CPULimitMilli > 0 {
		opts = append(opts, oci.WithCPUCFS(cpuQuota(res.CPULimitMilli), cfsPeriod))
	}
	if res.CPURequestMilli > 0 {
		opts = append(opts, oci.WithCPUShares(cpuShares(res.CPURequestMilli)))
	}
	return opts
}
