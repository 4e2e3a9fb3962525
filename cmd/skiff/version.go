package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/skiffhq/skiff/api"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the client and server versions",
		GroupID: "cluster",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(s.Out, "Client Version: %s (Kubernetes API %s)\n", clientVersion(), api.DefaultVersion().GitVersion)
			if clientOnly {
				return nil
			}
			dc, err := f.ToDiscoveryClient()
			if err != nil {
				return err
			}
			sv, err := dc.ServerVersion()
			if err != nil {
				return fmt.Errorf("cannot reach the server: %w", err)
			}
			fmt.Fprintf(s.Out, "Server Version: %s\n", sv.GitVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	return cmd
}

func clientVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}
