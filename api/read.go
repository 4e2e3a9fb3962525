package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proto"
)

func (s *Server) get(w http.ResponseWriter, r *http.Request, req *request) {
	if err := s.waitForResourceVersion(r.Context(), r.URL.Query().Get("resourceVersion")); err != nil {
		writeError(w, err)
		return
	}
	obj, ok, err := s.load(req.kind, req.namespace, req.name)
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeError(w, apierrors.NewNotFound(req.kind.GroupVersionResource().GroupResource(), req.name))
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, []proto.Object{obj}, nil)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, req *request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, err)
		return
	}
	var (
		objs  []proto.Object
		rv    uint64
		scope = listScope(req.namespace, q.Get("labelSelector"), q.Get("fieldSelector"))
	)
	if token := q.Get("continue"); token != "" {
		if q.Get("resourceVersion") != "" {
			writeError(w, apierrors.NewBadRequest("specifying resource version is not allowed when using continue"))
			return
		}
		if objs, rv, err = s.pages.take(token, req.kind, scope); err != nil {
			writeError(w, err)
			return
		}
	} else {
		pred, err := selectorPredicate(req.kind, q.Get("labelSelector"), q.Get("fieldSelector"))
		if err != nil {
			writeError(w, err)
			return
		}
		if err := s.waitForResourceVersion(r.Context(), q.Get("resourceVersion")); err != nil {
			writeError(w, err)
			return
		}
		objs, rv = s.store.List(req.kind, req.namespace, pred)
		if q.Get("resourceVersion") == "0" {
			limit = 0 // like the watch cache: "any version" lists are never paged
		}
	}
	lm := &metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)}
	if limit > 0 && int64(len(objs)) > limit {
		rest := objs[limit:]
		objs = objs[:limit]
		lm.Continue = s.pages.put(req.kind, scope, rv, rest)
		lm.RemainingItemCount = ptr.To(int64(len(rest)))
	}
	if objs, err = s.revealAll(objs); err != nil {
		writeError(w, err)
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, objs, lm)
}

// writeObjects writes one object (lm nil) or a list with lm as its list
// metadata, as the typed object or as a Table when the client asks for one.
func (s *Server) writeObjects(w http.ResponseWriter, r *http.Request, kind *proto.Kind, code int, objs []proto.Object, lm *metav1.ListMeta) {
	if t, ok := tableRequested(r); ok {
		table, err := toTable(kind, objs, t.includeObject, s.cfg.Now())
		if err != nil {
			writeError(w, err)
			return
		}
		if lm != nil {
			table.ListMeta = *lm
		} else if m, err := meta.Accessor(objs[0]); err == nil {
			table.ResourceVersion = m.GetResourceVersion()
		}
		writeEncoded(w, r, code, table)
		return
	}
	if lm == nil {
		writeEncoded(w, r, code, objs[0])
		return
	}
	list := kind.NewList()
	items := make([]runtime.Object, len(objs))
	for i, o := range objs {
		items[i] = o
	}
	if err := meta.SetList(list, items); err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	list.GetObjectKind().SetGroupVersionKind(kind.GVK.GroupVersion().WithKind(kind.GVK.Kind + "List"))
	if la, err := meta.ListAccessor(list); err == nil {
		la.SetResourceVersion(lm.ResourceVersion)
		la.SetContinue(lm.Continue)
		la.SetRemainingItemCount(lm.RemainingItemCount)
	}
	writeEncoded(w, r, code, list)
}

// waitForResourceVersion makes a read at resourceVersion N wait until the
// local replica has applied N; "" and "0" read the local state at once.
func (s *Server) waitForResourceVersion(ctx context.Context, rv string) error {
	if rv == "" || rv == "0" {
		return nil
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	if s.store.AppliedIndex() >= n {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistentReadTimeout)
	defer cancel()
	if err := s.store.WaitApplied(ctx, n); err != nil {
		return tooLargeResourceVersion(n, s.store.AppliedIndex())
	}
	return nil
}

func tooLargeResourceVersion(want, have uint64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, have), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type:    metav1.CauseTypeResourceVersionTooLarge,
		Message: "Too large resource version",
	}}
	return err
}
