package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Paths of the membership views served to admins.
const (
	PathMembers   = "/skiff/v1/members"
	PathRaftPeers = "/skiff/v1/raft/peers"
)

// canServe reports whether this node holds a replica that the API may be
// served from: it is in the Raft configuration. Such a node always answers
// itself, even without a leader (with a 503 for what needs one): nodes that
// hold a replica never pass connections on, so passthrough cannot loop.
func (d *Daemon) canServe() bool {
	return d.node != nil && d.inRaftConfig() // an atomic read in raft 1.8
}

// apiServers lists the API addresses of other alive members that can serve.
func (d *Daemon) apiServers() []string {
	var out []string
	self := d.cfg.Secure.Settings.NodeName
	for _, m := range d.gossip.Members() {
		if m.Name != self && m.State == MemberAlive && m.Meta.InRaft && m.Meta.API != "" {
			out = append(out, m.Meta.API)
		}
	}
	return out
}

// maintainMembership keeps this node's gossip metadata saying whether it
// holds a replica, so other nodes know where to send API traffic.
func (d *Daemon) maintainMembership(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	changes, unsubscribe := d.gossip.Subscribe()
	defer unsubscribe()
	for i := 0; ; i++ {
		select {
		case <-changes:
			d.savePeers()
		default:
		}
		if i%4 == 3 && d.alivePeers() == 0 {
			d.gossip.Join(d.joinAddrs()) // retried until someone answers
		}
		if d.node != nil {
			in := d.inRaftConfig()
			if meta := d.gossip.Meta(); meta.InRaft != in {
				meta.InRaft = in
				if err := d.gossip.UpdateMeta(meta); err != nil {
					d.log.Warn("gossip: updating metadata", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (d *Daemon) inRaftConfig() bool {
	f := d.node.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == d.node.cfg.NodeName {
			return true
		}
	}
	return false
}

// leave hands off leadership and the Raft seat, then says goodbye in gossip.
func (d *Daemon) leave() {
	if d.node != nil && d.node.IsLeader() {
		if err := d.node.raft.LeadershipTransfer().Error(); err != nil {
			d.log.Warn("leave: leadership transfer failed", "err", err)
		}
	}
	if d.node != nil && d.inRaftConfig() {
		// Ask the leader to take our seat now rather than waiting for
		// autopilot to notice; a removed server never hears of its own
		// removal, so this is also how we know it happened.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			return d.requestRemoval(ctx) == nil, nil
		})
		cancel()
		if err != nil {
			d.log.Warn("leave: the leader did not confirm the removal", "err", err)
		}
	}
	if err := d.gossip.Leave(3 * time.Second); err != nil {
		d.log.Warn("leave: gossip leave failed", "err", err)
	}
	d.log.Info("leave: left the cluster", "node", d.cfg.Secure.Settings.NodeName)
}

// PathRemoveServer asks the leader to remove the calling server from Raft.
const PathRemoveServer = "/skiff/v1/internal/remove-self"

func (d *Daemon) requestRemoval(ctx context.Context) error {
	_, id := d.node.raft.LeaderWithID()
	m, ok := d.gossip.Member(string(id))
	if !ok || m.Meta.API == "" {
		return ErrNoLeader
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+m.Meta.API+PathRemoveServer, nil)
	resp, err := d.peerClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("leader answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// serveRemoveServer removes the calling server (named by its certificate)
// from the Raft configuration; leader only.
func (d *Daemon) serveRemoveServer(w http.ResponseWriter, r *http.Request) {
	id, _ := CallerFrom(r.Context())
	name := id.NodeName()
	if name == "" || !d.node.IsLeader() {
		writeStatus(w, apierrors.NewServiceUnavailable("only the leader removes servers, for themselves"))
		return
	}
	if err := d.node.raft.RemoveServer(raft.ServerID(name), 0, 0).Error(); err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	d.log.Info("raft: removed a server at its request", "server", name)
	w.Write([]byte("removed\n"))
}

// MemberView is one row of `skiff members`.
type MemberView struct {
	Name   string      `json:"name"`
	Addr   string      `json:"addr"`
	Role   string      `json:"role"`
	State  MemberState `json:"state"`
	Since  time.Time   `json:"since"`
	API    string      `json:"api"`
	InRaft bool        `json:"inRaft"`
}

func (d *Daemon) serveMembers(w http.ResponseWriter, r *http.Request) {
	var out []MemberView
	for _, m := range d.gossip.Members() {
		out = append(out, MemberView{Name: m.Name, Addr: m.Addr, Role: m.Meta.Role, State: m.State, Since: m.Since, API: m.Meta.API, InRaft: m.Meta.InRaft})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// PeerView is one row of `skiff raft peers`.
type PeerView struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	Suffrage     string `json:"suffrage"`
	Leader       bool   `json:"leader"`
	State        string `json:"state,omitempty"`
	LastContact  string `json:"lastContact,omitempty"`
	AppliedIndex string `json:"appliedIndex,omitempty"`
}

// RaftState is one server's own view, from PathRaftState.
type RaftState struct {
	State        string `json:"state"`
	LastContact  string `json:"lastContact"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Term         string `json:"term"`
}

// RaftView is the answer of PathRaftPeers.
type RaftView struct {
	Servers     []PeerView        `json:"servers"`
	Leader      string            `json:"leader"`
	ServedBy    string            `json:"servedBy"`
	LocalStats  map[string]string `json:"localStats"`
	AppliedHere uint64            `json:"appliedIndex"`
}

func (d *Daemon) serveRaftPeers(w http.ResponseWriter, r *http.Request) {
	if d.node == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("this node is a worker and holds no Raft state"))
		return
	}
	f := d.node.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	_, leader := d.node.raft.LeaderWithID()
	view := RaftView{Leader: string(leader), ServedBy: d.node.cfg.NodeName, LocalStats: d.node.raft.Stats(), AppliedHere: d.node.store.AppliedIndex()}
	servers := f.Configuration().Servers
	view.Servers = make([]PeerView, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		suffrage := "voter"
		if srv.Suffrage != raft.Voter {
			suffrage = "standby"
		}
		view.Servers[i] = PeerView{ID: string(srv.ID), Address: string(srv.Address), Suffrage: suffrage, Leader: srv.ID == leader}
		wg.Add(1)
		go func(p *PeerView) {
			defer wg.Done()
			if st, err := d.peerState(r.Context(), p.ID); err == nil {
				p.State, p.LastContact, p.AppliedIndex = st.State, st.LastContact, fmt.Sprint(st.AppliedIndex)
			} else {
				p.State = "unreachable"
			}
		}(&view.Servers[i])
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(view)
}

// createBootstrapToken stores the token made by `skiff init` in the
// cluster, then deletes the local file so a revoked token stays revoked.
func createBootstrapToken(ctx context.Context, rc *rest.Config, dataDir string, log *slog.Logger) error {
	data, err := os.ReadFile(Paths{dataDir}.BootstrapToken())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	secret := &corev1.Secret{}
	if err := json.Unmarshal(data, secret); err != nil {
		return fmt.Errorf("cluster: bootstrap token file: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secret, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		return err
	}
	log.Info("cluster: first join token stored", "id", string(secret.Data["token-id"]))
	return removeBootstrapToken(dataDir)
}

// PathRaftState serves one server's own Raft state (servers only).
const PathRaftState = "/skiff/v1/internal/raftstate"

func (d *Daemon) raftState() RaftState {
	st := d.node.raft.Stats()
	lc := st["last_contact"]
	if d.node.IsLeader() {
		lc = "0"
	}
	return RaftState{State: d.node.raft.State().String(), LastContact: lc, AppliedIndex: d.node.store.AppliedIndex(), Term: st["term"]}
}

func (d *Daemon) serveRaftState(w http.ResponseWriter, r *http.Request) {
	if d.node == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("worker"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(d.raftState())
}

// peerState asks a server for its Raft state over mutual TLS.
func (d *Daemon) peerState(ctx context.Context, name string) (RaftState, error) {
	if name == d.node.cfg.NodeName {
		return d.raftState(), nil
	}
	m, ok := d.gossip.Member(name)
	if !ok || m.Meta.API == "" {
		return RaftState{}, fmt.Errorf("no API address for %s", name)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.Meta.API+PathRaftState, nil)
	resp, err := d.peerClient.Do(req)
	if err != nil {
		return RaftState{}, err
	}
	defer resp.Body.Close()
	var st RaftState
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func peersFile(dataDir string) string { return filepath.Join(dataDir, "peers.json") }

// savePeers remembers the gossip addresses of alive members, so a restart
// can rejoin even when the members it first joined through are gone.
func (d *Daemon) savePeers() {
	var addrs []string
	for _, m := range d.gossip.Members() {
		if m.State == MemberAlive && m.Name != d.cfg.Secure.Settings.NodeName {
			addrs = append(addrs, m.Addr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	data, _ := json.Marshal(addrs)
	if err := writeFileAtomic(peersFile(d.cfg.Secure.DataDir), data, 0o600); err != nil {
		d.log.Warn("gossip: saving peers", "err", err)
	}
}

// joinAddrs is every address worth trying at start: the join list from
// settings, the members alive at the last save, and (on servers) the hosts
// of the Raft configuration at the cluster's gossip port.
func (d *Daemon) joinAddrs() []string {
	addrs := append([]string{}, d.cfg.Secure.Settings.Join...)
	if d.node != nil {
		if f := d.node.raft.GetConfiguration(); f.Error() == nil {
			for _, srv := range f.Configuration().Servers {
				if host, _, err := net.SplitHostPort(string(srv.Address)); err == nil && string(srv.ID) != d.cfg.Secure.Settings.NodeName {
					addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(d.cfg.Secure.Settings.GossipPort)))
				}
			}
		}
	}
	if data, err := os.ReadFile(peersFile(d.cfg.Secure.DataDir)); err == nil {
		var saved []string
		if json.Unmarshal(data, &saved) == nil {
			addrs = append(addrs, saved...)
		}
	}
	return addrs
}

func (d *Daemon) alivePeers() int {
	n := 0
	for _, m := range d.gossip.Members() {
		if m.State == MemberAlive && m.Name != d.cfg.Secure.Settings.NodeName {
			n++
		}
	}
	return n
}

// raftRoles maps each server in the Raft configuration to "voter" or
// "standby"; everyone else is a worker.
func (d *Daemon) raftRoles() map[string]string {
	out := map[string]string{}
	f := d.node.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	for _, srv := range f.Configuration().Servers {
		role := "voter"
		if srv.Suffrage != raft.Voter {
			role = "standby"
		}
		out[string(srv.ID)] = role
	}
	return out
}

// maxPromotionLag is how many entries a standby may trail the leader's
// commit index and still be promoted to voter.
const maxPromotionLag = 1000

// caughtUp asks a standby how far it has applied; a worker or an
// unreachable node never counts as caught up.
func (d *Daemon) caughtUp(ctx context.Context, id string) bool {
	st, err := d.peerState(ctx, id)
	return err == nil && st.AppliedIndex+maxPromotionLag >= d.node.raft.CommitIndex()
}
