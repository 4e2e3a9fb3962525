// Package e2e runs the real skiff binary end to end: daemons as separate
// processes with their own data dirs and ports, driven through the CLI and
// client-go, killed with SIGKILL and restarted. `make e2e` builds the binary
// and passes its path in SKIFF_BIN; without it the tests build their own.
package e2e
