package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/proto"
)

// watchLeadership fans Raft's single leader channel out to every
// RunLeaderTasks caller.
func (n *Node) watchLeadership() {
	for isLeader := range n.raft.LeaderCh() {
		n.resetReady(isLeader)
		n.leaderMu.Lock()
		for _, ch := range n.leaderCb {
			select {
			case ch <- isLeader:
			default:
				// A pending, unread notification is replaced by the
				// latest state; the receiver re-checks State anyway.
				select {
				case <-ch:
				default:
				}
				ch <- isLeader
			}
		}
		n.leaderMu.Unlock()
	}
}

// leaderState tracks whether this node leads and has applied everything
// committed before its term: only then is its replica complete enough to
// answer reads and check write preconditions.
type leaderState struct {
	mu    sync.Mutex
	gen   uint64        // bumped on every leadership change
	ready bool          // leader, and the term's barrier has applied
	ch    chan struct{} // closed when ready turns true
}

func (n *Node) resetReady(isLeader bool) {
	n.lead.mu.Lock()
	n.lead.gen++
	gen := n.lead.gen
	n.lead.ready = false
	n.lead.ch = make(chan struct{})
	n.lead.mu.Unlock()
	if isLeader {
		go n.barrierForTerm(gen)
	}
}

// barrierForTerm waits until the FSM has applied every entry committed
// before this term, then marks the leader ready (unless leadership moved).
func (n *Node) barrierForTerm(gen uint64) {
	noop := (&proto.Command{Type: proto.CommandNoop}).Encode()
	for n.raft.State() == raft.Leader {
		// A command (not raft.Barrier) so the store's applied index moves
		// past Raft's own term-start entry.
		if err := n.raft.Apply(noop, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("cluster: no-op after election failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			n.lead.mu.Lock()
			stale := n.lead.gen != gen
			n.lead.mu.Unlock()
			if stale {
				return
			}
			continue
		}
		n.lead.mu.Lock()
		if n.lead.gen == gen && !n.lead.ready {
			n.lead.ready = true
			close(n.lead.ch)
		}
		n.lead.mu.Unlock()
		return
	}
}

// WaitLeaderReady blocks until this node is a ready leader; it fails with
// ErrNotLeader as soon as the node is not the leader.
func (n *Node) WaitLeaderReady(ctx context.Context) error {
	for {
		if n.raft.State() != raft.Leader {
			return notLeaderError{ErrNotLeader}
		}
		n.lead.mu.Lock()
		ready, ch := n.lead.ready, n.lead.ch
		n.lead.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReadIndex returns an index at least as high as every write acknowledged
// before the call (Raft's read index): the leader confirms with a quorum
// that it still leads, then reports its commit index.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if err := n.WaitLeaderReady(ctx); err != nil {
		return 0, err
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, raftError(err)
	}
	return n.raft.CommitIndex(), nil
}

// WriteIndex returns the commit index a ready leader's replica must reach
// before it checks a write's preconditions against local state.
func (n *Node) WriteIndex(ctx context.Context) (uint64, error) {
	if err := n.WaitLeaderReady(ctx); err != nil {
		return 0, err
	}
	return n.raft.CommitIndex(), nil
}

// RunLeaderTasks calls fn with a context that lives exactly as long as this
// node's term as leader, every time it becomes leader, until ctx ends. fn
// starts only after the local store has applied everything committed
// before this term (a Raft barrier), so it sees a complete state.
func (n *Node) RunLeaderTasks(ctx context.Context, fn func(ctx context.Context)) {
	ch := make(chan bool, 1)
	n.leaderMu.Lock()
	n.leaderCb = append(n.leaderCb, ch)
	n.leaderMu.Unlock()
	var cur *term
	defer func() { cur.stop() }()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		leading := n.raft.State() == raft.Leader
		switch {
		case leading && cur == nil:
			wctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
			err := n.WaitLeaderReady(wctx)
			cancel()
			if err != nil {
				break
			}
			cur = startTerm(ctx, fn)
			n.log.Info("cluster: leader tasks started", "node", n.cfg.NodeName)
		case !leading && cur != nil:
			cur.stop()
			cur = nil
			n.log.Info("cluster: leader tasks stopped", "node", n.cfg.NodeName)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-check.C:
		}
	}
}

// term is one run of leader tasks.
type term struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startTerm(ctx context.Context, fn func(context.Context)) *term {
	lctx, cancel := context.WithCancel(ctx)
	t := &term{cancel: cancel}
	t.wg.Add(1)
	go func() { defer t.wg.Done(); fn(lctx) }()
	return t
}

// stop cancels the term and waits for its tasks; nil-safe.
func (t *term) stop() {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}
