package proto

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDefaultPod(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "a", Image: "busybox", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}},
		{Name: "b", Image: "registry.local:5000/app:1.2", Ports: []corev1.ContainerPort{{ContainerPort: 80}}},
		{Name: "c", Image: "app@sha256:0123"},
	}}}
	Default(pod)
	s := pod.Spec
	checks := []struct {
		name      string
		got, want interface{}
	}{
		{"phase", pod.Status.Phase, corev1.PodPending},
		{"restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways},
		{"dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst},
		{"schedulerName", s.SchedulerName, corev1.DefaultSchedulerName},
		{"grace", *s.TerminationGracePeriodSeconds, int64(30)},
		{"pull latest", s.Containers[0].ImagePullPolicy, corev1.PullAlways},
		{"pull tagged", s.Containers[1].ImagePullPolicy, corev1.PullIfNotPresent},
		{"pull digest", s.Containers[2].ImagePullPolicy, corev1.PullIfNotPresent},
		{"requests from limits", s.Containers[0].Resources.Requests.Cpu().String(), "1"},
		{"port protocol", s.Containers[1].Ports[0].Protocol, corev1.ProtocolTCP},
		{"probe period", s.Containers[0].ReadinessProbe.PeriodSeconds, int32(10)},
		{"probe path", s.Containers[0].ReadinessProbe.HTTPGet.Path, "/"},
		{"termination message", s.Containers[0].TerminationMessagePolicy, corev1.TerminationMessageReadFile},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDefaultWorkloads(t *testing.T) {
	d := &appsv1.Deployment{}
	Default(d)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" || *d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Fatalf("deployment defaults: %+v", d.Spec)
	}
	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	Default(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Fatal("Recreate strategy got rolling-update parameters")
	}
	ds := &appsv1.DaemonSet{}
	Default(ds)
	if ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Fatalf("daemonset defaults: %+v", ds.Spec.UpdateStrategy)
	}
	rs := &appsv1.ReplicaSet{}
	Default(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("replicaset defaults: %+v", rs.Spec)
	}
}

func TestDefaultService(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 53, TargetPort: intstr.FromString("dns")}}}}
	Default(svc)
	s := svc.Spec
	if s.Type != corev1.ServiceTypeClusterIP || s.SessionAffinity != corev1.ServiceAffinityNone ||
		s.Ports[0].TargetPort.IntValue() != 80 || s.Ports[1].TargetPort.StrVal != "dns" || s.Ports[0].Protocol != corev1.ProtocolTCP ||
		len(s.IPFamilies) != 1 || *s.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
		t.Fatalf("service defaults: %+v", s)
	}
	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}
	Default(ext)
	if len(ext.Spec.IPFamilies) != 0 {
		t.Fatal("ExternalName service got IP families")
	}
}

func TestDefaultOthers(t *testing.T) {
	sec := &corev1.Secret{}
	Default(sec)
	if sec.Type != corev1.SecretTypeOpaque {
		t.Fatalf("secret type %q", sec.Type)
	}
	ns := &corev1.Namespace{}
	Default(ns)
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("namespace phase %q", ns.Status.Phase)
	}
}

func TestImageTag(t *testing.T) {
	tests := map[string]string{
		"busybox": "latest", "busybox:1.36": "1.36", "localhost:5000/app": "latest",
		"localhost:5000/app:v2": "v2", "app@sha256:abc": "",
	}
	for image, want := range tests {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}
