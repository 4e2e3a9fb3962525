// Package cluster turns one machine's skiff agent into a member of a
// replicated control plane.
//
// A Node owns the Raft instance (hashicorp/raft with raft-boltdb for the log
// and stable store, file snapshots), the replicated store it drives (package
// fsm), and the hand-off of leadership to leader-only work:
//
//	n, err := cluster.New(cfg)          // opens or bootstraps the data dir
//	go n.RunLeaderTasks(ctx, startControllers)
//	obj, err := n.Propose(ctx, cmd)     // replicate a write, get the FSM's answer
//
// Propose only succeeds on the leader; callers elsewhere get ErrNotLeader
// and forward the request to LeaderAPI(). Later parts of this package add
// gossip membership, mTLS transport, join tokens and autopilot.
package cluster
