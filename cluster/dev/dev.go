package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/skiffhq/skiff/cluster"
)

// Options configure Up.
type Options struct {
	// Name names the cluster; node i is "NAME-i".
	Name string
	// Nodes is how many nodes to start.
	Nodes int
	// Voters is the target number of Raft voters.
	Voters int
	// StateDir holds every dev cluster's state (default /var/lib/skiff-dev).
	StateDir string
	// Binary is the skiff executable to run (default: this one).
	Binary string
	// Kubeconfig is the kubeconfig to add the cluster's context to;
	// "" means the default ($KUBECONFIG or ~/.kube/config), "-" none.
	Kubeconfig string
	// TimingMultiplier scales Raft and gossip timeouts.
	TimingMultiplier float64
	// AgentArgs are extra flags for every `skiff agent`.
	AgentArgs []string
	// Progress receives human-readable progress lines.
	Progress io.Writer
}

// Node is one dev node.
type Node struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	IP      string `json:"ip"`
	Netns   string `json:"netns"`
	PID     int    `json:"pid"`
	DataDir string `json:"dataDir"`
	LogPath string `json:"logPath"`
}

func (n *Node) vethHost() string { return fmt.Sprintf("skv%s", n.short()) }
func (n *Node) vethTmp() string  { return fmt.Sprintf("skp%s", n.short()) }
func (n *Node) short() string {
	h := fnv.New32a()
	h.Write([]byte(n.Netns))
	return fmt.Sprintf("%08x", h.Sum32())
}

// Cluster is a dev cluster's persisted state.
type Cluster struct {
	Name       string   `json:"name"`
	Subnet     int      `json:"subnet"`
	Voters     int      `json:"voters"`
	Binary     string   `json:"binary"`
	Kubeconfig string   `json:"kubeconfig"`
	Context    string   `json:"context"`
	AgentArgs  []string `json:"agentArgs,omitempty"`
	Multiplier float64  `json:"multiplier"`
	Nodes      []*Node  `json:"nodes"`
	dir        string
	progress   io.Writer
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$`)

// ErrExists means a dev cluster of that name is already up.
var ErrExists = errors.New("dev: a cluster with this name already exists (skiff dev down first)")

func (c *Cluster) bridge() string { return "skb-" + c.Name[:min(len(c.Name), 10)] }
func (c *Cluster) hostIP() string { return fmt.Sprintf("10.250.%d.1", c.Subnet) }
func (c *Cluster) statePath() string {
	return filepath.Join(c.dir, "state.json")
}

// AdminKubeconfig is the path of the cluster's admin kubeconfig.
func (c *Cluster) AdminKubeconfig() string { return filepath.Join(c.dir, "admin.kubeconfig") }

func (c *Cluster) save() error {
	data, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(c.statePath(), data, 0o600)
}

func (c *Cluster) logf(format string, args ...interface{}) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, format+"\n", args...)
	}
}

// Load reads a running dev cluster's state.
func Load(stateDir, name string) (*Cluster, error) {
	dir := filepath.Join(defaultStateDir(stateDir), name)
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("dev: no cluster named %q (skiff dev up first)", name)
		}
		return nil, err
	}
	c := &Cluster{dir: dir}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, err
	}
	return c, nil
}

func defaultStateDir(dir string) string {
	if dir != "" {
		return dir
	}
	if env := os.Getenv("SKIFF_DEV_DIR"); env != "" {
		return env
	}
	return "/var/lib/skiff-dev"
}

func subnetFor(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32()%200) + 20
}

// Up creates the network, initializes the first node, joins the others and
// waits until every node is up and the target number of voters is reached.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	if o.Name == "" {
		o.Name = "dev"
	}
	if !nameRe.MatchString(o.Name) {
		return nil, fmt.Errorf("dev: cluster name %q must be lower-case letters, digits and dashes, at most 16", o.Name)
	}
	if o.Nodes < 1 || o.Nodes > 32 {
		return nil, fmt.Errorf("dev: --nodes %d must be between 1 and 32", o.Nodes)
	}
	if o.Voters == 0 {
		o.Voters = min(3, o.Nodes)
		if o.Voters == 2 {
			o.Voters = 1
		}
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Binary = exe
	}
	dir := filepath.Join(defaultStateDir(o.StateDir), o.Name)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return nil, ErrExists
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{Name: o.Name, Subnet: subnetFor(o.Name), Voters: o.Voters, Binary: o.Binary, AgentArgs: o.AgentArgs,
		Multiplier: max(o.TimingMultiplier, 1), dir: dir, progress: o.Progress, Context: "skiff-" + o.Name}
	for i := 0; i < o.Nodes; i++ {
		name := fmt.Sprintf("%s-%d", o.Name, i)
		c.Nodes = append(c.Nodes, &Node{Name: name, Index: i, IP: fmt.Sprintf("10.250.%d.%d", c.Subnet, 10+i),
			Netns: "skiff-" + name, DataDir: filepath.Join(dir, name, "data"), LogPath: filepath.Join(dir, name, "agent.log")})
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.up(ctx, o); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) up(ctx context.Context, o Options) error {
	c.logf("creating bridge %s (%s/24) and %d network namespaces", c.bridge(), c.hostIP(), len(c.Nodes))
	if err := c.bridgeUp(); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.nodeNetUp(n); err != nil {
			return err
		}
	}
	first := c.Nodes[0]
	res, err := cluster.Init(cluster.InitOptions{DataDir: first.DataDir, ClusterName: c.Context, NodeName: first.Name,
		IP: net.ParseIP(first.IP), Voters: c.Voters, ServiceCIDR: "10.96.0.0/16", TimingMultiplier: c.Multiplier,
		TokenTTL: 24 * time.Hour, Ports: cluster.DefaultPorts()}, time.Now())
	if err != nil {
		return fmt.Errorf("dev: init %s: %w", first.Name, err)
	}
	if err := os.WriteFile(c.AdminKubeconfig(), res.Kubeconfig, 0o600); err != nil {
		return err
	}
	if err := c.startAgent(first); err != nil {
		return err
	}
	c.logf("node %s: cluster created, waiting for its API", first.Name)
	if err := c.waitAPI(ctx, first, 60*time.Second); err != nil {
		return err
	}
	for _, n := range c.Nodes[1:] {
		if err := c.joinNode(ctx, n, first, res.Token.String()); err != nil {
			return err
		}
	}
	if err := c.waitSettled(ctx, 90*time.Second); err != nil {
		return err
	}
	if o.Kubeconfig != "-" {
		c.Kubeconfig = kubeconfigPath(o.Kubeconfig)
		if err := cluster.MergeKubeconfig(c.Kubeconfig, res.Kubeconfig); err != nil {
			return err
		}
		c.logf("kubeconfig: context %q added to %s and made current", c.Context, c.Kubeconfig)
	}
	return c.save()
}

func (c *Cluster) joinNode(ctx context.Context, n, via *Node, token string) error {
	jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var (
		files *cluster.JoinedIdentity
		err   error
	)
	// The first leader stores init's token shortly after it starts; until
	// then the token is unknown, so retry that refusal for a while.
	for {
		files, err = cluster.Join(jctx, cluster.JoinOptions{Server: net.JoinHostPort(via.IP, strconv.Itoa(cluster.DefaultAPIPort)),
			Token: token, NodeName: n.Name, IP: net.ParseIP(n.IP)})
		var je *cluster.JoinError
		if err == nil || !errors.As(err, &je) || je.Code != http.StatusUnauthorized || jctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("dev: join %s: %w", n.Name, err)
	}
	if err := cluster.SaveJoined(n.DataDir, files); err != nil {
		return err
	}
	c.logf("node %s: joined as %s", n.Name, files.Settings.Role)
	return c.startAgent(n)
}

// SetProgress sets where progress lines go.
func (c *Cluster) SetProgress(w io.Writer) { c.progress = w }
