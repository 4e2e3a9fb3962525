package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// dialInNetNS connects to addr from inside the network namespace pinned at
// nsPath ("" dials from the agent's own namespace).
//
// A socket belongs to the namespace of the thread that creates it, so the
// dial runs in a goroutine locked to an OS thread that setns()es into the
// pod's namespace first. The connection is then usable from any thread.
// The thread returns to the agent's namespace afterwards; if that fails it
// stays locked, and Go discards a thread whose locked goroutine exits, so
// no other goroutine ever runs in the pod's namespace.
func dialInNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if nsPath == "" {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, err := func() (net.Conn, error) {
			self, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return nil, fmt.Errorf("open own netns: %w", err)
			}
			defer self.Close()
			target, err := os.Open(nsPath)
			if err != nil {
				return nil, fmt.Errorf("open pod netns: %w", err)
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				return nil, fmt.Errorf("enter pod netns %s: %w", nsPath, err)
			}
			conn, err := d.DialContext(ctx, network, addr)
			if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			return conn, err
		}()
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}
