package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// joinServer admits new members: it checks their token against the stored
// token Secrets and signs their certificate with the cluster CA.
type joinServer struct {
	ca         *CA
	gossipKey  []byte
	clusterKey []byte
	cipher     api.SecretCipher // opens the stored token Secrets; nil when none
	settings   Settings
	store      *fsm.Store
	gossip     *Gossip
	now        func() time.Time
	log        *slog.Logger
}

func (j *joinServer) serveCACert(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(j.ca.CertPEM)
}

func joinRefuse(w http.ResponseWriter, code int, format string, args ...interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(&JoinError{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (j *joinServer) serveJoin(w http.ResponseWriter, r *http.Request) {
	if j.ca.Key == nil {
		joinRefuse(w, http.StatusServiceUnavailable, "this node is a worker and cannot admit members; join through a server")
		return
	}
	var req JoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		joinRefuse(w, http.StatusBadRequest, "malformed join request: %v", err)
		return
	}
	role, err := j.checkToken(req.Token)
	if err != nil {
		j.log.Warn("join: refused", "node", req.NodeName, "remote", r.RemoteAddr, "err", err)
		joinRefuse(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if msgs := validation.IsDNS1123Subdomain(req.NodeName); len(msgs) > 0 {
		joinRefuse(w, http.StatusBadRequest, "invalid node name %q: %s", req.NodeName, strings.Join(msgs, "; "))
		return
	}
	if m, ok := j.gossip.Member(req.NodeName); ok && m.State == MemberAlive {
		joinRefuse(w, http.StatusConflict, "a node named %q is already a live member of this cluster", req.NodeName)
		return
	}
	resp, err := j.admit(req, role)
	if err != nil {
		joinRefuse(w, http.StatusBadRequest, "%v", err)
		return
	}
	j.log.Info("join: admitted", "node", req.NodeName, "role", role, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (j *joinServer) checkToken(presented string) (string, error) {
	id, secret, ok := strings.Cut(presented, ".")
	if !ok {
		return "", ErrTokenMalformed
	}
	kind, _ := proto.KindForResource("", "secrets")
	obj, found := j.store.Get(kind, metav1.NamespaceSystem, TokenSecretName(id))
	s, _ := obj.(*corev1.Secret)
	if !found {
		s = nil
	} else if j.cipher != nil {
		s = s.DeepCopy()
		for k, v := range s.Data {
			plain, err := j.cipher.Open(v)
			if err != nil {
				return "", fmt.Errorf("reading the stored token: %w", err)
			}
			s.Data[k] = plain
		}
	}
	return checkToken(Token{ID: id, Secret: secret}, s, j.now())
}

func (j *joinServer) admit(req JoinRequest, role string) (*JoinResponse, error) {
	csr, err := ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(req.IP)
	if ip == nil {
		return nil, errors.New("the join request lacks a valid IP address")
	}
	certPEM, err := j.ca.Sign(csr, NodeCertSpec(req.NodeName, role, []net.IP{ip}), j.now())
	if err != nil {
		return nil, err
	}
	resp := &JoinResponse{Role: role, NodeCert: certPEM, CACert: j.ca.CertPEM, GossipKey: j.gossipKey, Settings: j.settings}
	if role == RoleServer {
		if resp.CAKey, err = j.ca.KeyPEM(); err != nil {
			return nil, err
		}
		resp.ClusterKey = j.clusterKey
	}
	for _, m := range j.gossip.Members() {
		if m.State == MemberAlive {
			resp.Members = append(resp.Members, m.Addr)
		}
	}
	return resp, nil
}
