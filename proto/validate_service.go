package proto

import (
	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var serviceTypes = []string{string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeNodePort),
	string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeExternalName)}

func validateService(s *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if s.Spec.Type != "" && !sets.New(serviceTypes...).Has(string(s.Spec.Type)) {
		errs = append(errs, field.NotSupported(p.Child("type"), s.Spec.Type, serviceTypes))
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		if s.Spec.ExternalName == "" {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		}
		return errs
	}
	if len(s.Spec.Ports) == 0 && s.Spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	names := sets.New[string]()
	for i, port := range s.Spec.Ports {
		pp := p.Child("ports").Index(i)
		if len(s.Spec.Ports) > 1 && port.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
		if port.Name != "" {
			errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(port.Port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), port.Port, msg))
		}
		if port.Protocol != "" && !sets.New(protocols...).Has(string(port.Protocol)) {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, protocols))
		}
		errs = append(errs, validateTargetPort(port.TargetPort, pp.Child("targetPort"))...)
	}
	errs = append(errs, metav1validation.ValidateLabels(s.Spec.Selector, p.Child("selector"))...)
	return errs
}

func validateTargetPort(t intstr.IntOrString, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Type == intstr.String {
		for _, msg := range validation.IsValidPortName(t.StrVal) {
			errs = append(errs, field.Invalid(p, t.StrVal, msg))
		}
		return errs
	}
	if t.IntVal == 0 {
		return nil
	}
	for _, msg := range validation.IsValidPortNum(int(t.IntVal)) {
		errs = append(errs, field.Invalid(p, t.IntVal, msg))
	}
	return errs
}
