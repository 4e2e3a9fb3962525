package e2e

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// casInput is one client operation on one key: a read, or a compare-and-
// swap from the value the client last read to a new, unique value.
type casInput struct {
	Key    string
	Read   bool
	Expect string
	Value  string
}

// casOutput is what the client saw.
type casOutput struct {
	Value   string // read result
	OK      bool   // the swap was applied
	Unknown bool   // the request failed in a way that leaves the outcome open
}

// casModel is a register per key. An operation whose outcome is unknown
// may or may not have taken effect, so the model branches.
var casModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(casInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{"v0"} },
	Step: func(state, input, output interface{}) []interface{} {
		st, in, out := state.(string), input.(casInput), output.(casOutput)
		switch {
		case in.Read:
			if out.Value == st {
				return []interface{}{st}
			}
			return nil
		case out.Unknown:
			if st == in.Expect {
				return []interface{}{in.Value, st}
			}
			return []interface{}{st}
		case out.OK:
			if st == in.Expect {
				return []interface{}{in.Value}
			}
			return nil
		default: // conflict: the value had moved on
			if st != in.Expect {
				return []interface{}{st}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(casInput), output.(casOutput)
		if in.Read {
			return fmt.Sprintf("read(%s) -> %s", in.Key, out.Value)
		}
		return fmt.Sprintf("cas(%s, %s -> %s) -> ok=%v unknown=%v", in.Key, in.Expect, in.Value, out.OK, out.Unknown)
	},
}

// history records operations from concurrent clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	acked atomic.Int64
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in casInput, call int64, out casOutput) {
	ret := h.now()
	if out.Unknown {
		ret = math.MaxInt64 // may take effect at any time after the call
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
	if out.OK {
		h.acked.Add(1)
	}
}

// runCASClient reads and swaps keys through one client until ctx ends.
func runCASClient(ctx context.Context, id int, client kubernetes.Interface, keys []string, h *history) {
	seq := 0
	for ctx.Err() == nil {
		key := keys[(id+seq)%len(keys)]
		seq++
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		call := h.now()
		cm, err := client.CoreV1().ConfigMaps("default").Get(rctx, key, metav1.GetOptions{})
		cancel()
		if err != nil {
			pause(ctx)
			continue // a failed read has no effect
		}
		h.add(id, casInput{Key: key, Read: true}, call, casOutput{Value: cm.Data["v"]})
		next := fmt.Sprintf("c%d-%d", id, seq)
		in := casInput{Key: key, Expect: cm.Data["v"], Value: next}
		cm.Data = map[string]string{"v": next}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		call = h.now()
		_, err = client.CoreV1().ConfigMaps("default").Update(wctx, cm, metav1.UpdateOptions{})
		cancel()
		switch {
		case err == nil:
			h.add(id, in, call, casOutput{OK: true})
		case apierrors.IsConflict(err):
			h.add(id, in, call, casOutput{})
		default:
			h.add(id, in, call, casOutput{Unknown: true})
			pause(ctx)
		}
	}
}

func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}

// seedKeys creates the ConfigMaps the clients work on.
func seedKeys(ctx context.Context, client kubernetes.Interface, keys []string) error {
	for _, k := range keys {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k}, Data: map[string]string{"v": "v0"}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// finalReads appends one successful read of every key.
func finalReads(ctx context.Context, client kubernetes.Interface, keys []string, h *history) error {
	for _, k := range keys {
		call := h.now()
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, k, metav1.GetOptions{})
		if err != nil {
			return err
		}
		h.add(99, casInput{Key: k, Read: true}, call, casOutput{Value: cm.Data["v"]})
	}
	return nil
}
