package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/skiffhq/skiff/agent"
)

// imageCmds shares the client and the --node choice between subcommands.
type imageCmds struct {
	f    cmdutil.Factory
	s    genericiooptions.IOStreams
	node string
}

func newImageCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	ic := &imageCmds{f: f, s: s}
	cmd := &cobra.Command{
		Use:     "image",
		Short:   "Load, list and remove container images on nodes",
		GroupID: "cluster",
		Long: `Manage the images in the nodes' containerd. Loading an image archive (an OCI layout tar or a
docker save archive) makes it available without a registry; by default it goes to every node.
Pods using such an image should set imagePullPolicy: IfNotPresent (or Never).`,
	}
	cmd.PersistentFlags().StringVar(&ic.node, "node", "", "act on this node only (default: every node)")
	cmd.AddCommand(
		&cobra.Command{Use: "load FILE.tar", Short: "Import an image archive on nodes", Args: cobra.ExactArgs(1), RunE: ic.load},
		&cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List the images on nodes", Args: cobra.NoArgs, RunE: ic.list},
		&cobra.Command{Use: "rm IMAGE...", Short: "Remove images from nodes", Args: cobra.MinimumNArgs(1), RunE: ic.remove},
	)
	return cmd
}

func (ic *imageCmds) client() (*agent.ImageClient, error) {
	rc, err := ic.f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return agent.NewImageClient(rc)
}

// target returns the client and the nodes to act on: --node, or every node.
func (ic *imageCmds) target() (*agent.ImageClient, []string, error) {
	c, err := ic.client()
	if err != nil {
		return nil, nil, err
	}
	if ic.node != "" {
		return c, []string{ic.node}, nil
	}
	nodes, err := c.Nodes(context.Background())
	return c, nodes, err
}

func (ic *imageCmds) load(_ *cobra.Command, args []string) error {
	c, err := ic.client()
	if err != nil {
		return err
	}
	if _, err := os.Stat(args[0]); err != nil {
		return err
	}
	open := func() (io.ReadCloser, error) { return os.Open(args[0]) }
	var results []agent.NodeImages
	if ic.node != "" {
		r, err := open()
		if err != nil {
			return err
		}
		defer r.Close()
		imgs, err := c.Load(context.Background(), ic.node, r)
		results = []agent.NodeImages{{Node: ic.node, Images: imgs, Err: err}}
	} else if results, err = c.LoadEverywhere(context.Background(), open); len(results) == 0 {
		if err != nil {
			return err
		}
		return fmt.Errorf("the cluster has no nodes to load the image on yet")
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(ic.s.ErrOut, "%s: %v\n", r.Node, r.Err)
			continue
		}
		for _, img := range r.Images {
			fmt.Fprintf(ic.s.Out, "%s: loaded %s\n", r.Node, img.Ref)
		}
	}
	if failed > 0 {
		return fmt.Errorf("loading failed on %d of %d nodes", failed, len(results))
	}
	return nil
}

func (ic *imageCmds) list(_ *cobra.Command, _ []string) error {
	c, nodes, err := ic.target()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(ic.s.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NODE\tIMAGE\tDIGEST\tSIZE")
	for _, n := range nodes {
		imgs, err := c.List(context.Background(), n)
		if err != nil {
			fmt.Fprintf(w, "%s\t<error: %v>\t\t\n", n, err)
			continue
		}
		for _, img := range imgs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n, img.Ref, shortDigest(img.Digest), humanBytes(img.Size))
		}
	}
	return w.Flush()
}

func (ic *imageCmds) remove(_ *cobra.Command, args []string) error {
	c, nodes, err := ic.target()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		for _, ref := range args {
			if err := c.Remove(context.Background(), n, ref); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			fmt.Fprintf(ic.s.Out, "%s: removed %s\n", n, ref)
		}
	}
	return nil
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
