package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Join protocol paths, served on every server's API port.
const (
	PathCACert = "/skiff/v1/cacert"
	PathJoin   = "/skiff/v1/join"
)

// JoinRequest is what a joining node sends once it trusts the CA.
type JoinRequest struct {
	Token    string `json:"token"` // "<id>.<secret>"
	NodeName string `json:"nodeName"`
	IP       string `json:"ip"`
	CSR      []byte `json:"csr"`
}

// JoinResponse carries everything a new member needs.
type JoinResponse struct {
	Role     string `json:"role"`
	NodeCert []byte `json:"nodeCert"`
	CACert   []byte `json:"caCert"`
	CAKey    []byte `json:"caKey,omitempty"` // servers only
	// ClusterKey seals Secret data at rest; servers only.
	ClusterKey []byte   `json:"clusterKey,omitempty"`
	GossipKey  []byte   `json:"gossipKey"`
	Members    []string `json:"members"`  // gossip addresses to join
	Settings   Settings `json:"settings"` // cluster-wide settings
}

// JoinError is a refusal with a message for the joining user.
type JoinError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *JoinError) Error() string { return e.Message }

// JoinOptions describe the node that joins.
type JoinOptions struct {
	Server   string // host:port of any server's API
	Token    string
	NodeName string
	IP       net.IP // advertise address, put in the certificate
	// Ports overrides the ports copied from the admitting server.
	Ports *Ports
}

// FetchCA downloads the cluster CA from server and checks it against pin.
// The TLS session is verified against the returned CA afterwards, so a
// man in the middle cannot hand out a CA and then serve with another.
func FetchCA(ctx context.Context, server, pin string) (*CA, error) {
	var peer []*x509.Certificate
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates
			return nil
		},
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+server+PathCACert, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: reaching %s: %w", server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cluster: %s did not return its CA (HTTP %d)", server, resp.StatusCode)
	}
	cert, err := ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA from %s: %w", server, err)
	}
	if got := CertPin(cert); got != pin {
		return nil, fmt.Errorf("%w: %s presented %s, the token pins %s", ErrCAPinMismatch, server, got, pin)
	}
	ca := &CA{Cert: cert, CertPEM: data}
	if len(peer) == 0 {
		return nil, errors.New("cluster: no server certificate presented")
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: APIServerName}); err != nil {
		return nil, fmt.Errorf("%w: the server's certificate is not signed by the pinned CA: %v", ErrCAPinMismatch, err)
	}
	return ca, nil
}

// Join performs the TLS bootstrap: verify the CA pin, submit a CSR with the
// token, and return the identity files to persist. Nothing is written here.
func Join(ctx context.Context, o JoinOptions) (*JoinedIdentity, error) {
	tok, err := ParseToken(o.Token)
	if err != nil {
		return nil, err
	}
	ca, err := FetchCA(ctx, o.Server, tok.Pin)
	if err != nil {
		return nil, err
	}
	keyPEM, csrPEM, err := NewKeyAndCSR(CertSpec{CommonName: NodeUserPrefix + o.NodeName})
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(JoinRequest{Token: tok.ID + "." + tok.Secret, NodeName: o.NodeName, IP: o.IP.String(), CSR: csrPEM})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), ServerName: APIServerName, MinVersion: tls.VersionTLS12,
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+o.Server+PathJoin, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: join request to %s: %w", o.Server, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		var je JoinError
		if json.Unmarshal(data, &je) == nil && je.Message != "" {
			return nil, &je
		}
		return nil, fmt.Errorf("cluster: join refused by %s (HTTP %d)", o.Server, resp.StatusCode)
	}
	var jr JoinResponse
	if err := json.Unmarshal(data, &jr); err != nil {
		return nil, fmt.Errorf("cluster: bad join response: %w", err)
	}
	s := jr.Settings
	s.NodeName, s.Role, s.AdvertiseIP, s.Bootstrap, s.Join = o.NodeName, jr.Role, o.IP.String(), false, jr.Members
	if p := o.Ports; p != nil {
		s.APIPort, s.RaftPort, s.GossipPort, s.AgentPort = p.API, p.Raft, p.Gossip, p.Agent
	}
	return &JoinedIdentity{Settings: &s, CACert: jr.CACert, CAKey: jr.CAKey, NodeCert: jr.NodeCert, NodeKey: keyPEM,
		GossipKey: jr.GossipKey, ClusterKey: jr.ClusterKey}, nil
}
