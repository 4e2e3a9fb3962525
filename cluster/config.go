package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/fsm"
)

// Config configures a Node.
type Config struct {
	// NodeName is this node's unique name; it is also its Raft server ID.
	NodeName string
	// DataDir holds the Raft log, stable store and snapshots (under raft/).
	DataDir string
	// RaftBind is the TCP address the Raft transport listens on.
	RaftBind string
	// RaftAdvertise is the address other servers dial; empty means RaftBind.
	RaftAdvertise string
	// Bootstrap makes this node the first voter of a new cluster when its
	// data dir holds no Raft state yet.
	Bootstrap bool
	// TimingMultiplier scales every Raft timeout (1 is LAN-tuned; raise it
	// on slow or busy machines).
	TimingMultiplier float64
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int
	// TrailingLogs is how many log entries are kept after a snapshot so
	// slightly lagging followers can catch up without one.
	TrailingLogs uint64
	// ApplyTimeout bounds how long a proposal may wait to be enqueued.
	ApplyTimeout time.Duration
	// TLS, when set, secures the Raft transport with mutual TLS.
	TLS *TLSBundle
	// Transport, when set, replaces the network transport (tests use
	// raft's in-memory transport).
	Transport raft.Transport
	// Store configures the replicated store.
	Store fsm.Config
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns LAN-tuned defaults; NodeName and DataDir must be set.
func DefaultConfig() Config {
	return Config{
		RaftBind:          "127.0.0.1:6444",
		TimingMultiplier:  1,
		SnapshotThreshold: 8192,
		SnapshotInterval:  30 * time.Second,
		SnapshotRetain:    2,
		TrailingLogs:      10240,
		ApplyTimeout:      10 * time.Second,
		Store:             fsm.DefaultConfig(),
	}
}

// Validate checks the configuration, including cross-field rules.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node name is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if _, _, err := net.SplitHostPort(c.RaftBind); err != nil {
		errs = append(errs, fmt.Errorf("raft bind address %q: %w", c.RaftBind, err))
	}
	if c.RaftAdvertise != "" {
		if host, _, err := net.SplitHostPort(c.RaftAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("raft advertise address %q: %w", c.RaftAdvertise, err))
		} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("raft advertise address %q must be a concrete IP", c.RaftAdvertise))
		}
	}
	if c.TimingMultiplier < 1 || c.TimingMultiplier > 20 {
		errs = append(errs, fmt.Errorf("timing multiplier %v must be between 1 and 20", c.TimingMultiplier))
	}
	if c.SnapshotRetain < 1 {
		errs = append(errs, errors.New("snapshot retain must be at least 1"))
	}
	if c.SnapshotThreshold == 0 || c.TrailingLogs == 0 {
		errs = append(errs, errors.New("snapshot threshold and trailing logs must be positive"))
	}
	if err := c.Store.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// raftTimings are the LAN-tuned base timeouts that TimingMultiplier scales.
//
// A follower starts an election after HeartbeatTimeout to 2x that without
// hearing from the leader; a leader steps down after LeaderLeaseTimeout
// without a quorum's answers. Tighter values fail over faster but make a
// busy two-core machine lose leaders it did not have to.
const (
	baseHeartbeat   = 600 * time.Millisecond
	baseElection    = 600 * time.Millisecond
	baseLeaderLease = 500 * time.Millisecond
	baseCommit      = 20 * time.Millisecond
)

func (c Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.TimingMultiplier)
}
