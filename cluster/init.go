package cluster

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// ErrAlreadyInitialized is returned by Init and Join for a data dir that
// already belongs to a cluster.
var ErrAlreadyInitialized = errors.New("cluster: this data dir already belongs to a cluster")

// Default ports of a skiff node.
const (
	DefaultAPIPort    = 6443
	DefaultRaftPort   = 6444
	DefaultGossipPort = 7946
	DefaultAgentPort  = 10250
)

// InitOptions describe the first node of a new cluster.
type InitOptions struct {
	DataDir          string
	ClusterName      string
	NodeName         string
	IP               net.IP
	Voters           int
	ServiceCIDR      string
	TimingMultiplier float64
	TokenTTL         time.Duration
	Ports            Ports
}

// Ports a node listens on.
type Ports struct{ API, Raft, Gossip, Agent int }

// DefaultPorts returns the standard ports.
func DefaultPorts() Ports {
	return Ports{API: DefaultAPIPort, Raft: DefaultRaftPort, Gossip: DefaultGossipPort, Agent: DefaultAgentPort}
}

// InitResult is what init hands back to its user.
type InitResult struct {
	Token      Token
	Kubeconfig []byte
	Settings   *Settings
}

// JoinCommand is the command another machine runs to join.
func (r *InitResult) JoinCommand() string {
	return fmt.Sprintf("skiff join %s --token %s", net.JoinHostPort(r.Settings.AdvertiseIP, strconv.Itoa(r.Settings.APIPort)), r.Token)
}

// Init creates a new cluster identity in o.DataDir: CA, this node's
// server certificate, the gossip key, an admin kubeconfig and a first join
// token (stored hashed, created in the cluster by the first leader).
func Init(o InitOptions, now time.Time) (*InitResult, error) {
	if _, err := LoadSettings(o.DataDir); err == nil {
		return nil, ErrAlreadyInitialized
	} else if !errors.Is(err, ErrNotInitialized) {
		return nil, err
	}
	s := &Settings{ClusterName: o.ClusterName, NodeName: o.NodeName, Role: RoleServer, AdvertiseIP: o.IP.String(),
		APIPort: o.Ports.API, RaftPort: o.Ports.Raft, GossipPort: o.Ports.Gossip, AgentPort: o.Ports.Agent,
		Bootstrap: true, Voters: o.Voters, ServiceCIDR: o.ServiceCIDR, TimingMultiplier: o.TimingMultiplier}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	ca, err := NewCA(o.ClusterName, now)
	if err != nil {
		return nil, err
	}
	nodeCert, nodeKey, err := ca.IssueKeyPair(NodeCertSpec(o.NodeName, RoleServer, []net.IP{o.IP}), now)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	gossipKey, clusterKey := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(gossipKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(clusterKey); err != nil {
		return nil, err
	}
	kubeconfig, err := AdminKubeconfig(ca, s, now)
	if err != nil {
		return nil, err
	}
	tok := NewToken(ca)
	secret, _ := json.Marshal(TokenSecret(tok, RoleServer, o.TokenTTL, now, "created by skiff init"))
	p := Paths{o.DataDir}
	if err := writeFileAtomic(p.BootstrapToken(), secret, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p.AdminConfig(), kubeconfig, 0o600); err != nil {
		return nil, err
	}
	files := &JoinedIdentity{Settings: s, CACert: ca.CertPEM, CAKey: caKey, NodeCert: nodeCert, NodeKey: nodeKey, GossipKey: gossipKey, ClusterKey: clusterKey}
	if err := files.save(o.DataDir); err != nil {
		return nil, err
	}
	return &InitResult{Token: tok, Kubeconfig: kubeconfig, Settings: s}, nil
}

// SaveJoined persists what Join returned, refusing to overwrite a data dir
// that already belongs to a cluster.
func SaveJoined(dir string, f *JoinedIdentity) error {
	if _, err := LoadSettings(dir); err == nil {
		return ErrAlreadyInitialized
	}
	if err := f.Settings.Validate(); err != nil {
		return err
	}
	return f.save(dir)
}

// removeBootstrapToken deletes the init token file once the token exists
// in the cluster, so a revoked token is never re-created on restart.
func removeBootstrapToken(dir string) error {
	err := os.Remove(Paths{dir}.BootstrapToken())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
