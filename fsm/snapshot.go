package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/skiffhq/skiff/proto"
)

const snapshotMagic = "skiff-snapshot-v1\n"

// ErrBadSnapshot is returned by ReadSnapshot for a stream it cannot parse.
var ErrBadSnapshot = errors.New("fsm: bad snapshot")

// frozen is a point-in-time copy of the store's maps. The objects are
// shared with the live store, which is safe because they are immutable.
type frozen struct {
	applied uint64
	tables  map[*proto.Kind][]proto.Object
}

// freeze copies the store's maps; it is cheap (pointers only).
func (s *Store) freeze() *frozen {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := &frozen{applied: s.applied, tables: map[*proto.Kind][]proto.Object{}}
	for _, k := range proto.Kinds() {
		f.tables[k] = s.listLocked(k, "", nil)
	}
	return f
}

// WriteSnapshot writes the whole store to w.
func (s *Store) WriteSnapshot(w io.Writer) error { return s.freeze().write(w) }

func (f *frozen) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var scratch [binary.MaxVarintLen64]byte
	putBytes := func(b []byte) {
		bw.Write(scratch[:binary.PutUvarint(scratch[:], uint64(len(b)))])
		bw.Write(b)
	}
	bw.WriteString(snapshotMagic)
	bw.Write(scratch[:binary.PutUvarint(scratch[:], f.applied)])
	for _, k := range proto.Kinds() {
		for _, obj := range f.tables[k] {
			data, err := obj.Marshal()
			if err != nil {
				return fmt.Errorf("fsm: snapshot %s: %w", k.Resource, err)
			}
			putBytes([]byte(k.GVK.Group + "/" + k.Resource))
			putBytes(data)
		}
	}
	putBytes(nil) // end marker
	return bw.Flush()
}

// ReadSnapshot replaces the store's contents with a snapshot written by
// WriteSnapshot. Open watches end with ErrGone so their clients re-list.
func (s *Store) ReadSnapshot(r io.Reader) error {
	f, err := readFrozen(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tables {
		for w := range t.watches {
			w.close(ErrGone)
		}
	}
	s.reset()
	for k, objs := range f.tables {
		t := s.tables[k]
		for _, obj := range objs {
			m, err := meta.Accessor(obj)
			if err != nil {
				return err
			}
			key := proto.Key(m.GetNamespace(), m.GetName())
			t.objects[key] = obj
			if svc, ok := obj.(*corev1.Service); ok {
				if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
					s.ips[ip] = key
				}
			}
		}
	}
	for _, t := range s.tables {
		t.ring.compacted = f.applied
	}
	s.applied = f.applied
	s.cond.Broadcast()
	return nil
}

func readFrozen(r io.Reader) (*frozen, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	applied, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	f := &frozen{applied: applied, tables: map[*proto.Kind][]proto.Object{}}
	kinds := map[string]*proto.Kind{}
	for _, k := range proto.Kinds() {
		kinds[k.GVK.Group+"/"+k.Resource] = k
	}
	for {
		name, err := readBytes(br)
		if err != nil {
			return nil, err
		}
		if len(name) == 0 {
			break
		}
		data, err := readBytes(br)
		if err != nil {
			return nil, err
		}
		k, ok := kinds[string(name)]
		if !ok {
			return nil, fmt.Errorf("%w: unknown resource %q", ErrBadSnapshot, name)
		}
		obj := k.New()
		if err := obj.Unmarshal(data); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, name, err)
		}
		obj.GetObjectKind().SetGroupVersionKind(k.GVK)
		f.tables[k] = append(f.tables[k], obj)
	}
	return f, nil
}

func readBytes(br *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrBadSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return b, nil
}
