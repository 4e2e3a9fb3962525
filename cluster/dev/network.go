package dev

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// run executes a command and returns a readable error with its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// inNetns runs a command inside a named network namespace. nsenter (not
// `ip netns exec`) keeps the host's mount namespace, which runc needs.
func inNetns(ns string, args ...string) error {
	return run("nsenter", append([]string{"--net=/run/netns/" + ns, "--"}, args...)...)
}

// bridgeUp creates the cluster bridge with the host's address on it and
// lets frames between its ports through the host's FORWARD chain.
func (c *Cluster) bridgeUp() error {
	br := c.bridge()
	if run("ip", "link", "show", br) != nil {
		if err := run("ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
	}
	run("ip", "addr", "add", c.hostIP()+"/24", "dev", br)
	if err := run("ip", "link", "set", br, "up"); err != nil {
		return err
	}
	if run("iptables", "-C", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT") != nil {
		return run("iptables", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT")
	}
	return nil
}

func (c *Cluster) bridgeDown() {
	br := c.bridge()
	for run("iptables", "-D", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT") == nil {
	}
	run("ip", "link", "del", br)
}

// nodeNetUp creates node i's namespace and connects it to the bridge.
func (c *Cluster) nodeNetUp(n *Node) error {
	if run("ip", "netns", "pid", n.Netns) != nil && !netnsExists(n.Netns) {
		if err := run("ip", "netns", "add", n.Netns); err != nil {
			return err
		}
	}
	host, peer := n.vethHost(), "eth0"
	if run("ip", "link", "show", host) != nil {
		if err := run("ip", "link", "add", host, "type", "veth", "peer", "name", n.vethTmp()); err != nil {
			return err
		}
		if err := run("ip", "link", "set", n.vethTmp(), "netns", n.Netns); err != nil {
			return err
		}
		if err := inNetns(n.Netns, "ip", "link", "set", n.vethTmp(), "name", peer); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "link", "set", host, "master", c.bridge()},
		{"ip", "link", "set", host, "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	inNetns(n.Netns, "ip", "addr", "add", n.IP+"/24", "dev", peer)
	for _, s := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "set", peer, "up"},
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"}, // per-namespace; no procps needed
	} {
		if err := inNetns(n.Netns, s...); err != nil {
			return err
		}
	}
	inNetns(n.Netns, "ip", "route", "add", "default", "via", c.hostIP())
	return nil
}

func netnsExists(name string) bool {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

func (c *Cluster) nodeNetDown(n *Node) {
	run("ip", "link", "del", n.vethHost())
	run("ip", "netns", "del", n.Netns)
}

const partitionChain = "SKIFF-PARTITION"

// partition drops traffic between n and the given peers, inside n's
// namespace (both directions, so one side's rules suffice).
func partition(n *Node, peers []*Node) error {
	inNetns(n.Netns, "iptables", "-N", partitionChain)
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		if inNetns(n.Netns, "iptables", "-C", hook, "-j", partitionChain) != nil {
			if err := inNetns(n.Netns, "iptables", "-I", hook, "-j", partitionChain); err != nil {
				return err
			}
		}
	}
	for _, p := range peers {
		for _, rule := range [][]string{{"-s", p.IP}, {"-d", p.IP}} {
			args := append([]string{"iptables", "-A", partitionChain}, append(rule, "-j", "DROP")...)
			if err := inNetns(n.Netns, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// heal removes every partition rule from n's namespace.
func heal(n *Node) error {
	return inNetns(n.Netns, "iptables", "-F", partitionChain)
}
