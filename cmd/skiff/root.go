package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// defaultServer is where the CLI looks for a cluster when no kubeconfig
// names one: the API of a `skiff agent` on this machine.
const defaultServer = "http://127.0.0.1:6443"

func run(args []string) int {
	root := newRootCmd(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return 1
	}
	return 0
}

func newRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "skiff: a container orchestrator in one binary",
		Long:          "skiff runs containers across machines the Kubernetes way: one daemon per machine (skiff agent),\nRaft-replicated desired state, gossip membership, containerd, and built-in DNS.\n\nResource commands (apply, get, describe, ...) behave like kubectl's.",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	flags := genericclioptions.NewConfigFlags(true).WithDiscoveryBurst(300).WithDiscoveryQPS(50)
	flags.AddFlags(root.PersistentFlags())
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		defaultToLocalServer(flags)
		return nil
	}
	f := cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(flags))
	addResourceCommands(root, f, flags, streams)
	root.AddCommand(newAgentCmd(), newInitCmd(), newJoinCmd(), newKubeconfigCmd(), newTokenCmd(f, streams),
		newMembersCmd(f, streams), newRaftCmd(f, streams), newLeaveCmd(), newDevCmd(), newImageCmd(f, streams), newVersionCmd(f, streams))
	root.AddGroup(&cobra.Group{ID: "resources", Title: "Resource commands (kubectl-compatible):"},
		&cobra.Group{ID: "cluster", Title: "Cluster commands:"})
	for _, c := range root.Commands() {
		if c.GroupID == "" {
			c.GroupID = "resources"
		}
	}
	root.SetHelpCommandGroupID("cluster")
	root.SetCompletionCommandGroupID("cluster")
	return root
}

// defaultToLocalServer points the CLI at the local agent when no
// kubeconfig, KUBECONFIG or --server names a cluster.
func defaultToLocalServer(flags *genericclioptions.ConfigFlags) {
	if flags.APIServer != nil && *flags.APIServer != "" {
		return
	}
	// A fresh loader: flags.ToRawKubeConfigLoader caches its overrides,
	// so asking it now would freeze the empty --server.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if flags.KubeConfig != nil {
		rules.ExplicitPath = *flags.KubeConfig
	}
	if cfg, err := rules.Load(); err == nil && len(cfg.Clusters) > 0 {
		return
	}
	server := defaultServer
	if env := os.Getenv("SKIFF_SERVER"); env != "" {
		server = env
	}
	*flags.APIServer = server
}
