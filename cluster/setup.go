package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// SecureDaemonConfig builds the daemon configuration of an initialized or
// joined data dir.
func SecureDaemonConfig(dataDir string) (DaemonConfig, error) {
	s, err := LoadSettings(dataDir)
	if err != nil {
		return DaemonConfig{}, err
	}
	b, err := LoadTLS(dataDir)
	if err != nil {
		return DaemonConfig{}, err
	}
	key, err := loadGossipKey(dataDir)
	if err != nil {
		return DaemonConfig{}, err
	}
	clusterKey, err := loadClusterKey(dataDir)
	if err != nil {
		return DaemonConfig{}, err
	}
	cfg := DefaultDaemonConfig()
	cfg.APIAddr = net.JoinHostPort("0.0.0.0", strconv.Itoa(s.APIPort))
	n := &cfg.Node
	n.NodeName, n.DataDir, n.Bootstrap = s.NodeName, dataDir, s.Bootstrap
	n.RaftBind = net.JoinHostPort("0.0.0.0", strconv.Itoa(s.RaftPort))
	n.RaftAdvertise = net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.RaftPort))
	if s.TimingMultiplier >= 1 {
		n.TimingMultiplier = s.TimingMultiplier
	}
	if s.ServiceCIDR != "" {
		if n.Store.ServiceCIDR, err = netip.ParsePrefix(s.ServiceCIDR); err != nil {
			return DaemonConfig{}, fmt.Errorf("cluster: service CIDR %q: %w", s.ServiceCIDR, err)
		}
	}
	ap := DefaultAutopilotConfig()
	ap.TargetVoters = s.Voters
	cfg.Secure = &SecureConfig{DataDir: dataDir, Settings: s, TLS: b, GossipKey: key, ClusterKey: clusterKey,
		Autopilot: ap, Lifecycle: DefaultLifecycleConfig()}
	return cfg, nil
}
