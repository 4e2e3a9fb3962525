package fsm

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/proto"
)

// admitService allocates or checks a Service's ClusterIP. Allocation is
// deterministic: the lowest free address in the service CIDR, after the
// network address and the first host (reserved for the API service). On an
// update an empty ClusterIP keeps the old address, a set one must not
// change, and a change to or from type ExternalName releases or allocates.
func (s *Store) admitService(kind *proto.Kind, key string, obj, old proto.Object) error {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil
	}
	oldSvc, _ := old.(*corev1.Service)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if oldSvc != nil {
			s.releaseService(kind, key, oldSvc)
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		return nil
	}
	if oldSvc != nil && oldSvc.Spec.ClusterIP != "" {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = oldSvc.Spec.ClusterIP
			svc.Spec.ClusterIPs = oldSvc.Spec.ClusterIPs
		}
		if svc.Spec.ClusterIP != oldSvc.Spec.ClusterIP {
			return invalidIP(svc, "field is immutable")
		}
		return nil
	}
	return s.allocateIP(svc, key)
}

// allocateIP gives a new (or newly non-ExternalName) Service its ClusterIP:
// none for a headless service, the requested one if it is free, or the
// lowest free one.
func (s *Store) allocateIP(svc *corev1.Service, key string) error {
	switch svc.Spec.ClusterIP {
	case corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
		return nil
	case "":
		ip, ok := s.freeIP()
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a ClusterIP: no address left in %v", s.cfg.ServiceCIDR))
		}
		svc.Spec.ClusterIP = ip.String()
	default:
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !s.cfg.ServiceCIDR.Contains(ip) {
			return invalidIP(svc, fmt.Sprintf("must be a valid IP in the service CIDR %v", s.cfg.ServiceCIDR))
		}
		if _, taken := s.ips[ip]; taken {
			return invalidIP(svc, "provided IP is already allocated")
		}
	}
	svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	s.ips[netip.MustParseAddr(svc.Spec.ClusterIP)] = key
	return nil
}

func (s *Store) releaseService(kind *proto.Kind, key string, obj proto.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && s.ips[ip] == key {
		delete(s.ips, ip)
	}
}

func (s *Store) freeIP() (netip.Addr, bool) {
	p := s.cfg.ServiceCIDR.Masked()
	ip := p.Addr().Next().Next()
	for ; p.Contains(ip); ip = ip.Next() {
		if !p.Contains(ip.Next()) {
			break // broadcast address
		}
		if _, taken := s.ips[ip]; !taken {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func invalidIP(svc *corev1.Service, msg string) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name,
		field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIP"), svc.Spec.ClusterIP, msg)})
}
