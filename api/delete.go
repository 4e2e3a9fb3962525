package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiffhq/skiff/proto"
)

// protectedNamespaces may never be deleted.
var protectedNamespaces = sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic)

// deleteOptions reads DeleteOptions from the body (if any) and the query.
func (s *Server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		if err := decodeInto(r, body, opts); err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if isDryRun(r) {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported propagationPolicy %q", *p))
		}
	}
	return opts, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, req *request) {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	cur, ok, err := s.load(req.kind, req.namespace, req.name)
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeError(w, apierrors.NewNotFound(req.kind.GroupVersionResource().GroupResource(), req.name))
		return
	}
	obj, gone, err := s.deleteObject(r.Context(), req.kind, cur, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	if gone && req.kind.Resource != "pods" {
		m, _ := meta.Accessor(obj)
		writeJSON(w, http.StatusOK, &metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: m.GetName(), Group: req.kind.GVK.Group, Kind: req.kind.Resource, UID: m.GetUID()},
		})
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, []proto.Object{obj}, nil)
}

// deleteObject deletes cur, gracefully where Kubernetes would: a bound,
// running pod gets a deletion timestamp and its node finishes the job; an
// object with finalizers (or an orphan/foreground propagation policy) is
// marked and left to the garbage collector. gone reports whether the object
// was removed from the store.
func (s *Server) deleteObject(ctx context.Context, kind *proto.Kind, cur proto.Object, opts *metav1.DeleteOptions) (proto.Object, bool, error) {
	cm, _ := meta.Accessor(cur)
	gr := kind.GroupVersionResource().GroupResource()
	uid := string(cm.GetUID())
	if want, ok := uidPrecondition(ctx); ok && string(want) != uid {
		return nil, false, proto.NewUIDConflict(gr, cm.GetName(), string(want), uid)
	}
	if pre := opts.Preconditions; pre != nil {
		if pre.UID != nil && string(*pre.UID) != uid {
			return nil, false, proto.NewUIDConflict(gr, cm.GetName(), string(*pre.UID), uid)
		}
		if pre.ResourceVersion != nil && *pre.ResourceVersion != cm.GetResourceVersion() {
			return nil, false, proto.NewConflict(gr, cm.GetName(), cm.GetResourceVersion())
		}
	}
	if kind.Resource == "namespaces" && protectedNamespaces.Has(cm.GetName()) {
		return nil, false, apierrors.NewForbidden(gr, cm.GetName(), fmt.Errorf("this namespace may not be deleted"))
	}
	marked, err := s.markForDeletion(kind, cur, opts)
	if err != nil {
		return nil, false, err
	}
	if len(opts.DryRun) > 0 {
		return cur, marked == nil, nil
	}
	var rv uint64
	if pre := opts.Preconditions; pre != nil && pre.ResourceVersion != nil {
		if rv, err = parseRV(*pre.ResourceVersion); err != nil {
			return nil, false, err
		}
	}
	if marked != nil && apiequality.Semantic.DeepEqual(marked, cur) {
		return cur, false, nil // already being deleted as asked: nothing to write
	}
	if marked != nil {
		if rv == 0 {
			rv, _ = strconv.ParseUint(cm.GetResourceVersion(), 10, 64)
		}
		stored, err := s.propose(ctx, proto.CommandUpdate, kind, marked, rv, uid)
		if apierrors.IsConflict(err) && opts.Preconditions == nil {
			// Changed under us: start over from the fresh object.
			if fresh, ok, _ := s.load(kind, cm.GetNamespace(), cm.GetName()); ok {
				return s.deleteObject(ctx, kind, fresh, opts)
			}
			return nil, false, apierrors.NewNotFound(gr, cm.GetName())
		}
		if err != nil {
			return nil, false, err
		}
		sm, _ := meta.Accessor(stored)
		_, stillThere := s.store.Get(kind, sm.GetNamespace(), sm.GetName())
		return stored, !stillThere, nil
	}
	gone, err := s.cfg.Proposer.Propose(ctx, &proto.Command{
		Type: proto.CommandDelete, Group: kind.GVK.Group, Resource: kind.Resource,
		Namespace: cm.GetNamespace(), Name: cm.GetName(), UID: uid, ResourceVersion: rv,
	})
	if err == nil && gone != nil {
		gone, err = s.reveal(gone)
	}
	return gone, err == nil, err
}

// markForDeletion returns the object with deletion metadata set when it
// must not disappear at once, or nil when it can be removed now.
func (s *Server) markForDeletion(kind *proto.Kind, cur proto.Object, opts *metav1.DeleteOptions) (proto.Object, error) {
	cm, _ := meta.Accessor(cur)
	now := s.cfg.Now().Truncate(time.Second)
	finalizers := cm.GetFinalizers()
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan:
			finalizers = addString(finalizers, metav1.FinalizerOrphanDependents)
		case metav1.DeletePropagationForeground:
			finalizers = addString(finalizers, metav1.FinalizerDeleteDependents)
		}
	}
	var grace int64
	switch o := cur.(type) {
	case *corev1.Pod:
		grace = podGracePeriod(o, opts)
	case *corev1.Namespace:
		out := o.DeepCopy()
		if out.DeletionTimestamp == nil {
			out.DeletionTimestamp = &metav1.Time{Time: now}
			out.DeletionGracePeriodSeconds = new(int64)
		}
		out.Status.Phase = corev1.NamespaceTerminating
		return out, nil
	}
	if grace == 0 && len(finalizers) == 0 {
		return nil, nil
	}
	out := cur.DeepCopyObject().(proto.Object)
	m, _ := meta.Accessor(out)
	m.SetFinalizers(finalizers)
	deadline := &metav1.Time{Time: now.Add(time.Duration(grace) * time.Second)}
	if dt := cm.GetDeletionTimestamp(); dt != nil {
		// Already being deleted: the deadline may only move closer.
		if old := cm.GetDeletionGracePeriodSeconds(); old != nil && *old <= grace {
			grace = *old
		}
		if dt.Before(deadline) {
			deadline = dt
		}
	}
	m.SetDeletionGracePeriodSeconds(&grace)
	m.SetDeletionTimestamp(deadline)
	return out, nil
}

// podGracePeriod is how long a pod's node gets to stop it: 0 for a pod no
// node runs (unbound or finished) or a forced delete.
func podGracePeriod(pod *corev1.Pod, opts *metav1.DeleteOptions) int64 {
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace < 0 {
		grace = 0
	}
	return grace
}

func addString(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(append([]string{}, list...), s)
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, req *request) {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	pred, err := selectorPredicate(req.kind, q.Get("labelSelector"), q.Get("fieldSelector"))
	if err != nil {
		writeError(w, err)
		return
	}
	objs, _ := s.store.List(req.kind, req.namespace, pred)
	if objs, err = s.revealAll(objs); err != nil {
		writeError(w, err)
		return
	}
	var deleted []proto.Object
	for _, obj := range objs {
		out, _, err := s.deleteObject(r.Context(), req.kind, obj, opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		deleted = append(deleted, out)
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, deleted, &metav1.ListMeta{ResourceVersion: strconv.FormatUint(s.store.AppliedIndex(), 10)})
}
