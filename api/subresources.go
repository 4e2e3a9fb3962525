package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/proto"
)

// scaleOf returns the Scale view of a Deployment or ReplicaSet.
func scaleOf(obj proto.Object) (*autoscalingv1.Scale, error) {
	var (
		om       metav1.ObjectMeta
		replicas int32
		status   int32
		sel      *metav1.LabelSelector
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om, replicas, status, sel = o.ObjectMeta, *o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		om, replicas, status, sel = o.ObjectMeta, *o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	default:
		return nil, fmt.Errorf("%T has no scale subresource", obj)
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: om.Name, Namespace: om.Namespace, UID: om.UID,
			ResourceVersion: om.ResourceVersion, CreationTimestamp: om.CreationTimestamp},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicas},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector.String()},
	}, nil
}

func withReplicas(obj proto.Object, n int32) proto.Object {
	out := obj.DeepCopyObject().(proto.Object)
	switch o := out.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	}
	return out
}

// scale serves GET, PUT and PATCH on deployments/scale and replicasets/scale.
func (s *Server) scale(w http.ResponseWriter, r *http.Request, req *request) {
	gr := req.kind.GroupVersionResource().GroupResource()
	cur, ok := s.store.Get(req.kind, req.namespace, req.name)
	if !ok {
		writeError(w, apierrors.NewNotFound(gr, req.name))
		return
	}
	if req.verb == "get" {
		sc, err := scaleOf(cur)
		if err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		writeEncoded(w, r, http.StatusOK, sc)
		return
	}
	if req.verb != "update" && req.verb != "patch" {
		writeError(w, methodNotAllowed(r.Method, req))
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	stored, err := s.guaranteedUpdate(r.Context(), req, 0, mainResource, isDryRun(r), func(cur proto.Object) (proto.Object, field.ErrorList, error) {
		want, err := desiredScale(r, req, cur, body)
		if err != nil {
			return nil, nil, err
		}
		if want.ResourceVersion != "" && want.ResourceVersion != scaleRV(cur) {
			return nil, nil, proto.NewConflict(gr, req.name, scaleRV(cur))
		}
		return withReplicas(cur, want.Spec.Replicas), nil, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	sc, _ := scaleOf(stored)
	writeEncoded(w, r, http.StatusOK, sc)
}

func scaleRV(obj proto.Object) string { sc, _ := scaleOf(obj); return sc.ResourceVersion }

// desiredScale decodes a Scale from a PUT body or applies a PATCH to the
// current Scale.
func desiredScale(r *http.Request, req *request, cur proto.Object, body []byte) (*autoscalingv1.Scale, error) {
	sc, err := scaleOf(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	data := body
	if req.verb == "patch" {
		original, _ := json.Marshal(sc)
		switch pt := types.PatchType(mediaType(r)); pt {
		case types.MergePatchType:
			data, err = jsonpatch.MergePatch(original, body)
		case types.StrategicMergePatchType:
			data, err = strategicpatch.StrategicMergePatch(original, body, &autoscalingv1.Scale{})
		case types.JSONPatchType:
			var p jsonpatch.Patch
			if p, err = jsonpatch.DecodePatch(body); err == nil {
				data, err = p.Apply(original)
			}
		default:
			return nil, unsupportedMediaType(string(pt), patchTypes...)
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid patch: %v", err))
		}
	} else {
		out := &autoscalingv1.Scale{}
		if err := decodeInto(r, body, out); err != nil {
			return nil, err
		}
		return checkScale(out)
	}
	out := &autoscalingv1.Scale{}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid Scale: %v", err))
	}
	return checkScale(out)
}

func checkScale(out *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	if out.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), out.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "replicas"), out.Spec.Replicas, "must be greater than or equal to 0")})
	}
	return out, nil
}

// bind serves POST pods/{name}/binding: the scheduler's way to place a pod.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, req *request) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var b corev1.Binding
	if err := decodeInto(r, body, &b); err != nil {
		writeError(w, err)
		return
	}
	if b.Target.Name == "" {
		writeError(w, apierrors.NewBadRequest("binding target name is required"))
		return
	}
	gr := req.kind.GroupVersionResource().GroupResource()
	// One write sets the node and records PodScheduled, as the Kubernetes
	// binding does, so nobody sees a bound pod without the condition.
	_, err = s.guaranteedUpdate(r.Context(), req, 0, bindingSubresource, isDryRun(r), func(cur proto.Object) (proto.Object, field.ErrorList, error) {
		pod := cur.(*corev1.Pod).DeepCopy()
		if b.UID != "" && b.UID != pod.UID {
			return nil, nil, apierrors.NewConflict(gr, req.name, fmt.Errorf("the binding is for pod UID %s, but the pod's UID is %s", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, nil, apierrors.NewConflict(gr, req.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", req.name))
		}
		if pod.Spec.NodeName != "" {
			return nil, nil, apierrors.NewConflict(gr, req.name, fmt.Errorf("pod %s is already assigned to node %q", req.name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		setPodScheduled(pod, s.cfg.Now())
		return pod, nil, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}
