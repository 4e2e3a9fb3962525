package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/proto"
)

// maxUpdateAttempts bounds the read-modify-write retries of one request
// that did not name a resourceVersion.
const maxUpdateAttempts = 16

// propose encodes obj into a command and replicates it.
func (s *Server) propose(ctx context.Context, typ proto.CommandType, kind *proto.Kind, obj proto.Object, rv uint64, uid string) (proto.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	sealed, err := s.conceal(obj)
	if err != nil {
		return nil, err
	}
	data, err := sealed.Marshal()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	stored, err := s.cfg.Proposer.Propose(ctx, &proto.Command{
		Type: typ, Group: kind.GVK.Group, Resource: kind.Resource,
		Namespace: m.GetNamespace(), Name: m.GetName(), Object: data, ResourceVersion: rv, UID: uid,
	})
	if err != nil || stored == nil {
		return stored, err
	}
	return s.reveal(stored)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, req *request) {
	obj, decodeErrs, err := s.decodeRequest(w, r, req.kind)
	if err != nil {
		writeError(w, err)
		return
	}
	stored, err := s.createObject(r.Context(), req, obj, decodeErrs, isDryRun(r))
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusCreated, []proto.Object{stored}, nil)
}

// decodeRequest reads and decodes the object in the request body; the
// field errors are problems to report with the validation errors.
func (s *Server) decodeRequest(w http.ResponseWriter, r *http.Request, kind *proto.Kind) (proto.Object, field.ErrorList, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	if mediaType(r) == proto.ContentTypeProtobuf {
		obj, err := decodeProtobuf(kind, body)
		return obj, nil, err
	}
	data, err := bodyJSON(r, body)
	if err != nil {
		return nil, nil, err
	}
	return decodeObject(w, r, kind, data)
}

// createObject prepares, validates and proposes a new object.
func (s *Server) createObject(ctx context.Context, req *request, obj proto.Object, decodeErrs field.ErrorList, dryRun bool) (proto.Object, error) {
	m, _ := meta.Accessor(obj)
	if err := checkNamespace(req, m.GetNamespace()); err != nil {
		return nil, err
	}
	if req.kind.Namespaced {
		m.SetNamespace(req.namespace)
	} else {
		m.SetNamespace("")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	for attempt := 0; ; attempt++ {
		if generated {
			m.SetName("")
		}
		if err := prepareCreate(req.kind, obj, s.cfg.Now()); err != nil {
			return nil, err
		}
		if errs := append(decodeErrs, proto.Validate(obj, nil)...); len(errs) > 0 {
			return nil, apierrors.NewInvalid(req.kind.GVK.GroupKind(), m.GetName(), errs)
		}
		if dryRun {
			return obj, nil
		}
		stored, err := s.propose(ctx, proto.CommandCreate, req.kind, obj, 0, "")
		if apierrors.IsAlreadyExists(err) && generated && attempt < 8 {
			continue
		}
		return stored, err
	}
}

func checkNamespace(req *request, objNamespace string) error {
	if req.kind.Namespaced && objNamespace != "" && objNamespace != req.namespace {
		return apierrors.NewBadRequest(fmt.Sprintf("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)", objNamespace, req.namespace))
	}
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, req *request, tgt target) {
	obj, decodeErrs, err := s.decodeRequest(w, r, req.kind)
	if err != nil {
		writeError(w, err)
		return
	}
	m, _ := meta.Accessor(obj)
	if m.GetName() != req.name {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.name)))
		return
	}
	if err := checkNamespace(req, m.GetNamespace()); err != nil {
		writeError(w, err)
		return
	}
	m.SetNamespace(req.namespace) // "" for cluster-scoped kinds
	rv, err := parseRV(m.GetResourceVersion())
	if err != nil {
		writeError(w, err)
		return
	}
	stored, err := s.guaranteedUpdate(r.Context(), req, rv, tgt, isDryRun(r), func(proto.Object) (proto.Object, field.ErrorList, error) {
		return obj.DeepCopyObject().(proto.Object), decodeErrs, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, []proto.Object{stored}, nil)
}

func parseRV(rv string) (uint64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", rv))
	}
	return n, nil
}

// mutateFunc returns the desired object given the current one, and field
// errors found while decoding it; it must not modify current.
type mutateFunc func(current proto.Object) (proto.Object, field.ErrorList, error)

// guaranteedUpdate is the read-modify-write loop of every update: it reads
// the current object, applies mutate, and proposes the result with the
// current resourceVersion as precondition. With rv == 0 (the client named
// no version) a conflict means someone else won the race and the loop
// retries; with rv set, a mismatch is the client's 409.
func (s *Server) guaranteedUpdate(ctx context.Context, req *request, rv uint64, tgt target, dryRun bool, mutate mutateFunc) (proto.Object, error) {
	gr := req.kind.GroupVersionResource().GroupResource()
	for attempt := 0; ; attempt++ {
		cur, ok, err := s.load(req.kind, req.namespace, req.name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apierrors.NewNotFound(gr, req.name)
		}
		cm, _ := meta.Accessor(cur)
		if want, ok := uidPrecondition(ctx); ok && want != cm.GetUID() {
			return nil, proto.NewUIDConflict(gr, req.name, string(want), string(cm.GetUID()))
		}
		if rv != 0 && strconv.FormatUint(rv, 10) != cm.GetResourceVersion() {
			return nil, proto.NewConflict(gr, req.name, cm.GetResourceVersion())
		}
		desired, decodeErrs, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		obj, err := prepareUpdate(req.kind, desired, cur, tgt)
		if err != nil {
			return nil, err
		}
		if errs := append(decodeErrs, proto.Validate(obj, cur)...); len(errs) > 0 {
			return nil, apierrors.NewInvalid(req.kind.GVK.GroupKind(), req.name, errs)
		}
		if unchanged(obj, cur) {
			return cur, nil
		}
		if dryRun {
			return obj, nil
		}
		curRV, _ := strconv.ParseUint(cm.GetResourceVersion(), 10, 64)
		stored, err := s.propose(ctx, proto.CommandUpdate, req.kind, obj, curRV, string(cm.GetUID()))
		if apierrors.IsConflict(err) && rv == 0 && attempt < maxUpdateAttempts {
			continue
		}
		return stored, err
	}
}
