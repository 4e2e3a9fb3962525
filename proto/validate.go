package proto

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDataBytes is the largest ConfigMap or Secret payload Kubernetes accepts.
const maxDataBytes = 1 << 20

// Validate returns every problem with obj; old is the stored object for an
// update and nil for a create.
func Validate(obj, old runtime.Object) field.ErrorList {
	kind, err := KindOf(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	errs := validateMeta(kind, obj, old)
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodSpec(&o.Spec, field.NewPath("spec"))...)
		if oldPod, ok := old.(*corev1.Pod); ok {
			errs = append(errs, validatePodUpdate(o, oldPod)...)
		}
	case *appsv1.Deployment:
		errs = append(errs, validateReplicas(o.Spec.Replicas, field.NewPath("spec", "replicas"))...)
		errs = append(errs, validateWorkload(o.Spec.Selector, &o.Spec.Template, old)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateReplicas(o.Spec.Replicas, field.NewPath("spec", "replicas"))...)
		errs = append(errs, validateWorkload(o.Spec.Selector, &o.Spec.Template, old)...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateWorkload(o.Spec.Selector, &o.Spec.Template, old)...)
	case *corev1.Service:
		errs = append(errs, validateService(o)...)
	case *corev1.ConfigMap:
		errs = append(errs, validateData(o.Data, o.BinaryData, field.NewPath("data"))...)
	case *corev1.Secret:
		errs = append(errs, validateData(nil, o.Data, field.NewPath("data"))...)
		for k := range o.StringData {
			errs = append(errs, validateKey(k, field.NewPath("stringData").Key(k))...)
		}
	}
	return errs
}

func validateMeta(kind *Kind, obj, old runtime.Object) field.ErrorList {
	nameFn := apivalidation.NameIsDNSSubdomain
	switch kind.Resource {
	case "namespaces":
		nameFn = apivalidation.NameIsDNSLabel
	case "services":
		nameFn = apivalidation.NameIsDNS1035Label
	}
	m, err := metaOf(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	errs := apivalidation.ValidateObjectMeta(m, kind.Namespaced, nameFn, field.NewPath("metadata"))
	if old != nil {
		if om, err := metaOf(old); err == nil {
			errs = append(errs, apivalidation.ValidateObjectMetaUpdate(m, om, field.NewPath("metadata"))...)
		}
	}
	return errs
}

func metaOf(obj runtime.Object) (*metav1.ObjectMeta, error) {
	a, ok := obj.(interface{ GetObjectMeta() metav1.Object })
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	m, ok := a.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return nil, fmt.Errorf("%T has unexpected metadata", obj)
	}
	return m, nil
}

func validateReplicas(r *int32, p *field.Path) field.ErrorList {
	if r != nil && *r < 0 {
		return field.ErrorList{field.Invalid(p, *r, "must be greater than or equal to 0")}
	}
	return nil
}

// validateWorkload checks the selector and pod template of a Deployment,
// ReplicaSet or DaemonSet: the selector is required, non-empty, matches the
// template's labels and (in apps/v1) never changes; the template's pods
// restart Always.
func validateWorkload(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, old runtime.Object) field.ErrorList {
	p := field.NewPath("spec")
	errs := validateSelectorTemplate(sel, t, p)
	if rp := t.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(p.Child("template", "spec", "restartPolicy"), rp, []string{string(corev1.RestartPolicyAlways)}))
	}
	if oldSel := selectorOf(old); sel != nil && oldSel != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(sel, oldSel, p.Child("selector"))...)
	}
	return errs
}

func selectorOf(obj runtime.Object) *metav1.LabelSelector {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Selector
	case *appsv1.ReplicaSet:
		return o.Spec.Selector
	case *appsv1.DaemonSet:
		return o.Spec.Selector
	}
	return nil
}

func validateSelectorTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	selPath := p.Child("selector")
	if sel == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid"))
		} else if s, err := metav1.LabelSelectorAsSelector(sel); err == nil && !s.Matches(labels.Set(t.Labels)) {
			errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
		}
	}
	tp := p.Child("template")
	errs = append(errs, metav1validation.ValidateLabels(t.Labels, tp.Child("metadata", "labels"))...)
	errs = append(errs, validatePodSpec(&t.Spec, tp.Child("spec"))...)
	return errs
}

func validateData(data map[string]string, binary map[string][]byte, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	total := 0
	for k, v := range data {
		errs = append(errs, validateKey(k, p.Key(k))...)
		total += len(v)
	}
	for k, v := range binary {
		errs = append(errs, validateKey(k, p.Key(k))...)
		if _, dup := data[k]; dup {
			errs = append(errs, field.Invalid(p.Key(k), k, "duplicate of key present in data"))
		}
		total += len(v)
	}
	if total > maxDataBytes {
		errs = append(errs, field.TooLong(p, "", maxDataBytes))
	}
	return errs
}

func validateKey(k string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(p, k, msg))
	}
	return errs
}

// ValidateQuantities checks every resource quantity in a decoded-but-untyped
// object (resources.limits/requests, status.capacity/allocatable) so that a
// bad quantity is reported as a field error instead of a decode failure.
func ValidateQuantities(raw map[string]interface{}) field.ErrorList {
	var errs field.ErrorList
	walkQuantities(raw, nil, &errs)
	return errs
}

func walkQuantities(v interface{}, p *field.Path, errs *field.ErrorList) {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, child := range t {
			cp := p.Child(k)
			if p == nil {
				cp = field.NewPath(k)
			}
			if isQuantityMap(p, k) {
				checkQuantityMap(child, cp, errs)
				continue
			}
			walkQuantities(child, cp, errs)
		}
	case []interface{}:
		for i, child := range t {
			walkQuantities(child, p.Index(i), errs)
		}
	}
}

func isQuantityMap(parent *field.Path, key string) bool {
	if parent == nil {
		return false
	}
	s := parent.String()
	switch key {
	case "limits", "requests":
		return strings.HasSuffix(s, "resources")
	case "capacity", "allocatable":
		return s == "status"
	}
	return false
}

func checkQuantityMap(v interface{}, p *field.Path, errs *field.ErrorList) {
	m, ok := v.(map[string]interface{})
	if !ok {
		return
	}
	for name, q := range m {
		var s string
		switch t := q.(type) {
		case string:
			s = t
		case float64, int64, int:
			s = fmt.Sprint(t)
		default:
			*errs = append(*errs, field.Invalid(p.Key(name), q, "must be a quantity"))
			continue
		}
		if _, err := resource.ParseQuantity(s); err != nil {
			*errs = append(*errs, field.Invalid(p.Key(name), s, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
		}
	}
}
