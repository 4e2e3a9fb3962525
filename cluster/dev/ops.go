package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/cluster"
)

func jsonUnmarshal(data []byte, v interface{}) error { return json.Unmarshal(data, v) }

// Kill SIGKILLs the named nodes (daemon and containerd).
func (c *Cluster) Kill(names ...string) error {
	nodes, err := c.nodes(names)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		c.killNode(n)
		c.logf("node %s: killed", n.Name)
	}
	return c.save()
}

// Restart starts the named nodes' daemons again (killing them first if
// they run).
func (c *Cluster) Restart(names ...string) error {
	nodes, err := c.nodes(names)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		c.killNode(n)
		if err := c.startAgent(n); err != nil {
			return err
		}
		c.logf("node %s: started (pid %d)", n.Name, n.PID)
	}
	return c.save()
}

// Partition cuts the named nodes off from every other node; the named nodes
// can still reach each other and the host.
func (c *Cluster) Partition(names ...string) error {
	inside, err := c.nodes(names)
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, n := range inside {
		in[n.Name] = true
	}
	var outside []*Node
	for _, n := range c.Nodes {
		if !in[n.Name] {
			outside = append(outside, n)
		}
	}
	for _, n := range inside {
		if err := partition(n, outside); err != nil {
			return err
		}
	}
	for _, n := range outside {
		if err := partition(n, inside); err != nil {
			return err
		}
	}
	c.logf("partitioned %v from the other %d nodes", names, len(outside))
	return nil
}

// Heal removes partitions from the named nodes, or from all if none named.
func (c *Cluster) Heal(names ...string) error {
	nodes := c.Nodes
	if len(names) > 0 {
		var err error
		if nodes, err = c.nodes(names); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		heal(n)
	}
	c.logf("healed %d nodes", len(nodes))
	return nil
}

// NodeStatus is one row of `skiff dev status`.
type NodeStatus struct {
	Name    string
	IP      string
	PID     int
	Running bool
	Raft    string // voter, standby, leader or -
}

// Status reports each node's process and Raft role.
func (c *Cluster) Status(ctx context.Context) []NodeStatus {
	roles := map[string]string{}
	for _, n := range c.Nodes {
		if !alive(n.PID) {
			continue
		}
		rc, err := c.RESTConfig(n.Name)
		if err != nil {
			continue
		}
		rc.Timeout = 2 * time.Second
		if view, err := raftView(ctx, rc); err == nil {
			for _, s := range view.Servers {
				roles[s.ID] = s.Suffrage
				if s.Leader {
					roles[s.ID] = "leader"
				}
			}
			break
		}
	}
	var out []NodeStatus
	for _, n := range c.Nodes {
		role := roles[n.Name]
		if role == "" {
			role = "-"
		}
		out = append(out, NodeStatus{Name: n.Name, IP: n.IP, PID: n.PID, Running: alive(n.PID), Raft: role})
	}
	return out
}

// Down stops every node, removes their containers, network and state, and
// the kubeconfig context.
func (c *Cluster) Down() error {
	for _, n := range c.Nodes {
		c.killNode(n)
		cleanupRuntime(n)
		heal(n)
		c.nodeNetDown(n)
	}
	c.bridgeDown()
	if c.Kubeconfig != "" {
		if err := cluster.RemoveKubeconfigContext(c.Kubeconfig, c.Context); err != nil {
			c.logf("kubeconfig: %v", err)
		}
	}
	c.logf("cluster %s removed", c.Name)
	return RemoveTree(c.dir)
}

func raftView(ctx context.Context, rc *rest.Config) (*cluster.RaftView, error) {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	data, err := client.Discovery().RESTClient().Get().AbsPath(cluster.PathRaftPeers).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	view := &cluster.RaftView{}
	return view, json.Unmarshal(data, view)
}

// AddNode creates one more node, joins it with a fresh token of the given
// role (server or worker) and starts it.
func (c *Cluster) AddNode(ctx context.Context, role string) (*Node, error) {
	i := len(c.Nodes)
	name := fmt.Sprintf("%s-%d", c.Name, i)
	n := &Node{Name: name, Index: i, IP: fmt.Sprintf("10.250.%d.%d", c.Subnet, 10+i), Netns: "skiff-" + name,
		DataDir: filepath.Join(c.dir, name, "data"), LogPath: filepath.Join(c.dir, name, "agent.log")}
	c.Nodes = append(c.Nodes, n)
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.nodeNetUp(n); err != nil {
		return nil, err
	}
	token, err := c.CreateToken(ctx, role, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if err := c.joinNode(ctx, n, c.Nodes[0], token.String()); err != nil {
		return nil, err
	}
	return n, c.save()
}

// CreateToken stores a new join token in the cluster and returns it.
func (c *Cluster) CreateToken(ctx context.Context, role string, ttl time.Duration) (cluster.Token, error) {
	rc, err := c.RESTConfig("")
	if err != nil {
		return cluster.Token{}, err
	}
	ca, err := cluster.ParseCertPEM(rc.CAData)
	if err != nil {
		return cluster.Token{}, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return cluster.Token{}, err
	}
	tok := cluster.NewToken(&cluster.CA{Cert: ca, CertPEM: rc.CAData})
	secret := cluster.TokenSecret(tok, role, ttl, time.Now(), "skiff dev")
	_, err = client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secret, metav1.CreateOptions{})
	return tok, err
}
