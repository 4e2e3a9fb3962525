package fsm

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffhq/skiff/proto"
)

// Result is what Apply returns for one command: the stored object (for
// create and update, and the last state for delete) or the error that
// rejected the command. Errors are Kubernetes API status errors.
type Result struct {
	Object proto.Object
	Err    error
}

// Apply executes one command at the given log index. Indexes must be
// strictly increasing; an index at or below the applied index is ignored
// (it was already applied before a snapshot was taken).
func (s *Store) Apply(index uint64, data []byte) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(index, data)
}

// ApplyBatch applies several commands under one lock acquisition.
func (s *Store) ApplyBatch(indexes []uint64, data [][]byte) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Result, len(data))
	for i := range data {
		out[i] = s.applyLocked(indexes[i], data[i])
	}
	return out
}

func (s *Store) applyLocked(index uint64, data []byte) Result {
	if index <= s.applied {
		return Result{Err: fmt.Errorf("fsm: index %d already applied (at %d)", index, s.applied)}
	}
	s.applied = index
	defer s.cond.Broadcast()
	cmd, err := proto.DecodeCommand(data)
	if err != nil {
		return Result{Err: apierrors.NewBadRequest(err.Error())}
	}
	switch cmd.Type {
	case proto.CommandCreate, proto.CommandUpdate, proto.CommandDelete:
	default:
		if cmd.Type&proto.IgnoreUnknown != 0 {
			return Result{}
		}
		// An unknown command that may not be ignored means this binary is
		// older than the leader that wrote it; applying later entries would
		// diverge, so this replica must stop.
		panic(fmt.Sprintf("fsm: unknown command type %d at index %d: upgrade this node", cmd.Type, index))
	}
	kind, ok := proto.KindForResource(cmd.Group, cmd.Resource)
	if !ok {
		return Result{Err: apierrors.NewBadRequest(fmt.Sprintf("unknown resource %q in group %q", cmd.Resource, cmd.Group))}
	}
	switch cmd.Type {
	case proto.CommandCreate:
		return s.applyCreate(index, kind, cmd)
	case proto.CommandUpdate:
		return s.applyUpdate(index, kind, cmd)
	default:
		return s.applyDelete(index, kind, cmd)
	}
}

func (s *Store) decode(kind *proto.Kind, cmd *proto.Command) (proto.Object, metav1.Object, error) {
	obj := kind.New()
	if err := obj.Unmarshal(cmd.Object); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("decoding %s: %v", kind.Resource, err))
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	if m.GetName() != cmd.Name || m.GetNamespace() != cmd.Namespace {
		return nil, nil, apierrors.NewBadRequest("command key does not match the object's metadata")
	}
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	return obj, m, nil
}

func (s *Store) applyCreate(index uint64, kind *proto.Kind, cmd *proto.Command) Result {
	obj, m, err := s.decode(kind, cmd)
	if err != nil {
		return Result{Err: err}
	}
	t := s.tables[kind]
	key := proto.Key(cmd.Namespace, cmd.Name)
	if _, exists := t.objects[key]; exists {
		return Result{Err: apierrors.NewAlreadyExists(kind.GroupVersionResource().GroupResource(), cmd.Name)}
	}
	if kind.Namespaced {
		if err := s.checkNamespaceOpen(cmd.Namespace); err != nil {
			return Result{Err: err}
		}
	}
	if err := s.admitService(kind, key, obj, nil); err != nil {
		return Result{Err: err}
	}
	m.SetResourceVersion(strconv.FormatUint(index, 10))
	t.objects[key] = obj
	s.emit(kind, Event{Type: watch.Added, Object: obj, Index: index})
	return Result{Object: obj}
}

func (s *Store) applyUpdate(index uint64, kind *proto.Kind, cmd *proto.Command) Result {
	t := s.tables[kind]
	key := proto.Key(cmd.Namespace, cmd.Name)
	old, exists := t.objects[key]
	if !exists {
		return Result{Err: apierrors.NewNotFound(kind.GroupVersionResource().GroupResource(), cmd.Name)}
	}
	if err := checkPreconditions(kind, old, cmd); err != nil {
		return Result{Err: err}
	}
	obj, m, err := s.decode(kind, cmd)
	if err != nil {
		return Result{Err: err}
	}
	if err := s.admitService(kind, key, obj, old); err != nil {
		return Result{Err: err}
	}
	m.SetResourceVersion(strconv.FormatUint(index, 10))
	if finished(obj, m) {
		// The last finalizer is gone from an object being deleted.
		s.removeLocked(kind, key, obj)
		s.emit(kind, Event{Type: watch.Deleted, Object: obj, Old: old, Index: index})
		return Result{Object: obj}
	}
	t.objects[key] = obj
	s.emit(kind, Event{Type: watch.Modified, Object: obj, Old: old, Index: index})
	return Result{Object: obj}
}

func (s *Store) applyDelete(index uint64, kind *proto.Kind, cmd *proto.Command) Result {
	t := s.tables[kind]
	key := proto.Key(cmd.Namespace, cmd.Name)
	old, exists := t.objects[key]
	if !exists {
		return Result{Err: apierrors.NewNotFound(kind.GroupVersionResource().GroupResource(), cmd.Name)}
	}
	if err := checkPreconditions(kind, old, cmd); err != nil {
		return Result{Err: err}
	}
	gone := old.DeepCopyObject().(proto.Object)
	if m, err := meta.Accessor(gone); err == nil {
		m.SetResourceVersion(strconv.FormatUint(index, 10))
	}
	s.removeLocked(kind, key, gone)
	s.emit(kind, Event{Type: watch.Deleted, Object: gone, Old: old, Index: index})
	return Result{Object: gone}
}

func (s *Store) removeLocked(kind *proto.Kind, key string, obj proto.Object) {
	delete(s.tables[kind].objects, key)
	s.releaseService(kind, key, obj)
}

// finished reports whether an object marked for deletion has nothing left
// holding it: no finalizers and no grace period still running.
func finished(obj proto.Object, m metav1.Object) bool {
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	gp := m.GetDeletionGracePeriodSeconds()
	return gp == nil || *gp == 0
}

func checkPreconditions(kind *proto.Kind, old proto.Object, cmd *proto.Command) error {
	m, err := meta.Accessor(old)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	gr := kind.GroupVersionResource().GroupResource()
	if cmd.UID != "" && string(m.GetUID()) != cmd.UID {
		return proto.NewUIDConflict(gr, cmd.Name, cmd.UID, string(m.GetUID()))
	}
	if cmd.ResourceVersion != 0 && m.GetResourceVersion() != strconv.FormatUint(cmd.ResourceVersion, 10) {
		return proto.NewConflict(gr, cmd.Name, m.GetResourceVersion())
	}
	return nil
}

func (s *Store) checkNamespaceOpen(namespace string) error {
	nsKind, _ := proto.KindForResource("", "namespaces")
	ns, ok := s.tables[nsKind].objects[namespace]
	if !ok {
		return apierrors.NewNotFound(nsKind.GroupVersionResource().GroupResource(), namespace)
	}
	if m, err := meta.Accessor(ns); err == nil && m.GetDeletionTimestamp() != nil {
		err := apierrors.NewForbidden(nsKind.GroupVersionResource().GroupResource(), namespace,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace", Message: "namespace is being terminated",
		})
		return err
	}
	return nil
}
