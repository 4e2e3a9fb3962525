package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/skiffhq/skiff/cluster"
)

// getJSON fetches a skiff endpoint of the API with the CLI's credentials.
func getJSON(f cmdutil.Factory, path string, out interface{}) error {
	client, err := f.KubernetesClientSet()
	if err != nil {
		return err
	}
	data, err := client.Discovery().RESTClient().Get().AbsPath(path).DoRaw(context.Background())
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

func newMembersCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "members",
		Short:   "Show the cluster members as gossip sees them",
		GroupID: "cluster",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var members []cluster.MemberView
			if err := getJSON(f, cluster.PathMembers, &members); err != nil {
				return err
			}
			w := tabwriter.NewWriter(s.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tADDRESS\tROLE\tSTATE\tSINCE\tREPLICA")
			for _, m := range members {
				replica := "no"
				if m.InRaft {
					replica = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, m.Role, m.State, duration.HumanDuration(time.Since(m.Since)), replica)
			}
			return w.Flush()
		},
	}
}

func newRaftCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{Use: "raft", Short: "Inspect the Raft control plane", GroupID: "cluster"}
	cmd.AddCommand(&cobra.Command{
		Use:   "peers",
		Short: "Show voters, standbys, the leader, last contact and applied index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var view cluster.RaftView
			if err := getJSON(f, cluster.PathRaftPeers, &view); err != nil {
				return err
			}
			w := tabwriter.NewWriter(s.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NODE\tADDRESS\tSUFFRAGE\tSTATE\tLAST CONTACT\tAPPLIED INDEX")
			for _, p := range view.Servers {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Address, p.Suffrage, orDash(p.State), orDash(p.LastContact), orDash(p.AppliedIndex))
			}
			return w.Flush()
		},
	})
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newLeaveCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:     "leave",
		Short:   "Make the daemon on this machine leave the cluster for good, then stop",
		GroupID: "cluster",
		Long: `Ask the local daemon to leave: a leader first hands off leadership, a voter gives up its
seat (autopilot promotes a standby), the node says goodbye in gossip and the daemon exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cluster.RequestLeave(context.Background(), dataDir); err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, "the node has left the cluster and its daemon is stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/skiff", "the local node's data dir")
	return cmd
}
