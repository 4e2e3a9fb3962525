package api

import (
	"context"
	"errors"
	"net"
	"sync"

	"k8s.io/client-go/rest"
)

// ErrListenerClosed is returned by Accept and Dial after Close.
var ErrListenerClosed = errors.New("api: in-process listener closed")

// InProcessListener is a net.Listener whose connections are in-memory
// pipes. The leader's controllers and the local agent reach the API through
// it with an ordinary client-go client: the same HTTP code path as a remote
// client, without TCP.
type InProcessListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

// NewInProcessListener returns a ready listener.
func NewInProcessListener() *InProcessListener {
	return &InProcessListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next in-process connection.
func (l *InProcessListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	}
}

// Close stops the listener; established connections stay open.
func (l *InProcessListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *InProcessListener) Addr() net.Addr { return inprocAddr{} }

// DialContext connects to the listener.
func (l *InProcessListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RESTConfig returns a client-go configuration that talks to this listener.
func (l *InProcessListener) RESTConfig(userAgent string) *rest.Config {
	return &rest.Config{
		Host:      "http://skiff.inprocess",
		Dial:      l.DialContext,
		UserAgent: userAgent,
		QPS:       -1, // no client-side throttling in-process
	}
}

type inprocAddr struct{}

func (inprocAddr) Network() string { return "inprocess" }
func (inprocAddr) String() string  { return "inprocess" }
