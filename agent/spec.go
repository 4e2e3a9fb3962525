package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// errConfig marks a container whose configuration cannot be turned into a
// runtime spec (status reason CreateContainerConfigError).
var errConfig = errors.New("container configuration error")

// podEnv is what downward-API environment variables may refer to.
type podEnv struct {
	nodeName, hostIP, podIP string
}

// containerSpec builds the runtime spec of container c of pod in sandbox
// sb (Attempt, Labels and SpecHash are the caller's).
func containerSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb Sandbox, penv podEnv, src configSource) (ContainerSpec, error) {
	env, err := containerEnv(ctx, pod, c, penv, src)
	if err != nil {
		return ContainerSpec{}, err
	}
	vars := envMap(env)
	spec := ContainerSpec{
		PodUID:       string(pod.UID),
		PodName:      pod.Name,
		PodNamespace: pod.Namespace,
		Name:         c.Name,
		SpecHash:     specHash(pod, c),
		Image:        c.Image,
		Command:      expandAll(c.Command, vars),
		Args:         expandAll(c.Args, vars),
		Env:          env,
		WorkingDir:   c.WorkingDir,
		User:         containerUser(pod, c),
		Resources:    containerResources(c),
		HostNetwork:  pod.Spec.HostNetwork,
		NetNSPath:    sb.NetNSPath,
		IPCNSPath:    sb.IPCNSPath,
		UTSNSPath:    sb.UTSNSPath,
		Hostname:     sb.Hostname,
	}
	if pod.Spec.HostNetwork {
		spec.NetNSPath = ""
	}
	return spec, nil
}

// containerEnv resolves c's environment like the kubelet: first every key
// of envFrom's ConfigMaps and Secrets, then env, whose literal values have
// $(VAR) references to earlier variables expanded and whose valueFrom reads
// a ConfigMap or Secret key or a downward API field of the pod. A later
// setting of a name replaces an earlier one.
func containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, penv podEnv, src configSource) ([]EnvVar, error) {
	b := newEnvBuilder()
	if err := addEnvFrom(ctx, pod, c, src, b); err != nil {
		return nil, err
	}
	for _, e := range c.Env {
		v := expand(e.Value, b.vars)
		if from := e.ValueFrom; from != nil {
			var err error
			if from.ConfigMapKeyRef != nil || from.SecretKeyRef != nil {
				var ok bool
				if v, ok, err = keyRef(ctx, pod, src, from); err != nil {
					return nil, fmt.Errorf("%w (env %s)", err, e.Name)
				} else if !ok {
					continue
				}
			} else if v, err = envSource(pod, c, e, penv); err != nil {
				return nil, err
			}
		}
		b.set(e.Name, v)
	}
	return b.out, nil
}

// envSource resolves an env var's downward API valueFrom.
func envSource(pod *corev1.Pod, c *corev1.Container, e corev1.EnvVar, penv podEnv) (string, error) {
	src := e.ValueFrom
	switch {
	case src.FieldRef != nil:
		switch src.FieldRef.FieldPath {
		case "metadata.name":
			return pod.Name, nil
		case "metadata.namespace":
			return pod.Namespace, nil
		case "metadata.uid":
			return string(pod.UID), nil
		case "spec.nodeName":
			return penv.nodeName, nil
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName, nil
		case "status.hostIP":
			return penv.hostIP, nil
		case "status.podIP":
			return penv.podIP, nil
		}
		if k, ok := strings.CutPrefix(src.FieldRef.FieldPath, "metadata.labels['"); ok {
			return pod.Labels[strings.TrimSuffix(k, "']")], nil
		}
		if k, ok := strings.CutPrefix(src.FieldRef.FieldPath, "metadata.annotations['"); ok {
			return pod.Annotations[strings.TrimSuffix(k, "']")], nil
		}
		return "", fmt.Errorf("%w: env %s: field %q is not supported", errConfig, e.Name, src.FieldRef.FieldPath)
	case src.ResourceFieldRef != nil:
		return resourceField(c, src.ResourceFieldRef)
	}
	return "", fmt.Errorf("%w: env %s: empty valueFrom", errConfig, e.Name)
}

// resourceField resolves a resourceFieldRef of the container itself.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("%w: resource %q", errConfig, ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "0", nil
	}
	div := ref.Divisor
	if div.IsZero() {
		return q.String(), nil
	}
	n := q.MilliValue() / div.MilliValue()
	if q.MilliValue()%div.MilliValue() != 0 {
		n++ // the kubelet rounds up
	}
	return strconv.FormatInt(n, 10), nil
}

func envMap(env []EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func expandAll(in []string, vars map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// expand replaces $(VAR) with the value of a defined variable, as
// Kubernetes does: "$$" is a literal "$", undefined references stay as
// they are.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte('$')
	}
	return b.String()
}

// containerUser returns the runtime user from the security contexts.
func containerUser(pod *corev1.Pod, c *corev1.Container) string {
	var uid, gid *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	switch {
	case uid == nil:
		return ""
	case gid == nil:
		return strconv.FormatInt(*uid, 10)
	}
	return strconv.FormatInt(*uid, 10) + ":" + strconv.FormatInt(*gid, 10)
}

// containerResources maps limits and requests to cgroup settings. A CPU
// request defaults to the limit, as Kubernetes defaulting does.
func containerResources(c *corev1.Container) Resources {
	var r Resources
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitBytes = q.Value()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CPULimitMilli = q.MilliValue()
		r.CPURequestMilli = r.CPULimitMilli
	}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.CPURequestMilli = q.MilliValue()
	}
	return r
}

// hashInput is what a container's spec hash covers: the fields that shape
// the runtime container, as written in the pod (not resolved, so that a
// later pod IP does not change it). omitempty keeps hashes stable when
// fields are added.
type hashInput struct {
	Image       string                       `json:"image,omitempty"`
	Command     []string                     `json:"command,omitempty"`
	Args        []string                     `json:"args,omitempty"`
	WorkingDir  string                       `json:"workingDir,omitempty"`
	Env         []corev1.EnvVar              `json:"env,omitempty"`
	Resources   *corev1.ResourceRequirements `json:"resources,omitempty"`
	User        string                       `json:"user,omitempty"`
	HostNetwork bool                         `json:"hostNetwork,omitempty"`
	Hostname    string                       `json:"hostname,omitempty"`
}

// specHash hashes container c of pod. A running container whose recorded
// hash differs is replaced.
func specHash(pod *corev1.Pod, c *corev1.Container) string {
	in := hashInput{
		Image: c.Image, Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir, Env: c.Env,
		User: containerUser(pod, c), HostNetwork: pod.Spec.HostNetwork, Hostname: pod.Spec.Hostname,
	}
	if len(c.Resources.Limits) > 0 || len(c.Resources.Requests) > 0 {
		in.Resources = &c.Resources
	}
	b, _ := json.Marshal(in)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
