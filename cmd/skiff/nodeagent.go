package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/agent"
	"github.com/skiffhq/skiff/agent/containerd"
)

// nodeAgent describes the pod agent of this node.
type nodeAgent struct {
	name             string
	dataDir          string
	nodeIP           string
	containerdSocket string
	// listen opens the agent's HTTP(S) listener.
	listen func() (net.Listener, error)
	log    *slog.Logger
}

// run starts (or adopts) the node's containerd and runs the pod agent until
// ctx ends. Containers keep running when it returns.
func (n nodeAgent) run(ctx context.Context, rc *rest.Config) error {
	rcfg := containerd.DefaultConfig()
	rcfg.DataDir = filepath.Join(n.dataDir, "rt") // short: containerd's socket path is limited
	rcfg.Namespace = containerd.NamespaceForNode(n.name)
	rcfg.Socket = n.containerdSocket
	rt, err := containerd.New(rcfg, n.log.With("component", "containerd"))
	if err != nil {
		return err
	}
	rtCtx, stopRuntime := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(rtCtx) }()
	defer func() {
		stopRuntime()
		<-rtDone
		rt.Close()
	}()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = rt.WaitReady(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("containerd did not become ready: %w", err)
	}
	ln, err := n.listen()
	if err != nil {
		return fmt.Errorf("agent listener: %w", err)
	}
	cfg := agent.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RESTConfig, cfg.Runtime = n.name, filepath.Join(n.dataDir, "agent"), rc, rt
	cfg.Listener, cfg.NodeIP, cfg.Logger = ln, n.nodeIP, n.log.With("component", "agent")
	a, err := agent.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	return a.Run(ctx)
}
