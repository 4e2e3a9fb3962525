package cluster

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// passthroughListener hands a connection to the local API server when this
// node can serve it (it holds a current replica), and otherwise pipes the
// raw TCP stream to a server that can. TLS is end to end, so the client's
// certificate is checked by the server that finally answers. When no
// server is reachable the connection is served locally after all, so the
// client gets a proper 503 instead of a closed connection.
type passthroughListener struct {
	net.Listener
	canServe func() bool
	targets  func() []string
	log      *slog.Logger

	once  sync.Once
	local chan net.Conn
	done  chan struct{} // closed when the listener fails for good
	err   error         // why; set before done is closed
}

func (l *passthroughListener) start() {
	l.local = make(chan net.Conn)
	l.done = make(chan struct{})
	go l.acceptLoop()
}

// acceptLoop accepts until the listener fails for good; temporary errors
// (such as running out of file descriptors) are retried with back-off.
func (l *passthroughListener) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				l.log.Warn("api listener: accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			l.err = err
			close(l.done)
			return
		}
		backoff = 5 * time.Millisecond
		if l.canServe() {
			l.handOver(c)
			continue
		}
		go l.pipe(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// handOver gives c to the local server, or closes it after shutdown.
func (l *passthroughListener) handOver(c net.Conn) {
	select {
	case l.local <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection to serve locally.
func (l *passthroughListener) Accept() (net.Conn, error) {
	l.once.Do(l.start)
	select {
	case c := <-l.local:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

func (l *passthroughListener) pipe(c net.Conn) {
	targets := l.targets()
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	var up net.Conn
	for _, t := range targets {
		var err error
		if up, err = net.DialTimeout("tcp", t, 2*time.Second); err == nil {
			break
		}
	}
	if up == nil {
		l.log.Debug("api passthrough: no server reachable, answering locally", "candidates", len(targets))
		l.handOver(c)
		return
	}
	defer c.Close()
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go copyHalf(up, c)
	go copyHalf(c, up)
	wg.Wait()
}
