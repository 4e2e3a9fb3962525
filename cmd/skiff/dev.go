package main

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/cluster/dev"
)

func newDevCmd() *cobra.Command {
	var (
		name     string
		stateDir string
	)
	cmd := &cobra.Command{
		Use:     "dev",
		Short:   "Run a real multi-node cluster on this machine (network namespaces, as root)",
		GroupID: "cluster",
		Long: `skiff dev runs a real cluster of N nodes on this one machine, like kind or k3d: each node
is a skiff daemon in its own network namespace on a private bridge, with its own data dir and
its own containerd. dev up adds a kubeconfig context for the cluster and makes it current.`,
	}
	cmd.PersistentFlags().StringVar(&name, "name", "dev", "cluster name")
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", "", "where dev clusters keep their state (default /var/lib/skiff-dev)")
	load := func() (*dev.Cluster, error) {
		if err := dev.CheckRoot(); err != nil {
			return nil, err
		}
		c, err := dev.Load(stateDir, name)
		if err == nil {
			c.SetProgress(os.Stdout)
		}
		return c, err
	}
	nodeOp := func(use, short string, op func(*dev.Cluster, ...string) error) *cobra.Command {
		return &cobra.Command{Use: use + " NODE...", Short: short, Args: cobra.MinimumNArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			return op(c, args...)
		}}
	}
	cmd.AddCommand(newDevUpCmd(&name, &stateDir),
		&cobra.Command{Use: "down", Short: "Stop and remove the cluster", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			return c.Down()
		}},
		newDevAddCmd(load),
		nodeOp("kill", "SIGKILL nodes (daemon and containerd)", (*dev.Cluster).Kill),
		nodeOp("restart", "Start nodes again (killing them first if running)", (*dev.Cluster).Restart),
		nodeOp("partition", "Cut nodes off from all other nodes", (*dev.Cluster).Partition),
		&cobra.Command{Use: "heal [NODE...]", Short: "Remove partitions (from all nodes if none named)", RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			return c.Heal(args...)
		}},
		&cobra.Command{Use: "status", Short: "Show nodes, processes and Raft roles", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NODE\tIP\tPID\tPROCESS\tRAFT")
			for _, s := range c.Status(cmd.Context()) {
				state := "stopped"
				if s.Running {
					state = "running"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.IP, strconv.Itoa(s.PID), state, s.Raft)
			}
			return w.Flush()
		}},
	)
	return cmd
}

func newDevUpCmd(name, stateDir *string) *cobra.Command {
	var o dev.Options
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create and start a cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dev.CheckRoot(); err != nil {
				return err
			}
			o.Name, o.StateDir, o.Progress = *name, *stateDir, cmd.OutOrStdout()
			start := time.Now()
			c, err := dev.Up(cmd.Context(), o)
			if err != nil {
				if c != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "cluster left half-up for inspection; remove it with: skiff dev down --name %s\n", *name)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %q is up: %d nodes, %d voters (%.1fs). Try: skiff get nodes\n", c.Name, len(c.Nodes), c.Voters, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", 3, "number of nodes")
	f.IntVar(&o.Voters, "voters", 0, "Raft voters: 1, 3 or 5 (default 3, or 1 for fewer than 3 nodes)")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to add the context to (default $KUBECONFIG or ~/.kube/config; - for none)")
	f.Float64Var(&o.TimingMultiplier, "timing-multiplier", 1, "scale Raft and gossip timeouts")
	f.StringSliceVar(&o.AgentArgs, "agent-arg", nil, "extra flag for every node's skiff agent (repeatable)")
	return cmd
}

func newDevAddCmd(load func() (*dev.Cluster, error)) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a node to the cluster (server may hold a Raft seat, worker never)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			n, err := c.AddNode(cmd.Context(), role)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s (%s) added at %s\n", n.Name, role, n.IP)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "worker", "server or worker")
	return cmd
}
