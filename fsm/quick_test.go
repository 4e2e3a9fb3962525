package fsm

import (
	"math/rand"
	"net/http"
	"reflect"
	"testing"
	"testing/quick"

	corev1 "k8s.io/api/core/v1"
)

// op is one random write against a small key space.
type op struct {
	Kind  int    // 0 create, 1 update, 2 delete
	Name  string // one of a few names, so writes collide
	Value string
	RV    int // 0 unconditional, 1 current resourceVersion, 2 stale one
}

type ops []op

// Generate implements quick.Generator.
func (ops) Generate(r *rand.Rand, size int) reflect.Value {
	names := []string{"a", "b", "c"}
	out := make(ops, r.Intn(size*4)+1)
	for i := range out {
		out[i] = op{Kind: r.Intn(3), Name: names[r.Intn(len(names))], Value: itoa(uint64(r.Intn(5))), RV: r.Intn(3)}
	}
	return reflect.ValueOf(out)
}

// modelEntry is what the naive model knows about one configmap.
type modelEntry struct {
	value string
	rv    uint64
}

// step applies o to the model and returns the HTTP code the store must
// answer with (0 for success).
func step(model map[string]modelEntry, o op, index uint64) (int32, uint64) {
	cur, exists := model[o.Name]
	precondition := uint64(0)
	switch o.RV {
	case 1:
		precondition = cur.rv
	case 2:
		precondition = cur.rv + 1000
	}
	if o.Kind == 0 {
		if exists {
			return http.StatusConflict, 0
		}
		model[o.Name] = modelEntry{o.Value, index}
		return 0, 0
	}
	if !exists {
		return http.StatusNotFound, 0
	}
	if precondition != 0 && precondition != cur.rv {
		return http.StatusConflict, precondition
	}
	if o.Kind == 1 {
		model[o.Name] = modelEntry{o.Value, index}
	} else {
		delete(model, o.Name)
	}
	return 0, precondition
}

func TestStoreMatchesModel(t *testing.T) {
	check := func(seq ops) bool {
		h := newHarness(t)
		h.namespace("default")
		cms := kindOf(t, "configmaps")
		model := map[string]modelEntry{}
		for _, o := range seq {
			want, rv := step(model, o, h.index+1)
			var res Result
			switch o.Kind {
			case 0:
				res = h.create(configMap(o.Name, map[string]string{"v": o.Value}))
			case 1:
				res = h.update(configMap(o.Name, map[string]string{"v": o.Value}), rv, "")
			default:
				res = h.remove(cms, "default", o.Name, rv, "")
			}
			if got := statusCode(res.Err); got != want {
				t.Logf("%+v: code %d, model says %d (%v)", o, got, want, res.Err)
				return false
			}
			if !sameAsModel(t, h.store, model) {
				t.Logf("after %+v the store differs from the model %v", o, model)
				return false
			}
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 200}); err != nil {
		t.Fatal(err)
	}
}

func sameAsModel(t testing.TB, s *Store, model map[string]modelEntry) bool {
	objs, _ := s.List(kindOf(t, "configmaps"), "default", nil)
	if len(objs) != len(model) {
		return false
	}
	for _, obj := range objs {
		cm := obj.(*corev1.ConfigMap)
		want, ok := model[cm.Name]
		if !ok || cm.Data["v"] != want.value || rvOf(t, cm) != want.rv {
			return false
		}
	}
	return true
}
