// Command purge removes what a stopped skiff node left behind (containers,
// shims, mounts, cgroups): purge NODE-NAME DIR. Used by benchmark scripts.
package main

import (
	"fmt"
	"os"

	"github.com/skiffhq/skiff/cluster/dev"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: purge NODE-NAME DIR")
		os.Exit(2)
	}
	dev.KillContainerd(os.Args[2])
	dev.PurgeNode(os.Args[1], os.Args[2])
}
