package scheduler

import (
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// clusterCache is the scheduler's picture of the nodes and of the pods
// bound to them, kept current by the informers. Like kube-scheduler's
// cache it also holds assumed pods: pods this scheduler has placed whose
// binding the informer has not shown yet. They count against their node
// from the moment they are placed, so two pods placed in quick succession
// cannot both take the last free slot. An assumed pod is dropped when the
// informer shows it (bound or deleted), when its binding fails, or
// AssumedPodTTL after its binding succeeded if the informer never shows it.
// Safe for concurrent use.
type clusterCache struct {
	clock clock.PassiveClock
	ttl   time.Duration

	mu     sync.Mutex
	nodes  map[string]*NodeInfo
	sorted []*NodeInfo // nodes with a Node object, by name; nil when stale
	pods   map[types.UID]*cachedPod
}

type cachedPod struct {
	info     *PodInfo
	node     string
	assumed  bool
	deadline time.Time // for assumed pods once bound; zero while binding
}

func newClusterCache(clk clock.PassiveClock, ttl time.Duration) *clusterCache {
	return &clusterCache{clock: clk, ttl: ttl, nodes: map[string]*NodeInfo{}, pods: map[types.UID]*cachedPod{}}
}

// Nodes implements State; the caller holds c.mu.
func (c *clusterCache) Nodes() []*NodeInfo {
	if c.sorted == nil {
		c.sorted = make([]*NodeInfo, 0, len(c.nodes))
		for _, n := range c.nodes {
			if n.Node != nil {
				c.sorted = append(c.sorted, n)
			}
		}
		sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].Name() < c.sorted[j].Name() })
	}
	return c.sorted
}

func (c *clusterCache) nodeLocked(name string) *NodeInfo {
	n, ok := c.nodes[name]
	if !ok {
		n = NewNodeInfo(nil)
		c.nodes[name] = n
	}
	return n
}

func (c *clusterCache) setNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodeLocked(node.Name).SetNode(node)
	c.sorted = nil
}

func (c *clusterCache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[name]; ok {
		n.Node = nil
		if n.Requested.Pods <= 0 {
			delete(c.nodes, name)
		}
	}
	c.sorted = nil
}

// occupies reports whether a pod uses its node's resources: bound and
// not finished. Pods being deleted count until they are gone.
func occupies(pod *corev1.Pod) bool { return pod.Spec.NodeName != "" && !isPodTerminal(pod) }

// addPod accounts a pod the informer shows bound (occupies is true),
// replacing its assumed or older copy.
func (c *clusterCache) addPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(pod.UID)
	c.addLocked(&cachedPod{info: NewPodInfo(pod), node: pod.Spec.NodeName})
}

// removePod stops accounting a pod (deleted, or finished).
func (c *clusterCache) removePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(uid)
}

func (c *clusterCache) addLocked(p *cachedPod) {
	c.pods[p.info.Pod.UID] = p
	c.nodeLocked(p.node).AddPod(p.info)
}

func (c *clusterCache) removeLocked(uid types.UID) {
	p, ok := c.pods[uid]
	if !ok {
		return
	}
	delete(c.pods, uid)
	if n, ok := c.nodes[p.node]; ok {
		n.RemovePod(p.info)
		if n.Node == nil && n.Requested.Pods <= 0 {
			delete(c.nodes, p.node)
		}
	}
}

// isAssumed reports whether the pod was placed and not yet seen bound.
func (c *clusterCache) isAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[uid]
	return ok && p.assumed
}

// place runs the pipeline on the cache and assumes the pod on the chosen
// node, atomically, so concurrent placements see each other.
func (c *clusterCache) place(pl *Pipeline, pod *PodInfo) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	for uid, p := range c.pods {
		if p.assumed && !p.deadline.IsZero() && now.After(p.deadline) {
			c.removeLocked(uid)
		}
	}
	n, err := pl.Place(pod, c)
	if err != nil {
		return "", err
	}
	c.addLocked(&cachedPod{info: pod, node: n.Name(), assumed: true})
	return n.Name(), nil
}

// finishBinding starts the expiry clock of an assumed pod.
func (c *clusterCache) finishBinding(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pods[uid]; ok && p.assumed {
		p.deadline = c.clock.Now().Add(c.ttl)
	}
}

// forget drops an assumed pod whose binding failed.
func (c *clusterCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pods[uid]; ok && p.assumed {
		c.removeLocked(uid)
	}
}
