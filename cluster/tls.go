package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// TLSBundle is a node's TLS identity: the cluster CA and its own key pair.
type TLSBundle struct {
	CA       *CA
	Cert     tls.Certificate
	CertPEM  []byte
	KeyPEM   []byte
	Identity Identity
}

// LoadTLS reads the CA and node key pair from a data dir.
func LoadTLS(dir string) (*TLSBundle, error) {
	p := Paths{dir}
	ca, err := LoadCA(p.PKI())
	if err != nil {
		return nil, fmt.Errorf("cluster: loading CA: %w", err)
	}
	certPEM, err := os.ReadFile(p.NodeCert())
	if err != nil {
		return nil, fmt.Errorf("cluster: loading node certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(p.NodeKey())
	if err != nil {
		return nil, fmt.Errorf("cluster: loading node key: %w", err)
	}
	return bundleFromPEM(ca, certPEM, keyPEM)
}

// ServerConfig is the TLS config of a listener that verifies client
// certificates against the CA when they are presented (requireClient makes
// them mandatory).
func (b *TLSBundle) ServerConfig(requireClient bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		Certificates: []tls.Certificate{b.Cert},
		ClientCAs:    b.CA.Pool(),
		ClientAuth:   auth,
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientConfig is the TLS config for dialing another node; every server
// certificate carries APIServerName, so that is what is verified.
func (b *TLSBundle) ClientConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{b.Cert},
		RootCAs:      b.CA.Pool(),
		ServerName:   APIServerName,
		MinVersion:   tls.VersionTLS12,
	}
}

// errNotServer rejects a Raft peer whose certificate is not a server's.
var errNotServer = errors.New("cluster: raft peer certificate is not a server certificate")

// tlsStreamLayer is a raft.StreamLayer over mutual TLS: both ends present
// node certificates signed by the cluster CA, and both must be servers.
// Handshakes run off the accept loop, so a peer that never completes one
// cannot stall Raft's single accepting goroutine.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config

	ready chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

// newTLSStreamLayer listens on bind for Raft traffic.
func newTLSStreamLayer(bind string, advertise net.Addr, b *TLSBundle) (*tlsStreamLayer, error) {
	ln, err := tls.Listen("tcp", bind, b.ServerConfig(true))
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	l := &tlsStreamLayer{Listener: ln, advertise: advertise, client: b.ClientConfig(),
		ready: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l, nil
}

func (l *tlsStreamLayer) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if isTemporary(err) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.once.Do(func() { l.err = err; close(l.done) })
			return
		}
		go l.handshake(c.(*tls.Conn))
	}
}

// handshake verifies a new connection comes from a server, then hands it to
// Accept; anything else is closed.
func (l *tlsStreamLayer) handshake(tc *tls.Conn) {
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil || !peerIsServer(tc) {
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept returns the next connection from a verified server.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting.
func (l *tlsStreamLayer) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { l.err = net.ErrClosed; close(l.done) })
	return err
}

// Dial connects to a Raft peer and checks it is a server.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), l.client)
	if err != nil {
		return nil, err
	}
	if !peerIsServer(c) {
		c.Close()
		return nil, errNotServer
	}
	return c, nil
}

// Addr is the advertised address.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

func peerIsServer(c *tls.Conn) bool {
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return false
	}
	return IdentityOf(certs[0]).IsServer()
}

// bundleFromPEM assembles a bundle from in-memory PEM.
func bundleFromPEM(ca *CA, certPEM, keyPEM []byte) (*TLSBundle, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	return &TLSBundle{CA: ca, Cert: cert, CertPEM: certPEM, KeyPEM: keyPEM, Identity: IdentityOf(leaf)}, nil
}

// AgentListener listens for the node agent's HTTPS endpoint (logs, exec,
// images). Only servers (which proxy for authorized API callers) and admins
// may connect.
func (b *TLSBundle) AgentListener(addr string) (net.Listener, error) {
	cfg := b.ServerConfig(true)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("a client certificate is required")
		}
		id := IdentityOf(cs.PeerCertificates[0])
		if id.InGroup(GroupMasters) || id.IsServer() {
			return nil
		}
		return fmt.Errorf("%s may not use the node agent", id.User)
	}
	return tls.Listen("tcp", addr, cfg)
}

// AgentTransport is how a server reaches node agents: the agent's
// certificate must be a node certificate from the cluster CA naming the IP
// that was dialed (every node certificate carries its node's address).
func (b *TLSBundle) AgentTransport() *http.Transport {
	cfg := &tls.Config{Certificates: []tls.Certificate{b.Cert}, RootCAs: b.CA.Pool(), MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !IdentityOf(cs.PeerCertificates[0]).InGroup(GroupNodes) {
				return errors.New("the node agent did not present a node certificate")
			}
			return nil
		}}
	return &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 8,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
}
