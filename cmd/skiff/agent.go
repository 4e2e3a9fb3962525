package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/cluster"
	"github.com/skiffhq/skiff/scheduler"
)

// agentFlags are the daemon's runtime options, shared by agent, init and join.
type agentFlags struct {
	logLevel         string
	leaveOnTerminate bool
	containerdSocket string
}

func (f *agentFlags) registerRuntime(fl *pflag.FlagSet) {
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.BoolVar(&f.leaveOnTerminate, "leave-on-terminate", false, "on SIGTERM, hand off leadership and the Raft seat and leave the cluster")
	fl.StringVar(&f.containerdSocket, "containerd-socket", "", "use this containerd instead of starting a managed one")
}

func (f *agentFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(log) // client-go and the streaming libraries log through klog
	return log, nil
}

// insecureFlags run a plain-HTTP single node without a cluster identity.
type insecureFlags struct {
	insecure   bool
	bootstrap  bool
	nodeName   string
	apiAddr    string
	raftAddr   string
	multiplier float64
	agentAddr  string
}

func newAgentCmd() *cobra.Command {
	var (
		fl      agentFlags
		ins     insecureFlags
		dataDir string
	)
	cmd := &cobra.Command{
		Use:     "agent",
		Short:   "Run the skiff daemon of an initialized or joined node",
		GroupID: "cluster",
		Long: `Run the skiff daemon: API server, Raft replica (on servers), gossip and the node agent.

The data dir must have been set up by skiff init or skiff join; the daemon then serves
HTTPS with client certificates, mutual-TLS Raft and encrypted gossip.

For development only, --insecure --bootstrap runs a lone node on plain HTTP.`,
		Example: "  skiff agent --data-dir /var/lib/skiff",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ins.insecure {
				return runInsecureAgent(cmd.Context(), dataDir, ins, fl)
			}
			if ins.bootstrap {
				if err := bootstrapIfNeeded(cmd, dataDir, ins.nodeName); err != nil {
					return err
				}
			}
			return runSecureAgent(cmd.Context(), dataDir, fl)
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "/var/lib/skiff", "the node's data dir")
	fl.registerRuntime(f)
	f.BoolVar(&ins.insecure, "insecure", false, "development: run a plain-HTTP node without a cluster identity")
	f.BoolVar(&ins.bootstrap, "bootstrap", false, "create a new one-voter cluster if the data dir is empty (like skiff init --voters 1)")
	f.StringVar(&ins.nodeName, "node-name", strings.ToLower(host), "with --bootstrap or --insecure: this node's name")
	f.StringVar(&ins.apiAddr, "api-addr", "127.0.0.1:6443", "with --insecure: API listen address")
	f.StringVar(&ins.raftAddr, "raft-addr", "127.0.0.1:6444", "with --insecure: Raft listen address")
	f.Float64Var(&ins.multiplier, "timing-multiplier", 1, "with --insecure: scale Raft timeouts")
	f.StringVar(&ins.agentAddr, "agent-addr", "127.0.0.1:10250", "with --insecure: node agent listen address (logs, exec, images)")
	return cmd
}

func runSecureAgent(ctx context.Context, dataDir string, fl agentFlags) error {
	log, err := fl.logger()
	if err != nil {
		return err
	}
	cfg, err := cluster.SecureDaemonConfig(dataDir)
	if errors.Is(err, cluster.ErrNotInitialized) {
		return fmt.Errorf("%s is not set up: run skiff init (first node) or skiff join (other nodes)", dataDir)
	} else if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Secure.LeaveOnTerminate = fl.leaveOnTerminate
	s, b := cfg.Secure.Settings, cfg.Secure.TLS
	addDaemonTasks(&cfg, nodeAgent{name: s.NodeName, dataDir: dataDir, nodeIP: s.AdvertiseIP, containerdSocket: fl.containerdSocket, log: log,
		listen: func() (net.Listener, error) {
			return b.AgentListener(net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.AgentPort)))
		}})
	return runDaemon(ctx, cfg)
}

func runInsecureAgent(ctx context.Context, dataDir string, ins insecureFlags, fl agentFlags) error {
	log, err := fl.logger()
	if err != nil {
		return err
	}
	log.Warn("running without TLS or authentication (--insecure): for development only")
	cfg := cluster.DefaultDaemonConfig()
	cfg.Logger = log
	cfg.APIAddr = ins.apiAddr
	cfg.Node.NodeName = ins.nodeName
	cfg.Node.DataDir = dataDir
	cfg.Node.Bootstrap = ins.bootstrap
	cfg.Node.RaftBind = ins.raftAddr
	cfg.Node.TimingMultiplier = ins.multiplier
	addDaemonTasks(&cfg, nodeAgent{name: ins.nodeName, dataDir: dataDir, nodeIP: "127.0.0.1", containerdSocket: fl.containerdSocket, log: log,
		listen: func() (net.Listener, error) { return net.Listen("tcp", ins.agentAddr) }})
	return runDaemon(ctx, cfg)
}

func runDaemon(ctx context.Context, cfg cluster.DaemonConfig) error {
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
func addDaemonTasks(cfg *cluster.DaemonConfig, na nodeAgent) {
	cfg.LeaderTasks = append(cfg.LeaderTasks, func(ctx context.Context, rc *rest.Config) error {
		sc := scheduler.DefaultConfig()
		sc.RESTConfig = rc
		sc.Logger = na.log.With("component", "controllers")
		m, err := scheduler.New(sc)
		if err != nil {
			return err
		}
		return m.Run(ctx)
	}, func(ctx context.Context, rc *rest.Config) error {
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		scheduler.RunEventTTL(ctx, client, scheduler.DefaultEventTTL, time.Minute, time.Now, na.log.With("component", "event-ttl"))
		return nil
	})
	cfg.NodeTasks = append(cfg.NodeTasks, na.run)
}

// bootstrapIfNeeded initializes an empty data dir as a new one-voter cluster,
// as skiff init --voters 1 would, so `skiff agent --bootstrap` is enough to
// start a secured single node.
func bootstrapIfNeeded(cmd *cobra.Command, dataDir, nodeName string) error {
	if _, err := cluster.LoadSettings(dataDir); err == nil {
		return nil
	}
	res, err := cluster.Init(cluster.InitOptions{DataDir: dataDir, ClusterName: "skiff", NodeName: nodeName, IP: defaultIP(),
		Voters: 1, ServiceCIDR: "10.96.0.0/16", TimingMultiplier: 1, TokenTTL: 24 * time.Hour, Ports: cluster.DefaultPorts()}, time.Now())
	if err != nil {
		return err
	}
	return reportInit(cmd, res, "")
}
