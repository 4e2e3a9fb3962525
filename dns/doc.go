// Package dns will hold skiff's embedded DNS server (miekg/dns), run on
// every node: <svc>.<ns>.svc.cluster.local A/AAAA records for ClusterIPs,
// pod IPs for headless Services, SRV records for named ports, answered from
// the node's own watch cache so lookups keep working while the control
// plane is down, and other names forwarded to the host's upstream
// resolvers.
//
// Not built yet: pods have no network beyond loopback until CNI arrives,
// so there is nothing for them to resolve. See docs/architecture.md.
package dns
