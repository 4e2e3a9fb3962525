package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/cluster/dev"
)

// TestChaos is issue 4's chaos run on 3 voters and 2 standbys: (a) kill -9
// the leader, (b) cut the leader off, (c) kill a voter for good — while
// clients do compare-and-swap updates through every node. The recorded
// history must be linearizable, and no acknowledged write may be lost.
func TestChaos(t *testing.T) {
	c := UpDevCluster(t, 5, 3)
	ctx := context.Background()
	names := nodeNames(c)
	keys := []string{"k0", "k1", "k2"}
	if err := seedKeys(ctx, NodeClient(t, c, names[0]), keys); err != nil {
		t.Fatalf("seeding keys: %v", err)
	}
	h := &history{start: time.Now()}
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); runCASClient(cctx, i, NodeClient(t, c, names[i%len(names)]), keys, h) }()
	}
	alive := append([]string{}, names...)

	t.Run("a/kill-leader", func(t *testing.T) { alive = killLeader(t, c, alive) })
	t.Run("b/partition-leader", func(t *testing.T) { partitionLeader(t, c, alive) })
	t.Run("c/kill-voter-for-good", func(t *testing.T) { alive = killVoterForGood(t, c, alive) })

	stop()
	wg.Wait()
	if err := finalReads(ctx, NodeClient(t, c, alive[0]), keys, h); err != nil {
		t.Fatalf("final reads: %v", err)
	}
	res, info := porcupine.CheckOperationsVerbose(casModel.ToModel(), h.ops, 2*time.Minute)
	t.Logf("history: %d operations, %d acknowledged swaps; linearizability: %v", len(h.ops), h.acked.Load(), res)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-chaos-%d.html", time.Now().Unix()))
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(casModel.ToModel(), info, f)
			f.Close()
		}
		t.Fatalf("history is not linearizable (%v); visualization: %s", res, path)
	}
	if h.acked.Load() < 10 {
		t.Fatalf("only %d swaps were acknowledged: the clients hardly ran", h.acked.Load())
	}
}

func nodeNames(c *dev.Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func without(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func waitLeader(t *testing.T, c *dev.Cluster, via []string, not string) string {
	t.Helper()
	var leader string
	Eventually(t, 30*time.Second, "a leader other than "+not, func() (bool, error) {
		l, err := Leader(context.Background(), c, via...)
		leader = l
		return err == nil && l != "" && l != not, err
	})
	return leader
}

// writeThrough keeps trying a write through node until one succeeds.
func writeThrough(t *testing.T, c *dev.Cluster, node string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	client := NodeClient(t, c, node)
	name := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	Eventually(t, timeout, "a write through "+node, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err == nil, err
	})
	return time.Since(start)
}

func killLeader(t *testing.T, c *dev.Cluster, alive []string) []string {
	leader := waitLeader(t, c, alive, "")
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	survivors := without(alive, leader)
	took := writeThrough(t, c, survivors[0], 30*time.Second)
	next := waitLeader(t, c, survivors, leader)
	t.Logf("killed leader %s; first write through %s after %v; new leader %s", leader, survivors[0], took, next)
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, leader+" back as a follower", func() (bool, error) {
		v, err := RaftView(context.Background(), c, next)
		if err != nil {
			return false, err
		}
		for _, s := range v.Servers {
			if s.ID == leader {
				return s.State == "Follower", nil
			}
		}
		return false, nil
	})
	return alive
}

func partitionLeader(t *testing.T, c *dev.Cluster, alive []string) {
	leader := waitLeader(t, c, alive, "")
	before, err := RaftView(context.Background(), c, leader)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Partition(leader); err != nil {
		t.Fatal(err)
	}
	majority := without(alive, leader)
	next := waitLeader(t, c, majority, leader)
	took := writeThrough(t, c, majority[0], 30*time.Second)
	t.Logf("partitioned leader %s at applied index %d; majority elected %s; write through %s after %v", leader, before.AppliedHere, next, majority[0], took)
	// The isolated node must not commit anything: a write through it fails
	// and its applied index does not move.
	cut, err := RaftView(context.Background(), c, leader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, werr := NodeClient(t, c, leader).CoreV1().ConfigMaps("default").Create(ctx,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "isolated-write"}}, metav1.CreateOptions{})
	cancel()
	if werr == nil {
		t.Fatalf("a write through the isolated node %s succeeded", leader)
	}
	during, err := RaftView(context.Background(), c, leader)
	if err != nil {
		t.Fatal(err)
	}
	if during.AppliedHere != cut.AppliedHere {
		t.Fatalf("isolated node applied entries while cut off: index %d -> %d", cut.AppliedHere, during.AppliedHere)
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, "the healed node to converge", func() (bool, error) {
		lv, err := RaftView(context.Background(), c, next)
		if err != nil {
			return false, err
		}
		iv, err := RaftView(context.Background(), c, leader)
		if err != nil {
			return false, err
		}
		return iv.AppliedHere >= lv.AppliedHere-5 && iv.Leader == lv.Leader && iv.Leader != "", nil
	})
	if _, err := NodeClient(t, c, leader).CoreV1().ConfigMaps("default").Get(context.Background(), "isolated-write", metav1.GetOptions{}); err == nil {
		t.Fatal("the write refused during the partition exists after healing")
	}
}

func killVoterForGood(t *testing.T, c *dev.Cluster, alive []string) []string {
	leader := waitLeader(t, c, alive, "")
	v, err := RaftView(context.Background(), c, leader)
	if err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, s := range v.Servers {
		if s.Suffrage == "voter" && s.ID != leader {
			victim = s.ID
			break
		}
	}
	if victim == "" {
		t.Fatal("no follower voter to kill")
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rest := without(alive, victim)
	Eventually(t, 60*time.Second, "autopilot to restore 3 voters without "+victim, func() (bool, error) {
		v, err := RaftView(context.Background(), c, leader)
		if err != nil {
			return false, err
		}
		voters := 0
		for _, s := range v.Servers {
			if s.ID == victim {
				return false, nil
			}
			if s.Suffrage == "voter" {
				voters++
			}
		}
		return voters == 3, nil
	})
	t.Logf("killed voter %s for good; 3 voters again after %v", victim, time.Since(start))
	return rest
}
