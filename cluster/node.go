package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

var (
	// ErrNotLeader is returned by Propose on a node that is not the leader.
	ErrNotLeader = errors.New("cluster: not the raft leader")
)

// Node is one member of the control plane. Its methods are safe for
// concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *fsm.Store
	raft  *raft.Raft
	trans raft.Transport
	bolt  *raftboltdb.BoltStore

	leaderMu sync.Mutex
	leaderCb []chan bool
	lead     leaderState

	shutdownOnce sync.Once
}

// New opens (or creates) the node's data dir and starts Raft. With
// cfg.Bootstrap and no existing state it bootstraps a one-voter cluster.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	n.lead.ch = make(chan struct{})
	if n.log == nil {
		n.log = slog.Default()
	}
	store, err := fsm.NewStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	n.store = store
	if err := n.openRaft(); err != nil {
		n.Shutdown()
		return nil, err
	}
	go n.watchLeadership()
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeName)
	rc.HeartbeatTimeout = n.cfg.scaled(baseHeartbeat)
	rc.ElectionTimeout = n.cfg.scaled(baseElection)
	rc.LeaderLeaseTimeout = n.cfg.scaled(baseLeaderLease)
	rc.CommitTimeout = n.cfg.scaled(baseCommit)
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	return rc
}

func (n *Node) openRaft() error {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The freelist is rebuilt on open instead of written on every commit:
	// fewer pages per fsync on the write path.
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}})
	if err != nil {
		return fmt.Errorf("cluster: opening raft log: %w", err)
	}
	n.bolt = bolt
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, n.cfg.SnapshotRetain, hclog.New(&hclog.LoggerOptions{Name: "snapshot", Level: hclog.Warn}))
	if err != nil {
		return fmt.Errorf("cluster: opening snapshots: %w", err)
	}
	trans, err := n.transport()
	if err != nil {
		return err
	}
	n.trans = trans
	rc := n.raftConfig()
	if n.cfg.Bootstrap {
		existing, err := raft.HasExistingState(bolt, bolt, snaps)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if !existing {
			conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
			if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, conf); err != nil {
				return fmt.Errorf("cluster: bootstrap: %w", err)
			}
		}
	}
	// Recent entries are replicated from memory, not read back from disk.
	logs, err := raft.NewLogCache(1024, bolt)
	if err != nil {
		return fmt.Errorf("cluster: log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, fsm.NewFSM(n.store), logs, bolt, snaps, trans)
	if err != nil {
		return fmt.Errorf("cluster: starting raft: %w", err)
	}
	n.raft = r
	return nil
}

// transport returns the injected transport, a mutual-TLS one when the node
// has a TLS identity, or plain TCP (single-node development only).
func (n *Node) transport() (raft.Transport, error) {
	if n.cfg.Transport != nil {
		return n.cfg.Transport, nil
	}
	advertise, err := n.advertiseAddr()
	if err != nil {
		return nil, err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Warn})
	if n.cfg.TLS == nil {
		t, err := raft.NewTCPTransportWithLogger(n.cfg.RaftBind, advertise, 3, 10*time.Second, logger)
		if err != nil {
			return nil, fmt.Errorf("cluster: raft transport on %s: %w", n.cfg.RaftBind, err)
		}
		return t, nil
	}
	sl, err := newTLSStreamLayer(n.cfg.RaftBind, advertise, n.cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft transport on %s: %w", n.cfg.RaftBind, err)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: 10 * time.Second, Logger: logger,
	}), nil
}

func (n *Node) advertiseAddr() (net.Addr, error) {
	addr := n.cfg.RaftAdvertise
	if addr == "" {
		addr = n.cfg.RaftBind
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft advertise address %q: %w", addr, err)
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return nil, fmt.Errorf("cluster: raft address %q needs a concrete IP to advertise (set the advertise address)", addr)
	}
	return tcp, nil
}

// Store returns the local replica of the replicated store.
func (n *Node) Store() *fsm.Store { return n.store }

// Raft exposes the underlying Raft instance for status reporting.
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Propose replicates cmd through Raft and returns the state machine's
// result. It fails with ErrNotLeader on a follower.
func (n *Node) Propose(ctx context.Context, cmd *proto.Command) (proto.Object, error) {
	if n.raft.State() != raft.Leader {
		return nil, notLeaderError{ErrNotLeader}
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(cmd.Encode(), timeout)
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("unexpected FSM response %T", f.Response()))
	}
	return res.Object, res.Err
}

// raftError maps Raft's failures to API errors: not-leader conditions are
// retryable (503 with Retry-After); a lost leadership leaves the outcome
// unknown (504).
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return notLeaderError{fmt.Errorf("%w: %w", ErrNotLeader, err)}
	case errors.Is(err, raft.ErrLeadershipLost):
		return apierrors.NewTimeoutError("leadership changed while the write was in flight; its outcome is unknown", 0)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return apierrors.NewTooManyRequests("the control plane is overloaded", 1)
	case errors.Is(err, raft.ErrRaftShutdown):
		return apierrors.NewServiceUnavailable("this node is shutting down")
	}
	return apierrors.NewInternalError(err)
}

// notLeaderError is ErrNotLeader that the API turns into a retryable 503.
type notLeaderError struct{ err error }

func (e notLeaderError) Error() string { return e.err.Error() }
func (e notLeaderError) Unwrap() error { return e.err }

// Status makes the error a Kubernetes status: 503 with Retry-After.
func (e notLeaderError) Status() metav1.Status {
	st := apierrors.NewServiceUnavailable("this node just lost the Raft leadership; retry").ErrStatus
	st.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return st
}

// Shutdown stops Raft and closes the stores. It is safe to call twice.
func (n *Node) Shutdown() error {
	var err error
	n.shutdownOnce.Do(func() {
		if n.raft != nil {
			err = n.raft.Shutdown().Error()
		}
		if c, ok := n.trans.(io.Closer); ok {
			c.Close()
		}
		if n.bolt != nil {
			if cerr := n.bolt.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}
