package proto_test

import (
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

func mustKind(group, resource string) *proto.Kind {
	k, ok := proto.KindForResource(group, resource)
	if !ok {
		panic("no kind " + group + "/" + resource)
	}
	return k
}

func TestValidSamplesPass(t *testing.T) {
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			obj := prototest.Sample(k, "default", "sample")
			proto.Default(obj)
			if errs := proto.Validate(obj, nil); len(errs) > 0 {
				t.Fatalf("valid sample rejected: %v", errs)
			}
			setRV(obj, "5")
			if errs := proto.Validate(obj, obj.DeepCopyObject()); len(errs) > 0 {
				t.Fatalf("no-op update rejected: %v", errs)
			}
		})
	}
}

func setRV(obj runtime.Object, rv string) {
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(rv)
}

// fields returns the sorted "path: type" of every error.
func fields(errs field.ErrorList) string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field + ": " + string(e.Type)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// rejectCases are invalid objects and the field errors they must get.
type rejectCase struct {
	name   string
	obj    func() runtime.Object
	old    func() runtime.Object
	fields string
}

var rejectCases = []rejectCase{
	{"bad names", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "Bad_Name").(*corev1.Pod)
		p.Spec.Containers[0].Name = "App"
		return p
	}, nil, "metadata.name: FieldValueInvalid; spec.containers[0].name: FieldValueInvalid"},
	{"missing containers", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "p").(*corev1.Pod)
		p.Spec.Containers = nil
		return p
	}, nil, "spec.containers: FieldValueRequired"},
	{"missing image and duplicate names", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "p").(*corev1.Pod)
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "app"})
		return p
	}, nil, "spec.containers[1].image: FieldValueRequired; spec.containers[1].name: FieldValueDuplicate"},
	{"requests over limits and negative quantity", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "p").(*corev1.Pod)
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceCPU: resource.MustParse("-1")}
		return p
	}, nil, "spec.containers[0].resources.requests[cpu]: FieldValueInvalid; spec.containers[0].resources.requests[memory]: FieldValueInvalid"},
	{"unknown volume, bad port, bad env", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "p").(*corev1.Pod)
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		c.Ports = []corev1.ContainerPort{{ContainerPort: 70000}}
		c.Env = []corev1.EnvVar{{Name: "1BAD=X"}}
		return p
	}, nil, "spec.containers[0].env[0].name: FieldValueInvalid; spec.containers[0].ports[0].containerPort: FieldValueInvalid; spec.containers[0].volumeMounts[0].name: FieldValueNotFound"},
	{"pod spec is immutable", func() runtime.Object {
		p := prototest.Sample(mustKind("", "pods"), "default", "p").(*corev1.Pod)
		p.Spec.Containers[0].Command = []string{"sh"}
		return p
	}, func() runtime.Object { return prototest.Sample(mustKind("", "pods"), "default", "p") }, "spec: FieldValueForbidden"},
	{"deployment without selector", func() runtime.Object {
		d := prototest.Sample(mustKind("apps", "deployments"), "default", "d").(*appsv1.Deployment)
		d.Spec.Selector = nil
		d.Spec.Template.Spec.Containers[0].Image = ""
		return d
	}, nil, "spec.selector: FieldValueRequired; spec.template.spec.containers[0].image: FieldValueRequired"},
	{"selector does not match template", func() runtime.Object {
		d := prototest.Sample(mustKind("apps", "deployments"), "default", "d").(*appsv1.Deployment)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		return d
	}, nil, "spec.template.metadata.labels: FieldValueInvalid"},
	{"negative replicas and OnFailure", func() runtime.Object {
		d := prototest.Sample(mustKind("apps", "deployments"), "default", "d").(*appsv1.Deployment)
		d.Spec.Replicas = new(int32)
		*d.Spec.Replicas = -1
		d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		return d
	}, nil, "spec.replicas: FieldValueInvalid; spec.template.spec.restartPolicy: FieldValueNotSupported"},
	{"selector is immutable", func() runtime.Object {
		d := prototest.Sample(mustKind("apps", "daemonsets"), "default", "d").(*appsv1.DaemonSet)
		d.Spec.Selector.MatchLabels["tier"] = "x"
		d.Spec.Template.Labels["tier"] = "x"
		return d
	}, func() runtime.Object { return prototest.Sample(mustKind("apps", "daemonsets"), "default", "d") }, "spec.selector: FieldValueInvalid"},
	{"configmap keys", func() runtime.Object {
		cm := prototest.Sample(mustKind("", "configmaps"), "default", "c").(*corev1.ConfigMap)
		cm.Data = map[string]string{"bad key": "v", "a": "v"}
		cm.BinaryData = map[string][]byte{"a": []byte("x")}
		return cm
	}, nil, "data[a]: FieldValueInvalid; data[bad key]: FieldValueInvalid"},
	{"secret too large", func() runtime.Object {
		s := prototest.Sample(mustKind("", "secrets"), "default", "s").(*corev1.Secret)
		s.Data["big"] = make([]byte, 1<<20)
		return s
	}, nil, "data: FieldValueTooLong"},
	{"service name is DNS-1035 and ports", func() runtime.Object {
		s := prototest.Sample(mustKind("", "services"), "default", "1svc").(*corev1.Service)
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 0})
		return s
	}, nil, "metadata.name: FieldValueInvalid; spec.ports[1].name: FieldValueRequired; spec.ports[1].port: FieldValueInvalid"},
	{"namespace name", func() runtime.Object {
		return prototest.Sample(mustKind("", "namespaces"), "", "a.b")
	}, nil, "metadata.name: FieldValueInvalid"},
}

func TestValidateRejects(t *testing.T) {
	for _, tt := range rejectCases {
		t.Run(tt.name, func(t *testing.T) {
			obj := tt.obj()
			proto.Default(obj)
			var old runtime.Object
			if tt.old != nil {
				old = tt.old()
				proto.Default(old)
				setRV(obj, "5")
				setRV(old, "5")
			}
			if got := fields(proto.Validate(obj, old)); got != tt.fields {
				t.Fatalf("got  %s\nwant %s", got, tt.fields)
			}
		})
	}
}

func TestValidateQuantities(t *testing.T) {
	raw := map[string]interface{}{
		"spec": map[string]interface{}{
			"containers": []interface{}{map[string]interface{}{
				"resources": map[string]interface{}{
					"limits":   map[string]interface{}{"memory": "12XB", "cpu": 0.5},
					"requests": map[string]interface{}{"cpu": "100m", "memory": true},
				},
			}},
		},
		"status": map[string]interface{}{"capacity": map[string]interface{}{"pods": "110"}},
		"data":   map[string]interface{}{"limits": "not a quantity map"},
	}
	errs := proto.ValidateQuantities(raw)
	want := "spec.containers[0].resources.limits[memory]: FieldValueInvalid; spec.containers[0].resources.requests[memory]: FieldValueInvalid"
	if got := fields(errs); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
