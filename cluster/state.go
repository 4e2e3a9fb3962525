package cluster

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotInitialized means a data dir holds no cluster identity yet.
var ErrNotInitialized = errors.New("cluster: data dir is not initialized (run skiff init or skiff join)")

// Settings is what a node remembers about its cluster between restarts
// (DATA/cluster.json). Cluster-wide settings are copied from the node that
// admitted it, so every member agrees on them.
type Settings struct {
	// ClusterName names the cluster (kubeconfig context, CA name).
	ClusterName string `json:"clusterName"`
	// NodeName is this node's name.
	NodeName string `json:"nodeName"`
	// Role is server (may vote) or worker (never votes).
	Role string `json:"role"`
	// AdvertiseIP is the address other nodes reach this one at.
	AdvertiseIP string `json:"advertiseIP"`
	// Ports this node listens on.
	APIPort    int `json:"apiPort"`
	RaftPort   int `json:"raftPort"`
	GossipPort int `json:"gossipPort"`
	AgentPort  int `json:"agentPort"`
	// Bootstrap is true on the node that created the cluster.
	Bootstrap bool `json:"bootstrap,omitempty"`
	// Join lists gossip addresses to contact on start.
	Join []string `json:"join,omitempty"`
	// Voters is the target number of Raft voters (1, 3 or 5).
	Voters int `json:"voters"`
	// ServiceCIDR is the ClusterIP range; all members must agree.
	ServiceCIDR string `json:"serviceCIDR"`
	// TimingMultiplier scales Raft and gossip timeouts; all members agree.
	TimingMultiplier float64 `json:"timingMultiplier"`
}

// Validate checks the settings a node cannot run without.
func (s *Settings) Validate() error {
	switch {
	case s.NodeName == "":
		return errors.New("cluster: settings lack a node name")
	case s.Role != RoleServer && s.Role != RoleWorker:
		return fmt.Errorf("cluster: role %q must be %s or %s", s.Role, RoleServer, RoleWorker)
	case s.Voters != 1 && s.Voters != 3 && s.Voters != 5:
		return fmt.Errorf("cluster: voters %d must be 1, 3 or 5", s.Voters)
	case s.AdvertiseIP == "":
		return errors.New("cluster: settings lack an advertise address")
	}
	return nil
}

// Paths of a node's data dir.
type Paths struct{ Dir string }

func (p Paths) Settings() string       { return filepath.Join(p.Dir, "cluster.json") }
func (p Paths) PKI() string            { return filepath.Join(p.Dir, "pki") }
func (p Paths) NodeCert() string       { return filepath.Join(p.Dir, "pki", "node.crt") }
func (p Paths) NodeKey() string        { return filepath.Join(p.Dir, "pki", "node.key") }
func (p Paths) AdminConfig() string    { return filepath.Join(p.Dir, "pki", "admin.kubeconfig") }
func (p Paths) GossipKey() string      { return filepath.Join(p.Dir, "pki", "gossip.key") }
func (p Paths) BootstrapToken() string { return filepath.Join(p.Dir, "pki", "bootstrap-token.json") }
func (p Paths) ClusterKey() string     { return filepath.Join(p.Dir, "pki", "cluster.key") }

// LoadSettings reads DATA/cluster.json; ErrNotInitialized if absent.
func LoadSettings(dir string) (*Settings, error) {
	data, err := os.ReadFile(Paths{dir}.Settings())
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotInitialized
	} else if err != nil {
		return nil, err
	}
	s := &Settings{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", Paths{dir}.Settings(), err)
	}
	return s, s.Validate()
}

// writeFileAtomic writes data to path via a temporary file and rename, so a
// crash never leaves a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// JoinedIdentity is what init and join write to a data dir.
type JoinedIdentity struct {
	Settings  *Settings
	CACert    []byte
	CAKey     []byte // servers only
	NodeCert  []byte
	NodeKey   []byte
	GossipKey []byte
	// ClusterKey seals Secret data at rest (servers only).
	ClusterKey []byte
}

// save writes every identity file, settings last: the settings file is
// the marker that a data dir is initialized, so a crash midway leaves a
// data dir that is still "not initialized".
func (f *JoinedIdentity) save(dir string) error {
	p := Paths{dir}
	files := []struct {
		path string
		data []byte
	}{
		{filepath.Join(p.PKI(), "ca.crt"), f.CACert},
		{filepath.Join(p.PKI(), "ca.key"), f.CAKey},
		{p.NodeCert(), f.NodeCert},
		{p.NodeKey(), f.NodeKey},
		{p.GossipKey(), []byte(hex.EncodeToString(f.GossipKey))},
		{p.ClusterKey(), hexOrNil(f.ClusterKey)},
	}
	for _, file := range files {
		if len(file.data) == 0 {
			continue
		}
		if err := writeFileAtomic(file.path, file.data, 0o600); err != nil {
			return fmt.Errorf("cluster: writing %s: %w", file.path, err)
		}
	}
	data, err := json.MarshalIndent(f.Settings, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p.Settings(), append(data, '\n'), 0o600)
}

// loadGossipKey reads the hex gossip key.
func loadGossipKey(dir string) ([]byte, error) {
	data, err := os.ReadFile(Paths{dir}.GossipKey())
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(string(trimSpace(data)))
	if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
		return nil, errors.New("cluster: gossip.key must hold a hex AES key of 16, 24 or 32 bytes")
	}
	return key, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func hexOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return []byte(hex.EncodeToString(b))
}

// loadClusterKey reads the key that seals Secret data; a data dir made
// before encryption at rest existed has none (nil, nil).
func loadClusterKey(dir string) ([]byte, error) {
	data, err := os.ReadFile(Paths{dir}.ClusterKey())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(string(trimSpace(data)))
	if err != nil || len(key) != 32 {
		return nil, errors.New("cluster: cluster.key must hold a hex AES-256 key")
	}
	return key, nil
}
