// Package dev runs a real multi-node skiff cluster on one machine, like kind
// or k3d: every node is a `skiff agent` process in its own network namespace
// on a private bridge, with its own data dir and its own managed containerd.
// It backs the `skiff dev` commands and the chaos tests.
//
// Layout (per cluster NAME, under Options.StateDir):
//
//	state.json          nodes, addresses, PIDs
//	NODE/data           the node's data dir (identity, Raft, containerd)
//	NODE/agent.log      the daemon's log
//	admin.kubeconfig    the cluster's admin credentials
//
// Network: bridge "skb-NAME" with 10.250.K.1/24 on the host, node i in netns
// "skiff-NAME-i" at 10.250.K.(10+i) behind a veth pair. Partitions are
// iptables DROP rules inside the node namespaces, so nothing on the host's
// own networking changes except one FORWARD accept rule for the bridge,
// removed on Down.
package dev
