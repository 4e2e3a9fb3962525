package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffhq/skiff/cluster"
)

// nodeFlags are shared by init and join.
type nodeFlags struct {
	dataDir   string
	nodeName  string
	advertise string
	ports     cluster.Ports
	noStart   bool
	agent     agentFlags
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	host, _ := os.Hostname()
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "/var/lib/skiff", "directory for this node's identity and state")
	fl.StringVar(&f.nodeName, "node-name", strings.ToLower(host), "this node's name (a DNS-1123 subdomain)")
	fl.StringVar(&f.advertise, "advertise-address", "", "IP other nodes reach this one at (default: the first non-loopback IPv4)")
	def := cluster.DefaultPorts()
	fl.IntVar(&f.ports.API, "api-port", def.API, "API server port")
	fl.IntVar(&f.ports.Raft, "raft-port", def.Raft, "Raft port")
	fl.IntVar(&f.ports.Gossip, "gossip-port", def.Gossip, "gossip port (UDP and TCP)")
	fl.IntVar(&f.ports.Agent, "agent-port", def.Agent, "node agent port (logs, exec)")
	fl.BoolVar(&f.noStart, "no-start", false, "set up the data dir but do not start the daemon")
	f.agent.registerRuntime(fl)
}

func (f *nodeFlags) ip() (net.IP, error) {
	if f.advertise != "" {
		ip := net.ParseIP(f.advertise)
		if ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("--advertise-address %q is not an IPv4 address", f.advertise)
		}
		return ip, nil
	}
	return defaultIP(), nil
}

// defaultIP is the first non-loopback IPv4 address of an up interface.
func defaultIP() net.IP {
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.To4()
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

func newInitCmd() *cobra.Command {
	var (
		nf          nodeFlags
		clusterName string
		voters      int
		serviceCIDR string
		multiplier  float64
		tokenTTL    time.Duration
		kubeconfig  string
	)
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Create a new cluster on this machine and start its first node",
		GroupID: "cluster",
		Long: `Create a new cluster: its CA, this node's certificate, an admin kubeconfig, a gossip
encryption key and a join token; print the command other machines run to join; then
start the daemon. The admin kubeconfig is merged into ~/.kube/config (or $KUBECONFIG)
as a new context and made current, so skiff and kubectl work at once.

Running init again on an initialized data dir changes nothing and starts the daemon.`,
		Example: "  skiff init --data-dir /var/lib/skiff",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ip, err := nf.ip()
			if err != nil {
				return err
			}
			res, err := cluster.Init(cluster.InitOptions{DataDir: nf.dataDir, ClusterName: clusterName, NodeName: nf.nodeName, IP: ip,
				Voters: voters, ServiceCIDR: serviceCIDR, TimingMultiplier: multiplier, TokenTTL: tokenTTL, Ports: nf.ports}, time.Now())
			switch {
			case errors.Is(err, cluster.ErrAlreadyInitialized):
				fmt.Fprintf(cmd.OutOrStdout(), "%s is already initialized; nothing changed.\n", nf.dataDir)
			case err != nil:
				return err
			default:
				if err := reportInit(cmd, res, kubeconfig); err != nil {
					return err
				}
			}
			if nf.noStart {
				return nil
			}
			return runSecureAgent(cmd.Context(), nf.dataDir, nf.agent)
		},
	}
	nf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster-name", "skiff", "cluster name (also the kubeconfig context)")
	f.IntVar(&voters, "voters", 3, "target number of Raft voters: 1, 3 or 5")
	f.StringVar(&serviceCIDR, "service-cidr", "10.96.0.0/16", "range ClusterIPs are allocated from")
	f.Float64Var(&multiplier, "timing-multiplier", 1, "scale Raft and gossip timeouts (raise on slow machines)")
	f.DurationVar(&tokenTTL, "token-ttl", 24*time.Hour, "lifetime of the first join token (0 = never expires)")
	f.StringVar(&kubeconfig, "write-kubeconfig", "", "kubeconfig file to merge the admin context into (default: $KUBECONFIG or ~/.kube/config)")
	return cmd
}

func reportInit(cmd *cobra.Command, res *cluster.InitResult, kubeconfig string) error {
	out := cmd.OutOrStdout()
	path := kubeconfigPath(kubeconfig)
	if err := cluster.MergeKubeconfig(path, res.Kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	fmt.Fprintf(out, "Cluster %q created; this node is %q.\n", res.Settings.ClusterName, res.Settings.NodeName)
	fmt.Fprintf(out, "Admin kubeconfig: context %q added to %s (and made current).\n", res.Settings.ClusterName, path)
	fmt.Fprintf(out, "\nTo add a machine, run there:\n\n  %s\n\n", res.JoinCommand())
	fmt.Fprintf(out, "The token expires as configured; make more with: skiff token create\n")
	return nil
}

// kubeconfigPath is where the admin context goes: the flag, else the first
// file in $KUBECONFIG, else ~/.kube/config.
func kubeconfigPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	return clientcmd.RecommendedHomeFile
}

func newJoinCmd() *cobra.Command {
	var (
		nf    nodeFlags
		token string
	)
	cmd := &cobra.Command{
		Use:     "join SERVER --token TOKEN",
		Short:   "Join this machine to a cluster and start its node",
		GroupID: "cluster",
		Long: `Join a cluster through any of its servers (host:port of its API). The node checks the
cluster's CA against the hash pinned in the token before it sends anything, then gets its
certificate, the gossip key and the member list, and starts the daemon.

Nothing is written unless the join succeeds. On a node that already belongs to a cluster,
join says so and changes nothing.`,
		Example: "  skiff join 10.0.0.1:6443 --token skiff1.abcdef.0123456789abcdef.<ca-hash>",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s, err := cluster.LoadSettings(nf.dataDir); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "This node already belongs to cluster %q as %q (data dir %s); nothing changed.\nStart it with: skiff agent --data-dir %s\n",
					s.ClusterName, s.NodeName, nf.dataDir, nf.dataDir)
				return nil
			}
			ip, err := nf.ip()
			if err != nil {
				return err
			}
			server := args[0]
			if _, _, err := net.SplitHostPort(server); err != nil {
				server = net.JoinHostPort(server, fmt.Sprint(cluster.DefaultAPIPort))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			ports := nf.ports
			files, err := cluster.Join(ctx, cluster.JoinOptions{Server: server, Token: token, NodeName: nf.nodeName, IP: ip, Ports: &ports})
			if err != nil {
				return fmt.Errorf("join refused: %w", err)
			}
			if err := cluster.SaveJoined(nf.dataDir, files); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Joined cluster %q as %q (%s).\n", files.Settings.ClusterName, nf.nodeName, files.Settings.Role)
			if nf.noStart {
				return nil
			}
			return runSecureAgent(cmd.Context(), nf.dataDir, nf.agent)
		},
	}
	nf.register(cmd)
	cmd.Flags().StringVar(&token, "token", "", "join token from skiff init or skiff token create")
	cmd.MarkFlagRequired("token")
	return cmd
}

func newKubeconfigCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:     "kubeconfig",
		Short:   "Print the admin kubeconfig of the cluster this node created",
		GroupID: "cluster",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(cluster.Paths{Dir: dataDir}.AdminConfig())
			if err != nil {
				return fmt.Errorf("no admin kubeconfig in %s (it is written by skiff init): %w", dataDir, err)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/skiff", "data dir of the node that ran skiff init")
	return cmd
}
