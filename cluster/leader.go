package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// watchLeadership fans Raft's single leader channel out to every
// RunLeaderTasks caller.
func (n *Node) watchLeadership() {
	for isLeader := range n.raft.LeaderCh() {
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
			if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
				n.log.Warn("cluster: barrier after election failed", "err", err)
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
