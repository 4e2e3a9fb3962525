package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/proto"
)

var patchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType)}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, req *request, tgt target) {
	pt := types.PatchType(mediaType(r))
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		writeError(w, unsupportedMediaType(string(pt)+" (server-side apply is not supported; use client-side apply)", patchTypes...))
		return
	default:
		writeError(w, unsupportedMediaType(string(pt), patchTypes...))
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	stored, err := s.guaranteedUpdate(r.Context(), req, 0, tgt, isDryRun(r), func(cur proto.Object) (proto.Object, field.ErrorList, error) {
		return applyPatch(w, r, req.kind, cur, pt, body)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeObjects(w, r, req.kind, http.StatusOK, []proto.Object{stored}, nil)
}

// applyPatch applies a patch to the JSON form of cur and decodes the result.
// A resourceVersion in the patch becomes a precondition (409 on mismatch).
func applyPatch(w http.ResponseWriter, r *http.Request, kind *proto.Kind, cur proto.Object, pt types.PatchType, patch []byte) (proto.Object, field.ErrorList, error) {
	patched, err := patchJSON(kind, cur, pt, patch)
	if err != nil {
		return nil, nil, err
	}
	obj, decodeErrs, err := decodeObject(w, r, kind, patched)
	if err != nil {
		return nil, nil, err
	}
	m, _ := meta.Accessor(obj)
	cm, _ := meta.Accessor(cur)
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, nil, proto.NewConflict(kind.GroupVersionResource().GroupResource(), cm.GetName(), cm.GetResourceVersion())
	}
	if m.GetName() != cm.GetName() || m.GetNamespace() != cm.GetNamespace() {
		return nil, nil, apierrors.NewBadRequest("a patch may not change the object's name or namespace")
	}
	return obj, decodeErrs, nil
}

// patchJSON applies a patch of type pt to the JSON form of cur.
func patchJSON(kind *proto.Kind, cur proto.Object, pt types.PatchType, patch []byte) ([]byte, error) {
	original, err := json.Marshal(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", err))
		}
		if patched, err = p.Apply(original); err != nil {
			return nil, apierrors.NewInvalid(kind.GVK.GroupKind(), nameOf(cur), field.ErrorList{field.Invalid(nil, string(patch), err.Error())})
		}
	case types.MergePatchType:
		if patched, err = jsonpatch.MergePatch(original, patch); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid merge patch: %v", err))
		}
	case types.StrategicMergePatchType:
		if patched, err = strategicpatch.StrategicMergePatch(original, patch, kind.New()); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid strategic merge patch: %v", err))
		}
	}
	return patched, nil
}

func nameOf(obj proto.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetName()
}
