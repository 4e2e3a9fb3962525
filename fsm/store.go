package fsm

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"

	"github.com/skiffhq/skiff/proto"
)

// Config configures a Store. Every replica of a cluster must use the same
// values, because they influence what Apply does.
type Config struct {
	// ServiceCIDR is the range ClusterIPs are allocated from.
	ServiceCIDR netip.Prefix
	// WatchHistory is how many events per kind the watch hub keeps so a
	// watcher can resume from an older resourceVersion.
	WatchHistory int
	// WatcherQueue is how many undelivered events a single watcher may
	// have queued before it is closed as too slow.
	WatcherQueue int
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the configuration skiff uses unless told otherwise.
func DefaultConfig() Config {
	return Config{
		ServiceCIDR:  netip.MustParsePrefix("10.96.0.0/16"),
		WatchHistory: 4096,
		WatcherQueue: 10000,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !c.ServiceCIDR.IsValid() || !c.ServiceCIDR.Addr().Is4() || c.ServiceCIDR.Bits() > 28 {
		return fmt.Errorf("fsm: service CIDR %v must be an IPv4 prefix of /28 or larger", c.ServiceCIDR)
	}
	if c.WatchHistory < 16 {
		return fmt.Errorf("fsm: watch history %d is below the minimum of 16", c.WatchHistory)
	}
	if c.WatcherQueue < 16 {
		return fmt.Errorf("fsm: watcher queue %d is below the minimum of 16", c.WatcherQueue)
	}
	return nil
}

// table holds the objects of one kind.
type table struct {
	objects map[string]proto.Object
	ring    *ring
	watches map[*Watcher]struct{}
}

// Store is the in-memory object store. Reads are safe from any goroutine;
// Apply must be called from one goroutine at a time with increasing indexes.
type Store struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	tables  map[*proto.Kind]*table
	applied uint64
	ips     map[netip.Addr]string // allocated ClusterIPs -> service key
	cond    *sync.Cond            // broadcast when applied advances
}

// NewStore returns an empty store.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.cond = sync.NewCond(s.mu.RLocker())
	s.reset()
	return s, nil
}

// reset empties the store; the caller holds the write lock (or owns s).
func (s *Store) reset() {
	old := s.tables
	s.tables = make(map[*proto.Kind]*table, len(proto.Kinds()))
	for _, k := range proto.Kinds() {
		t := &table{objects: map[string]proto.Object{}, ring: newRing(s.cfg.WatchHistory), watches: map[*Watcher]struct{}{}}
		if old != nil {
			t.watches = old[k].watches
		}
		s.tables[k] = t
	}
	s.ips = map[netip.Addr]string{}
	s.applied = 0
}

// AppliedIndex returns the Raft index of the last applied command; it is the
// resourceVersion of a list served now.
func (s *Store) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// NoteApplied records that every log entry up to index has been applied,
// for entries that change no object (Raft configuration changes).
func (s *Store) NoteApplied(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index > s.applied {
		s.applied = index
		s.cond.Broadcast()
	}
}

// WaitApplied blocks until the store has applied index or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for s.applied < index {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.cond.Wait()
	}
	return nil
}

// Get returns the stored object (shared: do not modify) and whether it exists.
func (s *Store) Get(kind *proto.Kind, namespace, name string) (proto.Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.tables[kind].objects[proto.Key(namespace, name)]
	return obj, ok
}

// Predicate selects objects in List and Watch; nil selects everything.
type Predicate func(proto.Object) bool

// List returns the objects of a kind in namespace ("" for all namespaces)
// that match pred, sorted by key, and the index they reflect. The objects
// are shared: do not modify them.
func (s *Store) List(kind *proto.Kind, namespace string, pred Predicate) ([]proto.Object, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listLocked(kind, namespace, pred), s.applied
}

func (s *Store) listLocked(kind *proto.Kind, namespace string, pred Predicate) []proto.Object {
	t := s.tables[kind]
	keys := make([]string, 0, len(t.objects))
	prefix := namespace + "/"
	for k := range t.objects {
		if namespace != "" && (len(k) <= len(prefix) || k[:len(prefix)] != prefix) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]proto.Object, 0, len(keys))
	for _, k := range keys {
		obj := t.objects[k]
		if pred == nil || pred(obj) {
			out = append(out, obj)
		}
	}
	return out
}

// Count returns how many objects of a kind exist in namespace ("" for all).
func (s *Store) Count(kind *proto.Kind, namespace string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if namespace == "" {
		return len(s.tables[kind].objects)
	}
	n := 0
	prefix := namespace + "/"
	for k := range s.tables[kind].objects {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}
