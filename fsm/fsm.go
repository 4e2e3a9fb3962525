package fsm

import (
	"io"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// FSM adapts a Store to hashicorp/raft. Raft calls Apply, ApplyBatch,
// Snapshot and Restore from a single goroutine; FSMSnapshot.Persist runs
// concurrently with later applies.
type FSM struct {
	store *Store
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// NewFSM returns the raft.FSM for store.
func NewFSM(store *Store) *FSM { return &FSM{store: store} }

// Apply applies one committed log entry and returns a Result.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		if l.Type == raft.LogConfiguration {
			f.store.NoteApplied(l.Index)
		}
		return nil
	}
	return f.store.Apply(l.Index, l.Data)
}

// ApplyBatch applies a batch of committed log entries under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	idx := make([]uint64, 0, len(logs))
	data := make([][]byte, 0, len(logs))
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			idx = append(idx, l.Index)
			data = append(data, l.Data)
		}
	}
	res := f.store.ApplyBatch(idx, data)
	// Configuration entries change no object, but the applied index must
	// cover them: read barriers compare it with Raft's commit index.
	for _, l := range logs {
		if l.Type == raft.LogConfiguration {
			f.store.NoteApplied(l.Index)
		}
	}
	out := make([]interface{}, len(logs))
	j := 0
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = res[j]
			j++
		}
	}
	return out
}

// Snapshot captures the store's current state cheaply; the encoding happens
// in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{frozen: f.store.freeze()}, nil
}

// Restore replaces the store's state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.store.ReadSnapshot(rc)
}

type snapshot struct{ frozen *frozen }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	// The snapshot covers every entry up to its Raft index, including
	// entries the FSM never sees (Raft's own no-ops); record that index so
	// a restored replica's applied index matches Raft's.
	if idx, ok := snapshotIndex(sink.ID()); ok && idx > s.frozen.applied {
		s.frozen.applied = idx
	}
	if err := s.frozen.write(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// snapshotIndex parses the Raft index out of a file snapshot ID
// ("term-index-millis").
func snapshotIndex(id string) (uint64, bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 {
		return 0, false
	}
	n, err := strconv.ParseUint(parts[1], 10, 64)
	return n, err == nil
}
