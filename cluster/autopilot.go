package cluster

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// AutopilotConfig tunes how the leader manages Raft membership.
type AutopilotConfig struct {
	// TargetVoters is how many voters the cluster keeps (1, 3 or 5).
	TargetVoters int
	// MaxStandbys is how many non-voting servers are kept warm.
	MaxStandbys int
	// DeadServerStabilization is how long gossip must have called a
	// server dead before it loses its seat.
	DeadServerStabilization time.Duration
	// PromoteAfter is how long a standby must have been replicating
	// before it may become a voter.
	PromoteAfter time.Duration
	// Interval is how often membership is reconciled without a gossip
	// change.
	Interval time.Duration
	// CaughtUp, when set, reports whether a standby's replica is close
	// enough to the leader's to be promoted without stalling the quorum.
	CaughtUp func(id string) bool
}

// DefaultAutopilotConfig returns the defaults.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{TargetVoters: 3, MaxStandbys: 2, DeadServerStabilization: 2 * time.Second,
		PromoteAfter: time.Second, Interval: time.Second}
}

// autopilot keeps the Raft configuration matched to gossip membership. It
// runs on the leader only, as a leader task.
type autopilot struct {
	n       *Node
	g       *Gossip
	cfg     AutopilotConfig
	addedAt map[raft.ServerID]time.Time
	reach   reachability
}

// RunAutopilot reconciles Raft membership until ctx (the leader term) ends.
func (n *Node) RunAutopilot(ctx context.Context, g *Gossip, cfg AutopilotConfig) {
	a := &autopilot{n: n, g: g, cfg: cfg, addedAt: map[raft.ServerID]time.Time{}}
	changes, unsubscribe := g.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		if err := a.reconcile(); err != nil {
			n.log.Warn("autopilot: reconcile failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// serverView is one Raft server joined with its gossip state.
type serverView struct {
	raft.Server
	member  Member
	known   bool
	healthy bool
}

func (a *autopilot) view() ([]serverView, error) {
	f := a.n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []serverView
	for _, s := range f.Configuration().Servers {
		v := serverView{Server: s}
		v.member, v.known = a.g.Member(string(s.ID))
		v.healthy = string(s.ID) == a.n.cfg.NodeName || (v.known && v.member.State == MemberAlive)
		out = append(out, v)
	}
	return out, nil
}

func quorum(voters int) int { return voters/2 + 1 }

// reconcile makes one change at a time (each Raft configuration change
// must commit before the next), re-reading the configuration each round.
func (a *autopilot) reconcile() error {
	for i := 0; i < 8; i++ {
		servers, err := a.view()
		if err != nil {
			return err
		}
		changed, err := a.step(servers)
		if err != nil || !changed {
			return err
		}
	}
	return nil
}

// step applies the most urgent membership change, if any: replace gone
// servers, then fill voter seats, then standbys, then trim extra voters.
func (a *autopilot) step(servers []serverView) (bool, error) {
	now := time.Now()
	var voters, healthyVoters, standbys int
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			if s.healthy {
				healthyVoters++
			}
		} else {
			standbys++
		}
	}
	for _, s := range servers {
		if a.gone(s, now) {
			return true, a.remove(s, servers, voters, healthyVoters)
		}
	}
	if voters < a.cfg.TargetVoters {
		for _, s := range servers {
			if s.Suffrage != raft.Voter && s.healthy && now.Sub(a.added(s.ID, now)) >= a.cfg.PromoteAfter && a.caughtUp(s.ID) {
				a.n.log.Info("autopilot: promoting standby to voter", "server", s.ID)
				return true, a.n.raft.AddVoter(s.ID, s.Address, 0, 0).Error()
			}
		}
	}
	if standbys < a.cfg.MaxStandbys || voters+standbys < a.cfg.TargetVoters {
		if m, ok := a.candidate(servers); ok {
			a.n.log.Info("autopilot: adding standby", "server", m.Name, "raft", m.Meta.Raft)
			a.addedAt[raft.ServerID(m.Name)] = now
			return true, a.n.raft.AddNonvoter(raft.ServerID(m.Name), raft.ServerAddress(m.Meta.Raft), 0, 0).Error()
		}
	}
	if voters > a.cfg.TargetVoters && healthyVoters == voters {
		for _, s := range servers {
			if s.Suffrage == raft.Voter && string(s.ID) != a.n.cfg.NodeName {
				a.n.log.Info("autopilot: demoting extra voter", "server", s.ID)
				return true, a.n.raft.DemoteVoter(s.ID, 0, 0).Error()
			}
		}
	}
	return false, nil
}

// gone reports whether a server should lose its place: it left on purpose,
// or gossip has called it dead for longer than the stabilization time.
func (a *autopilot) gone(s serverView, now time.Time) bool {
	if string(s.ID) == a.n.cfg.NodeName || !s.known {
		return false
	}
	switch s.member.State {
	case MemberLeft:
		return true
	case MemberDead:
		// Gossip can be wrong on a starved machine: a server that still
		// accepts connections on its API port keeps its seat.
		return now.Sub(s.member.Since) >= a.cfg.DeadServerStabilization && !a.reach.reachable(s.member.Meta.API)
	}
	return false
}

// reachability answers whether something accepts TCP connections at an
// address: a crashed daemon's port refuses at once, a cut-off node's times
// out, and a merely slow one is still accepted by its kernel. Answers are
// cached briefly so reconcile loops do not dial the same dead node on
// every pass. Safe for concurrent use.
type reachability struct {
	mu    sync.Mutex
	cache map[string]reachAnswer
}

type reachAnswer struct {
	ok bool
	at time.Time
}

const reachTTL = 2 * time.Second

func (r *reachability) reachable(addr string) bool {
	if addr == "" {
		return false
	}
	r.mu.Lock()
	if a, hit := r.cache[addr]; hit && time.Since(a.at) < reachTTL {
		r.mu.Unlock()
		return a.ok
	}
	r.mu.Unlock()
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err == nil {
		c.Close()
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]reachAnswer{}
	}
	r.cache[addr] = reachAnswer{ok: err == nil, at: time.Now()}
	r.mu.Unlock()
	return err == nil
}

// remove takes a gone server out of the configuration. A voter is only
// removed when the voters that remain can still form a quorum; a healthy
// standby is promoted first so the cluster never runs a seat short.
func (a *autopilot) remove(s serverView, servers []serverView, voters, healthyVoters int) error {
	if s.Suffrage == raft.Voter {
		if healthyVoters < a.cfg.TargetVoters {
			for _, c := range servers {
				if c.Suffrage != raft.Voter && c.healthy && a.caughtUp(c.ID) {
					a.n.log.Info("autopilot: promoting standby to replace dead voter", "standby", c.ID, "dead", s.ID)
					return a.n.raft.AddVoter(c.ID, c.Address, 0, 0).Error()
				}
			}
		}
		if healthyVoters < quorum(voters-1) {
			a.n.log.Warn("autopilot: not removing dead voter, quorum would be at risk", "server", s.ID)
			return nil
		}
	}
	a.n.log.Info("autopilot: removing server", "server", s.ID, "state", s.member.State)
	delete(a.addedAt, s.ID)
	return a.n.raft.RemoveServer(s.ID, 0, 0).Error()
}

// candidate picks an alive server-role member that is not in Raft yet.
func (a *autopilot) candidate(servers []serverView) (Member, bool) {
	in := map[string]bool{}
	for _, s := range servers {
		in[string(s.ID)] = true
	}
	for _, m := range a.g.Members() {
		if !in[m.Name] && m.State == MemberAlive && m.Meta.Role == RoleServer && m.Meta.Raft != "" {
			return m, true
		}
	}
	return Member{}, false
}

func (a *autopilot) caughtUp(id raft.ServerID) bool {
	return a.cfg.CaughtUp == nil || a.cfg.CaughtUp(string(id))
}

// added returns when a standby was added (or long ago if this leader did
// not add it).
func (a *autopilot) added(id raft.ServerID, now time.Time) time.Time {
	if t, ok := a.addedAt[id]; ok {
		return t
	}
	return now.Add(-a.cfg.PromoteAfter)
}
