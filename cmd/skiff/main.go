// Command skiff is the single binary of the skiff orchestrator: the node
// daemon (`skiff agent`) and the CLI (kubectl-compatible resource commands
// plus skiff's own cluster commands).
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
