package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/cluster"
)

// agentFlags are the `skiff agent` command line.
type agentFlags struct {
	dataDir       string
	nodeName      string
	bootstrap     bool
	apiAddr       string
	raftAddr      string
	raftAdvertise string
	multiplier    float64
	logLevel      string
}

func newAgentCmd() *cobra.Command {
	var fl agentFlags
	cmd := &cobra.Command{
		Use:     "agent",
		Short:   "Run the skiff daemon on this machine",
		GroupID: "cluster",
		Long: `Run the skiff daemon: the Raft-replicated control plane, the API server and the node agent.

Start the first node of a new cluster with --bootstrap; restarting it later
(with or without --bootstrap) reopens the same data dir and state.`,
		Example: "  skiff agent --data-dir ./data --bootstrap",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), fl)
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&fl.dataDir, "data-dir", "/var/lib/skiff", "directory for the Raft log, snapshots and node state")
	f.StringVar(&fl.nodeName, "node-name", strings.ToLower(host), "this node's name (a DNS-1123 subdomain)")
	f.BoolVar(&fl.bootstrap, "bootstrap", false, "bootstrap a new single-voter cluster if the data dir is empty")
	f.StringVar(&fl.apiAddr, "api-addr", "127.0.0.1:6443", "address the API server listens on")
	f.StringVar(&fl.raftAddr, "raft-addr", "127.0.0.1:6444", "address the Raft transport listens on")
	f.StringVar(&fl.raftAdvertise, "raft-advertise", "", "address other servers reach Raft at (default: --raft-addr)")
	f.Float64Var(&fl.multiplier, "timing-multiplier", 1, "scale all Raft timeouts (1 = LAN-tuned; raise on slow machines)")
	f.StringVar(&fl.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func runAgent(ctx context.Context, fl agentFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(fl.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := cluster.DefaultDaemonConfig()
	cfg.Logger = log
	cfg.APIAddr = fl.apiAddr
	cfg.Node.NodeName = fl.nodeName
	cfg.Node.DataDir = fl.dataDir
	cfg.Node.Bootstrap = fl.bootstrap
	cfg.Node.RaftBind = fl.raftAddr
	cfg.Node.RaftAdvertise = fl.raftAdvertise
	cfg.Node.TimingMultiplier = fl.multiplier
	addDaemonTasks(&cfg, fl, log)
	d, err := cluster.NewDaemon(cfg)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return d.Run(ctx)
}

// addDaemonTasks wires the controllers (leader only) and the node agent.
func addDaemonTasks(cfg *cluster.DaemonConfig, fl agentFlags, log *slog.Logger) {}
