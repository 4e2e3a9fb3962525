package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is what gossip believes about a member.
type MemberState string

const (
	MemberAlive   MemberState = "alive"
	MemberSuspect MemberState = "suspect"
	MemberDead    MemberState = "dead"
	MemberLeft    MemberState = "left"
)

// NodeMeta is what every member tells the others about itself (carried in
// memberlist's node metadata; kept well under its 512-byte limit).
type NodeMeta struct {
	Role  string `json:"r"`
	API   string `json:"a"`
	Raft  string `json:"f,omitempty"`
	Agent string `json:"g,omitempty"`
	// InRaft is set while the node holds a replica (voter or standby)
	// and so can serve the API itself.
	InRaft bool `json:"v,omitempty"`
}

// Member is one node as gossip sees it.
type Member struct {
	Name  string
	Addr  string // gossip address host:port
	Meta  NodeMeta
	State MemberState
	// Since is when the member entered its current state.
	Since time.Time
}

// GossipConfig configures membership.
type GossipConfig struct {
	NodeName string
	// BindAddr and BindPort are where gossip listens (UDP and TCP).
	BindAddr string
	BindPort int
	// AdvertiseAddr is the IP others reach this node at.
	AdvertiseAddr string
	// Key encrypts all gossip traffic (AES, 16/24/32 bytes); required
	// outside tests.
	Key []byte
	// Meta is this node's metadata.
	Meta NodeMeta
	// TimingMultiplier scales the failure detector like Raft's timeouts.
	TimingMultiplier float64
	// Transport replaces the network (tests); nil uses UDP+TCP.
	Transport memberlist.Transport
	Logger    *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Base failure-detector timings, scaled by TimingMultiplier: a dead node
// is probed within ~ProbeInterval, and declared dead after the suspicion
// timeout (SuspicionMult × ProbeInterval, up to SuspicionMaxTimeoutMult
// times that without confirmations from other members).
const (
	baseProbeInterval = 300 * time.Millisecond
	baseProbeTimeout  = 200 * time.Millisecond
	baseGossip        = 100 * time.Millisecond
)

// Gossip tracks cluster membership. Safe for concurrent use.
type Gossip struct {
	cfg GossipConfig
	log *slog.Logger
	ml  *memberlist.Memberlist

	mu      sync.Mutex
	members map[string]*Member
	subs    []chan struct{}
}

// NewGossip starts the member list (not yet joined to anyone).
func NewGossip(cfg GossipConfig) (*Gossip, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TimingMultiplier < 1 {
		cfg.TimingMultiplier = 1
	}
	g := &Gossip{cfg: cfg, log: cfg.Logger, members: map[string]*Member{}}
	if g.log == nil {
		g.log = slog.Default()
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.BindPort
	mc.SecretKey = cfg.Key
	mc.Delegate = &metaDelegate{g: g}
	mc.Events = &eventDelegate{g: g}
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * cfg.TimingMultiplier) }
	mc.ProbeInterval = scale(baseProbeInterval)
	mc.ProbeTimeout = scale(baseProbeTimeout)
	mc.GossipInterval = scale(baseGossip)
	mc.SuspicionMult = 3
	mc.SuspicionMaxTimeoutMult = 3
	mc.PushPullInterval = 10 * time.Second
	mc.DNSConfigPath = "/nonexistent" // never consult the host resolver
	mc.Logger = log.New(io.Discard, "", 0)
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: starting gossip: %w", err)
	}
	g.ml = ml
	return g, nil
}

// Join contacts existing members; it succeeds if any answered.
func (g *Gossip) Join(addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	n, err := g.ml.Join(addrs)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = errors.New("no member answered")
	}
	return fmt.Errorf("cluster: joining gossip via %v: %w", addrs, err)
}

// Leave tells the others this node is leaving on purpose.
func (g *Gossip) Leave(timeout time.Duration) error { return g.ml.Leave(timeout) }

// Shutdown stops gossip without announcing anything (a crash, to others).
func (g *Gossip) Shutdown() error { return g.ml.Shutdown() }

// LocalAddr is this node's gossip address.
func (g *Gossip) LocalAddr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// UpdateMeta changes this node's metadata and broadcasts it.
func (g *Gossip) UpdateMeta(meta NodeMeta) error {
	g.mu.Lock()
	g.cfg.Meta = meta
	g.mu.Unlock()
	return g.ml.UpdateNode(2 * time.Second)
}

// Meta returns this node's current metadata.
func (g *Gossip) Meta() NodeMeta {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Meta
}

// Members returns every member ever seen, sorted by name.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Member returns one member by name.
func (g *Gossip) Member(name string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[name]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Subscribe returns a channel that receives a (coalesced) signal whenever
// membership changes, and the function that ends the subscription.
func (g *Gossip) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	g.mu.Lock()
	g.subs = append(g.subs, ch)
	g.mu.Unlock()
	return ch, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for i, c := range g.subs {
			if c == ch {
				g.subs = append(g.subs[:i], g.subs[i+1:]...)
				return
			}
		}
	}
}

// observe records a member's state from a memberlist callback.
func (g *Gossip) observe(n *memberlist.Node, state MemberState) {
	var meta NodeMeta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &meta); err != nil {
			g.log.Warn("gossip: bad metadata", "member", n.Name, "err", err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[n.Name]
	if !ok {
		m = &Member{Name: n.Name}
		g.members[n.Name] = m
	}
	if !ok || m.State != state {
		m.Since = g.cfg.Now()
		g.log.Info("gossip: member state", "member", n.Name, "state", state)
	}
	m.State = state
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if len(n.Meta) > 0 {
		m.Meta = meta
	}
	for _, ch := range g.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type eventDelegate struct{ g *Gossip }

func (e *eventDelegate) NotifyJoin(n *memberlist.Node)   { e.g.observe(n, MemberAlive) }
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.g.observe(n, MemberAlive) }
func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		e.g.observe(n, MemberLeft)
		return
	}
	e.g.observe(n, MemberDead)
}

type metaDelegate struct{ g *Gossip }

func (d *metaDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.g.Meta())
	if len(b) > limit {
		d.g.log.Error("gossip: node metadata over the limit", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}
