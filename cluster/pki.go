package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Certificate identities. Node certificates carry the node's role in the
// organizational unit so Raft and the API can tell servers from workers.
const (
	GroupNodes     = "system:nodes"
	GroupMasters   = "system:masters"
	NodeUserPrefix = "system:node:"
	AdminUser      = "skiff-admin"
	RoleServer     = "server"
	RoleWorker     = "worker"
	// APIServerName is a DNS name every server certificate carries, so a
	// client can verify whichever server it reaches.
	APIServerName = "skiff-apiserver"
)

// ErrCAPinMismatch means a cluster presented a CA other than the pinned one.
var ErrCAPinMismatch = errors.New("cluster: CA does not match the token's pin")

// CA is the cluster's certificate authority.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer // nil on nodes that only verify
	CertPEM []byte
}

// NewCA creates a self-signed ECDSA P-256 CA valid for ten years.
func NewCA(clusterName string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: clusterName + "-ca", Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Pin returns the CA pin a join token carries: "sha256:" and the hex
// SHA-256 of the CA's SubjectPublicKeyInfo (the kubeadm convention).
func (ca *CA) Pin() string { return CertPin(ca.Cert) }

// CertPin computes the pin of any certificate.
func CertPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Pool returns a cert pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertSpec says what a signed certificate may be used for.
type CertSpec struct {
	CommonName string
	Orgs       []string
	OUs        []string
	DNSNames   []string
	IPs        []net.IP
	Server     bool // TLS server use as well as client
	TTL        time.Duration
}

// NewKeyAndCSR makes a private key and a CSR for spec.
func NewKeyAndCSR(spec CertSpec) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: spec.CommonName, Organization: spec.Orgs, OrganizationalUnit: spec.OUs},
		DNSNames:    spec.DNSNames,
		IPAddresses: spec.IPs,
	}, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("EC PRIVATE KEY", kder), pemBlock("CERTIFICATE REQUEST", der), nil
}

// ParseCSR decodes and checks the signature of a PEM CSR.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("cluster: not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster: parsing CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("cluster: CSR signature: %w", err)
	}
	return csr, nil
}

// Sign issues a certificate for the CSR's key with the identity in spec
// (never the identity the CSR asks for: the signer decides).
func (ca *CA) Sign(csr *x509.CertificateRequest, spec CertSpec, now time.Time) ([]byte, error) {
	if ca.Key == nil {
		return nil, errors.New("cluster: this node holds no CA key")
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if spec.Server {
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: spec.Orgs, OrganizationalUnit: spec.OUs},
		DNSNames:     spec.DNSNames,
		IPAddresses:  spec.IPs,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(spec.TTL),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster: signing: %w", err)
	}
	return pemBlock("CERTIFICATE", der), nil
}

// IssueKeyPair makes a key and signs a certificate for it in one step
// (for identities the CA holder creates itself: its own node, the admin).
func (ca *CA) IssueKeyPair(spec CertSpec, now time.Time) (certPEM, keyPEM []byte, err error) {
	keyPEM, csrPEM, err := NewKeyAndCSR(spec)
	if err != nil {
		return nil, nil, err
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = ca.Sign(csr, spec, now)
	return certPEM, keyPEM, err
}

// ParseCertPEM decodes the first certificate in PEM data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("cluster: not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// LoadCA reads ca.crt (and ca.key when present) from dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, CertPEM: certPEM}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if errors.Is(err, os.ErrNotExist) {
		return ca, nil
	} else if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("cluster: ca.key is not PEM")
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster: ca.key: %w", err)
	}
	ca.Key = key
	return ca, nil
}

// KeyPEM returns the CA private key in PEM, or nil.
func (ca *CA) KeyPEM() ([]byte, error) {
	k, ok := ca.Key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

// Identity is who a verified client certificate says it is.
type Identity struct {
	User   string
	Groups []string
	Role   string // server or worker, for node certificates
}

// IsServer reports whether the identity is a server-role node.
func (id Identity) IsServer() bool { return id.InGroup(GroupNodes) && id.Role == RoleServer }

// NodeName returns the node a node identity speaks for, or "".
func (id Identity) NodeName() string {
	if !id.InGroup(GroupNodes) {
		return ""
	}
	return strings.TrimPrefix(id.User, NodeUserPrefix)
}

// InGroup reports membership of group.
func (id Identity) InGroup(group string) bool {
	for _, g := range id.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// IdentityOf reads the identity of a verified certificate.
func IdentityOf(c *x509.Certificate) Identity {
	id := Identity{User: c.Subject.CommonName, Groups: c.Subject.Organization}
	if len(c.Subject.OrganizationalUnit) > 0 {
		id.Role = c.Subject.OrganizationalUnit[0]
	}
	return id
}

// NodeCertSpec is the certificate a node gets: client and server use,
// named for the node, its addresses and the shared API server name.
//
// Only servers get APIServerName: clients verify that name, so a worker's
// certificate can never pass for an API server.
func NodeCertSpec(node, role string, ips []net.IP) CertSpec {
	dns := []string{node, "localhost"}
	if role == RoleServer {
		dns = append(dns, APIServerName)
	}
	return CertSpec{
		CommonName: NodeUserPrefix + node, Orgs: []string{GroupNodes}, OUs: []string{role},
		DNSNames: dns, IPs: append(ips, net.IPv4(127, 0, 0, 1)),
		Server: true, TTL: 5 * 365 * 24 * time.Hour,
	}
}
