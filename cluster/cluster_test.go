package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/skiffhq/skiff/proto"
)

// member is one in-process server: Raft node, gossip and autopilot.
type member struct {
	name   string
	node   *Node
	gossip *Gossip
	cancel context.CancelFunc
	done   chan struct{}
}

func freeAddr(t testing.TB) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startMember starts a server-role member with TLS from ca.
func startMember(t *testing.T, ca *CA, name string, bootstrap bool, join []string, ap AutopilotConfig) *member {
	t.Helper()
	dir := t.TempDir()
	raftAddr, _ := freeAddr(t)
	_, gossipPort := freeAddr(t)
	bundle := testBundle(t, ca, name, RoleServer)
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RaftBind, cfg.Bootstrap, cfg.TLS = name, dir, raftAddr, bootstrap, bundle
	cfg.Logger = quietLogger()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	g, err := NewGossip(GossipConfig{NodeName: name, BindAddr: "127.0.0.1", BindPort: gossipPort, AdvertiseAddr: "127.0.0.1",
		Key: make([]byte, 32), Meta: NodeMeta{Role: RoleServer, Raft: raftAddr}, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("gossip %s: %v", name, err)
	}
	if err := g.Join(join); err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, node: n, gossip: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		n.RunLeaderTasks(ctx, func(lctx context.Context) { n.RunAutopilot(lctx, g, ap) })
	}()
	t.Cleanup(m.crash)
	return m
}

// crash stops a member without a goodbye, like kill -9.
func (m *member) crash() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.gossip.Shutdown()
	m.node.Shutdown()
	<-m.done
	m.cancel = nil
}

func testBundle(t testing.TB, ca *CA, name, role string) *TLSBundle {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueKeyPair(NodeCertSpec(name, role, nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundleFromPEM(ca, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func leaderOf(ms []*member) *member {
	for _, m := range ms {
		if m.cancel != nil && m.node.IsLeader() {
			return m
		}
	}
	return nil
}

// voters returns the voter and standby counts in the leader's configuration.
func suffrage(t *testing.T, m *member) (voters, standbys int) {
	f := m.node.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, 0
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		} else {
			standbys++
		}
	}
	return voters, standbys
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// TestAutopilotFormsAndHealsCluster starts five servers: autopilot makes
// three voters and two standbys; killing the leader elects another, and
// autopilot then promotes a standby so there are three voters again.
func TestAutopilotFormsAndHealsCluster(t *testing.T) {
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ap := DefaultAutopilotConfig()
	ap.DeadServerStabilization = 500 * time.Millisecond
	ap.Interval = 200 * time.Millisecond
	first := startMember(t, ca, "s0", true, nil, ap)
	ms := []*member{first}
	eventually(t, 10*time.Second, "s0 leads", first.node.IsLeader)
	for i := 1; i < 5; i++ {
		ms = append(ms, startMember(t, ca, "s"+strconv.Itoa(i), false, []string{first.gossip.LocalAddr()}, ap))
	}
	eventually(t, 20*time.Second, "3 voters and 2 standbys", func() bool {
		v, s := suffrage(t, first)
		return v == 3 && s == 2
	})
	old := leaderOf(ms)
	old.crash()
	start := time.Now()
	var next *member
	eventually(t, 10*time.Second, "a new leader", func() bool { next = leaderOf(ms); return next != nil })
	t.Logf("new leader %s after %v", next.name, time.Since(start))
	eventually(t, 20*time.Second, "3 healthy voters again", func() bool {
		v, s := suffrage(t, next)
		return v == 3 && s == 1
	})
	if _, err := next.node.Propose(context.Background(), namespaceCommand(t, "after-failover")); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
}

func namespaceCommand(t testing.TB, name string) *proto.Command {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
	data, err := ns.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &proto.Command{Type: proto.CommandCreate, Resource: "namespaces", Name: name, Object: data}
}
