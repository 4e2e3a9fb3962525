package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/skiffhq/skiff/agent"
)

// Container labels. Everything an adopting agent needs to re-identify a
// container is stored here, in containerd's metadata, so it survives agent
// and containerd restarts.
const (
	labelManaged       = "io.skiff.managed"
	labelPodUID        = "io.skiff.pod.uid"
	labelPodName       = "io.skiff.pod.name"
	labelPodNamespace  = "io.skiff.pod.namespace"
	labelContainerName = "io.skiff.container.name"
	labelAttempt       = "io.skiff.container.attempt"
	labelSpecHash      = "io.skiff.container.spec-hash"
	labelLogPath       = "io.skiff.container.log-path"
	labelCgroup        = "io.skiff.container.cgroup"
	labelStopSignal    = "io.skiff.container.stop-signal"
	labelStartedAt     = "io.skiff.container.started-at"
	// userLabelPrefix prefixes the caller's labels so they never collide
	// with ours or containerd's.
	userLabelPrefix = "io.skiff.label/"
	// managedFilter selects our containers in containerd list calls.
	managedFilter = `labels."` + labelManaged + `"==true`
)

// containerID derives the containerd ID from what identifies a container
// attempt, so that a retried CreateContainer finds the first one.
func containerID(podUID, name string, attempt uint32) string {
	h := sha256.Sum256([]byte(podUID + "\x00" + name + "\x00" + strconv.FormatUint(uint64(attempt), 10)))
	return hex.EncodeToString(h[:16])
}

// specHash hashes a ContainerSpec without the fields that change per
// attempt, for callers that pass no SpecHash.
func specHash(spec agent.ContainerSpec) string {
	spec.Attempt, spec.LogPath, spec.SpecHash = 0, "", ""
	b, _ := json.Marshal(spec)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// containerLabels returns the containerd labels for a new container.
func containerLabels(spec agent.ContainerSpec, hash, logPath, cgroup, stopSignal string) map[string]string {
	l := map[string]string{
		labelManaged:       "true",
		labelPodUID:        spec.PodUID,
		labelPodName:       spec.PodName,
		labelPodNamespace:  spec.PodNamespace,
		labelContainerName: spec.Name,
		labelAttempt:       strconv.FormatUint(uint64(spec.Attempt), 10),
		labelSpecHash:      hash,
		labelLogPath:       logPath,
		labelCgroup:        cgroup,
		labelStopSignal:    stopSignal,
	}
	for k, v := range spec.Labels {
		l[userLabelPrefix+k] = v
	}
	return l
}

// userLabels extracts the caller's labels.
func userLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if rest, ok := strings.CutPrefix(k, userLabelPrefix); ok {
			out[rest] = v
		}
	}
	return out
}

// statusFromLabels fills the identity fields of a status from labels.
func statusFromLabels(id string, l map[string]string) agent.ContainerStatus {
	attempt, _ := strconv.ParseUint(l[labelAttempt], 10, 32)
	started, _ := time.Parse(time.RFC3339Nano, l[labelStartedAt])
	return agent.ContainerStatus{
		ID:           id,
		PodUID:       l[labelPodUID],
		PodName:      l[labelPodName],
		PodNamespace: l[labelPodNamespace],
		Name:         l[labelContainerName],
		Attempt:      uint32(attempt),
		SpecHash:     l[labelSpecHash],
		StartedAt:    started,
		LogPath:      l[labelLogPath],
		Labels:       userLabels(l),
	}
}
