package api

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// objectFields returns the field set a field selector is matched against,
// the same fields Kubernetes supports for each kind.
func objectFields(obj proto.Object) fields.Set {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	set := fields.Set{"metadata.name": m.GetName()}
	if m.GetNamespace() != "" {
		set["metadata.namespace"] = m.GetNamespace()
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		set["spec.nodeName"] = o.Spec.NodeName
		set["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		set["spec.schedulerName"] = o.Spec.SchedulerName
		set["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		set["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		set["status.phase"] = string(o.Status.Phase)
		set["status.podIP"] = o.Status.PodIP
		set["status.nominatedNodeName"] = o.Status.NominatedNodeName
	case *corev1.Event:
		io := o.InvolvedObject
		set["involvedObject.kind"] = io.Kind
		set["involvedObject.namespace"] = io.Namespace
		set["involvedObject.name"] = io.Name
		set["involvedObject.uid"] = string(io.UID)
		set["involvedObject.apiVersion"] = io.APIVersion
		set["involvedObject.resourceVersion"] = io.ResourceVersion
		set["involvedObject.fieldPath"] = io.FieldPath
		set["reason"] = o.Reason
		set["reportingComponent"] = o.ReportingController
		set["source"] = o.Source.Component
		set["type"] = o.Type
	case *corev1.Secret:
		set["type"] = string(o.Type)
	case *corev1.Node:
		set["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *corev1.Namespace:
		set["status.phase"] = string(o.Status.Phase)
	case *appsv1.ReplicaSet:
		set["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	}
	return set
}

// selectorPredicate parses labelSelector and fieldSelector into a store
// predicate; unsupported fields are a 400, like Kubernetes.
func selectorPredicate(kind *proto.Kind, labelSel, fieldSel string) (fsm.Predicate, error) {
	var ls labels.Selector
	if labelSel != "" {
		var err error
		if ls, err = labels.Parse(labelSel); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
	}
	var fs fields.Selector
	if fieldSel != "" {
		var err error
		if fs, err = fields.ParseSelector(fieldSel); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		known := objectFields(kind.New())
		for _, req := range fs.Requirements() {
			if _, ok := known[req.Field]; !ok && req.Field != "metadata.namespace" {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
	}
	if ls == nil && fs == nil {
		return nil, nil
	}
	return func(obj proto.Object) bool {
		if ls != nil {
			m, err := meta.Accessor(obj)
			if err != nil || !ls.Matches(labels.Set(m.GetLabels())) {
				return false
			}
		}
		return fs == nil || fs.Matches(objectFields(obj))
	}, nil
}
