package agent

import (
	"maps"
	"slices"
	"sync"
)

// containerCache mirrors the runtime's containers. It is filled by a full
// list after every EventResync and kept current by refreshing single
// containers on events and after the agent's own actions, so pod syncs
// never list the runtime. Safe for concurrent use.
type containerCache struct {
	mu   sync.Mutex
	byID map[string]ContainerStatus
}

func newContainerCache() *containerCache {
	return &containerCache{byID: map[string]ContainerStatus{}}
}

// replace installs a full listing and returns the pod UIDs whose
// containers changed (appeared, disappeared or differ).
func (c *containerCache) replace(list []ContainerStatus) []string {
	next := make(map[string]ContainerStatus, len(list))
	for _, st := range list {
		next[st.ID] = st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := map[string]bool{}
	for id, st := range next {
		if old, ok := c.byID[id]; !ok || !sameStatus(old, st) {
			changed[st.PodUID] = true
		}
	}
	for id, st := range c.byID {
		if _, ok := next[id]; !ok {
			changed[st.PodUID] = true
		}
	}
	c.byID = next
	return slices.Sorted(maps.Keys(changed))
}

// set records one container's status and reports whether it changed.
func (c *containerCache) set(st ContainerStatus) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.byID[st.ID]
	c.byID[st.ID] = st
	return !ok || !sameStatus(old, st)
}

// remove forgets a container and returns its pod UID ("" if unknown).
func (c *containerCache) remove(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.byID[id]
	if !ok {
		return ""
	}
	delete(c.byID, id)
	return st.PodUID
}

// pod returns the containers of a pod.
func (c *containerCache) pod(uid string) []ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ContainerStatus
	for _, st := range c.byID {
		if st.PodUID == uid {
			out = append(out, st)
		}
	}
	return out
}

// all returns every container.
func (c *containerCache) all() []ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.byID))
}

// sameStatus compares the fields that matter to a pod sync.
func sameStatus(a, b ContainerStatus) bool {
	return a.State == b.State && a.ExitCode == b.ExitCode && a.Reason == b.Reason &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		a.SpecHash == b.SpecHash && a.PID == b.PID && a.PodUID == b.PodUID
}
