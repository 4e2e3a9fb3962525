package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/skiffhq/skiff/cluster"
)

func newTokenCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke join tokens", GroupID: "cluster"}
	cmd.AddCommand(newTokenCreateCmd(f, s), newTokenListCmd(f, s), newTokenRevokeCmd(f, s))
	return cmd
}

func newTokenCreateCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	var (
		ttl         time.Duration
		role        string
		description string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a join token and print the join command",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role != cluster.RoleServer && role != cluster.RoleWorker {
				return fmt.Errorf("--role must be %s or %s", cluster.RoleServer, cluster.RoleWorker)
			}
			rc, err := f.ToRESTConfig()
			if err != nil {
				return err
			}
			ca, err := caFromRESTConfig(rc.CAData, rc.CAFile)
			if err != nil {
				return err
			}
			client, err := f.KubernetesClientSet()
			if err != nil {
				return err
			}
			tok := cluster.NewToken(ca)
			secret := cluster.TokenSecret(tok, role, ttl, time.Now(), description)
			if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, tok.String())
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid (0 = forever)")
	cmd.Flags().StringVar(&role, "role", cluster.RoleServer, "role granted to nodes joining with it: server (may vote) or worker")
	cmd.Flags().StringVar(&description, "description", "", "free text shown by token list")
	return cmd
}

func newTokenListCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List join tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.KubernetesClientSet()
			if err != nil {
				return err
			}
			list, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(context.Background(), metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("type", string(cluster.TokenSecretType)).String()})
			if err != nil {
				return err
			}
			sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
			w := tabwriter.NewWriter(s.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "ID\tROLE\tEXPIRES\tDESCRIPTION")
			for _, sec := range list.Items {
				exp := "never"
				if e := string(sec.Data["expiration"]); e != "" {
					exp = e
					if at, err := time.Parse(time.RFC3339, e); err == nil {
						if left := time.Until(at); left > 0 {
							exp = "in " + duration.HumanDuration(left)
						} else {
							exp = "expired"
						}
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", sec.Data["token-id"], sec.Data["role"], exp, sec.Data["description"])
			}
			return w.Flush()
		},
	}
}

func newTokenRevokeCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token (by its 6-character id, or the whole token)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if t, err := cluster.ParseToken(id); err == nil {
				id = t.ID
			}
			client, err := f.KubernetesClientSet()
			if err != nil {
				return err
			}
			if err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(context.Background(), cluster.TokenSecretName(id), metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("revoking token %s: %w", id, err)
			}
			fmt.Fprintf(s.Out, "token %s revoked\n", id)
			return nil
		},
	}
}

// caFromRESTConfig reads the cluster CA the CLI trusts (from its kubeconfig).
func caFromRESTConfig(data []byte, file string) (*cluster.CA, error) {
	if len(data) == 0 && file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("the kubeconfig names no cluster CA; a join token must pin one")
	}
	cert, err := cluster.ParseCertPEM(data)
	if err != nil {
		return nil, err
	}
	return &cluster.CA{Cert: cert, CertPEM: data}, nil
}
