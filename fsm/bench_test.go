package fsm

import (
	"bytes"
	"testing"

	"github.com/skiffhq/skiff/proto"
)

// benchCommands encodes n ConfigMap commands of typ with distinct names.
func benchCommands(b *testing.B, typ proto.CommandType, n int) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	for i := range out {
		cm := configMap("cm-"+itoa(uint64(i)), map[string]string{"key": "value", "index": itoa(uint64(i))})
		out[i] = command(b, typ, cm, 0, "").Encode()
	}
	return out
}

func reportObjects(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objs/s")
}

func BenchmarkApplyCreateConfigMap(b *testing.B) {
	h := newHarness(b)
	h.namespace("default")
	cmds := benchCommands(b, proto.CommandCreate, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.index++
		if res := h.store.Apply(h.index, cmds[i]); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	reportObjects(b)
}

func BenchmarkApplyUpdateConfigMap(b *testing.B) {
	const objects = 1000
	h := newHarness(b)
	h.namespace("default")
	for _, c := range benchCommands(b, proto.CommandCreate, objects) {
		h.index++
		h.store.Apply(h.index, c)
	}
	updates := benchCommands(b, proto.CommandUpdate, objects)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.index++
		if res := h.store.Apply(h.index, updates[i%objects]); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	reportObjects(b)
}

// snapshotStore returns a store holding 10,000 ConfigMaps.
func snapshotStore(b *testing.B) *Store {
	h := newHarness(b)
	h.namespace("default")
	for _, c := range benchCommands(b, proto.CommandCreate, 10000) {
		h.index++
		h.store.Apply(h.index, c)
	}
	return h.store
}

func BenchmarkSnapshotWrite10k(b *testing.B) {
	s := snapshotStore(b)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := s.WriteSnapshot(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "objs/s")
}

func BenchmarkSnapshotRead10k(b *testing.B) {
	var buf bytes.Buffer
	if err := snapshotStore(b).WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	r := newHarness(b)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.store.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "objs/s")
}
