package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proto"
	"github.com/skiffhq/skiff/proto/prototest"
)

var printNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// ago returns a timestamp d before printNow.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(printNow.Add(-d)) }

func sample(t *testing.T, resource string) proto.Object {
	t.Helper()
	for _, k := range proto.Kinds() {
		if k.Resource == resource {
			obj := prototest.Sample(k, "default", "x")
			m := obj.(metav1.ObjectMetaAccessor).GetObjectMeta()
			m.SetCreationTimestamp(ago(5 * time.Hour))
			return obj
		}
	}
	t.Fatalf("no kind %s", resource)
	return nil
}

// row renders obj and joins its cells with "|".
func row(t *testing.T, resource string, obj proto.Object) string {
	t.Helper()
	k, _ := proto.KindForResource(kindGroup(resource), resource)
	table, err := toTable(k, []proto.Object{obj}, metav1.IncludeNone, printNow)
	if err != nil {
		t.Fatal(err)
	}
	cells := table.Rows[0].Cells
	if len(cells) != len(table.ColumnDefinitions) {
		t.Fatalf("%d cells for %d columns", len(cells), len(table.ColumnDefinitions))
	}
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = fmt.Sprint(c)
	}
	return strings.Join(out, "|")
}

func kindGroup(resource string) string {
	switch resource {
	case "deployments", "replicasets", "daemonsets", "controllerrevisions":
		return "apps"
	}
	return ""
}

func running(name string, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func waiting(reason string, restarts int32, lastExit time.Duration) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: "app", RestartCount: restarts,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
	if lastExit > 0 {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(lastExit)}
	}
	return cs
}

func terminated(reason string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}}
}

var init2 = []corev1.Container{{Name: "i1", Image: "x"}, {Name: "i2", Image: "x"}}

// podCases are pods in the states kubectl distinguishes, and their rows.
type podCase struct {
	name   string
	mutate func(p *corev1.Pod)
	want   string
}

var podCases = []podCase{
	{"pending", func(p *corev1.Pod) {}, "x|0/1|Pending|0|5h|<none>|<none>|<none>|<none>"},
	{"running", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.1.7"}}
		p.Spec.NodeName = "node-1"
		p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", true, 0)}
	}, "x|1/1|Running|0|5h|10.244.1.7|node-1|<none>|<none>"},
	{"crash loop", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("CrashLoopBackOff", 5, 3*time.Minute)}
	}, "x|0/1|CrashLoopBackOff|5 (3m ago)|5h|<none>|<none>|<none>|<none>"},
	{"image pull", func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("ErrImagePull", 0, 0)}
	}, "x|0/1|ErrImagePull|0|5h|<none>|<none>|<none>|<none>"},
	{"completed", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0)}
	}, "x|0/1|Completed|0|5h|<none>|<none>|<none>|<none>"},
	{"exit code", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("", 137)}
	}, "x|0/1|ExitCode:137|0|5h|<none>|<none>|<none>|<none>"},
	{"evicted", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = "Evicted"
	}, "x|0/1|Evicted|0|5h|<none>|<none>|<none>|<none>"},
	{"terminating", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.DeletionTimestamp = ptr.To(ago(0))
		p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", true, 0)}
	}, "x|1/1|Terminating|0|5h|<none>|<none>|<none>|<none>"},
	{"node lost", func(p *corev1.Pod) {
		p.DeletionTimestamp = ptr.To(ago(0))
		p.Status.Reason = nodeUnreachablePodReason
	}, "x|0/1|Unknown|0|5h|<none>|<none>|<none>|<none>"},
	{"init progress", func(p *corev1.Pod) {
		p.Spec.InitContainers = init2
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0), running("i2", false, 0)}
	}, "x|0/1|Init:1/2|0|5h|<none>|<none>|<none>|<none>"},
	{"init crash loop", func(p *corev1.Pod) {
		p.Spec.InitContainers = init2
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{waiting("CrashLoopBackOff", 2, time.Minute)}
	}, "x|0/1|Init:CrashLoopBackOff|2 (60s ago)|5h|<none>|<none>|<none>|<none>"},
	{"init failed", func(p *corev1.Pod) {
		p.Spec.InitContainers = init2
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("", 3)}
	}, "x|0/1|Init:ExitCode:3|0|5h|<none>|<none>|<none>|<none>"},
	{"one completed one running", func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "x"})
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0), running("side", true, 0)}
	}, "x|1/2|Running|0|5h|<none>|<none>|<none>|<none>"},
	{"sidecar and gates", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "x", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "a"}, {ConditionType: "b"}}
		p.Status.Phase = corev1.PodRunning
		p.Status.NominatedNodeName = "node-2"
		p.Status.Conditions = []corev1.PodCondition{{Type: "a", Status: corev1.ConditionTrue}, {Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "proxy", Ready: true, Started: ptr.To(true), RestartCount: 1,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{running("app", true, 2)}
	}, "x|2/2|Running|3|5h|<none>|<none>|node-2|1/2"},
}

func TestPodPrinter(t *testing.T) {
	for _, tt := range podCases {
		t.Run(tt.name, func(t *testing.T) {
			pod := sample(t, "pods").(*corev1.Pod)
			pod.Status.Phase = corev1.PodPending
			tt.mutate(pod)
			if got := row(t, "pods", pod); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPodRowConditions(t *testing.T) {
	pod := sample(t, "pods").(*corev1.Pod)
	pod.Status.Phase = corev1.PodSucceeded
	k, _ := proto.KindForResource("", "pods")
	table, _ := toTable(k, []proto.Object{pod}, metav1.IncludeNone, printNow)
	if c := table.Rows[0].Conditions; len(c) != 1 || c[0].Type != metav1.RowCompleted {
		t.Fatalf("conditions %+v", c)
	}
}

// printerCases are objects of every other printed kind and their rows.
type printerCase struct {
	resource string
	mutate   func(obj proto.Object)
	want     string
}

var printerCases = []printerCase{
	{"deployments", func(o proto.Object) {
		d := o.(*appsv1.Deployment)
		d.Status = appsv1.DeploymentStatus{ReadyReplicas: 1, UpdatedReplicas: 2, AvailableReplicas: 1}
	}, "x|1/2|2|1|5h|app|busybox:1.36|app=sample"},
	{"replicasets", func(o proto.Object) {
		o.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1}
	}, "x|2|2|1|5h|app|busybox:1.36|app=sample"},
	{"daemonsets", func(o proto.Object) {
		ds := o.(*appsv1.DaemonSet)
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2}
	}, "x|3|3|2|3|2|disk=ssd|5h|app|busybox:1.36|app=sample"},
	{"services", func(o proto.Object) {
		s := o.(*corev1.Service)
		s.Spec.Type = corev1.ServiceTypeClusterIP
		s.Spec.ClusterIPs = []string{"10.96.0.20"}
		s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}
	}, "x|ClusterIP|10.96.0.20|<none>|80/TCP,53/UDP|5h|app=sample"},
	{"services", func(o proto.Object) {
		s := o.(*corev1.Service)
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.ClusterIPs = []string{"10.96.0.21"}
		s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP"}}
	}, "x|NodePort|10.96.0.21|<none>|80:30080/TCP|5h|app=sample"},
	{"services", func(o proto.Object) {
		s := o.(*corev1.Service)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports = []corev1.ServicePort{{Port: 443, Protocol: "TCP"}}
	}, "x|LoadBalancer|<none>|<pending>|443/TCP|5h|app=sample"},
	{"services", func(o proto.Object) {
		s := o.(*corev1.Service)
		s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
	}, "x|ExternalName|<none>|db.example.com|<none>|5h|<none>"},
	{"endpoints", func(o proto.Object) {
		//lint:ignore SA1019 skiff serves core/v1 Endpoints, which the endpoints controller and DNS use
		e := o.(*corev1.Endpoints)
		e.Subsets[0].Addresses = append(e.Subsets[0].Addresses, corev1.EndpointAddress{IP: "10.244.0.6"},
			corev1.EndpointAddress{IP: "10.244.0.7"}, corev1.EndpointAddress{IP: "10.244.0.8"})
	}, "x|10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080 + 1 more...|5h"},
	//lint:ignore SA1019 skiff serves core/v1 Endpoints, which the endpoints controller and DNS use
	{"endpoints", func(o proto.Object) { o.(*corev1.Endpoints).Subsets = nil }, "x|<none>|5h"},
	{"configmaps", func(o proto.Object) { o.(*corev1.ConfigMap).BinaryData = map[string][]byte{"b": nil} }, "x|2|5h"},
	{"secrets", func(o proto.Object) { o.(*corev1.Secret).Type = corev1.SecretTypeOpaque }, "x|Opaque|1|5h"},
	{"namespaces", func(o proto.Object) { o.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating }, "x|Terminating|5h"},
	{"nodes", func(o proto.Object) {
		n := o.(*corev1.Node)
		n.Labels["node-role.kubernetes.io/control-plane"] = ""
		n.Labels["node-role.kubernetes.io/worker"] = ""
		n.Spec.Unschedulable = true
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	}, "x|Ready,SchedulingDisabled|control-plane,worker|5h|v1.37.2-skiff|192.168.1.10|<none>|Debian GNU/Linux 13|6.12.0|containerd://2.1.0"},
	{"nodes", func(o proto.Object) {
		n := o.(*corev1.Node)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
		n.Status.NodeInfo = corev1.NodeSystemInfo{}
	}, "x|NotReady|<none>|5h||192.168.1.10|<none>|<unknown>|<unknown>|<unknown>"},
	{"events", func(o proto.Object) {
		e := o.(*corev1.Event)
		e.FirstTimestamp, e.LastTimestamp, e.Count = ago(10*time.Minute), ago(30*time.Second), 4
		e.InvolvedObject.FieldPath = "spec.containers{app}"
		e.Source.Host = "node-1"
	}, "30s|Normal|Started|pod/web-0|spec.containers{app}|skiff-agent, node-1|Started container app|10m|4|x"},
	{"controllerrevisions", func(o proto.Object) {
		cr := o.(*appsv1.ControllerRevision)
		cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", Controller: ptr.To(true)}}
	}, "x|daemonset.apps/agent|1|5h"},
}

func TestPrinters(t *testing.T) {
	for i, tt := range printerCases {
		t.Run(fmt.Sprintf("%s/%d", tt.resource, i), func(t *testing.T) {
			obj := sample(t, tt.resource)
			tt.mutate(obj)
			if got := row(t, tt.resource, obj); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestEveryKindPrints checks that every served kind yields as many cells
// as it has columns, with NAME (or the event's Name) and priorities set as
// kubectl expects.
func TestEveryKindPrints(t *testing.T) {
	for _, k := range proto.Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			obj := sample(t, k.Resource)
			table, err := toTable(k, []proto.Object{obj}, metav1.IncludeMetadata, printNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(table.Rows[0].Cells) != len(table.ColumnDefinitions) {
				t.Fatalf("%d cells, %d columns", len(table.Rows[0].Cells), len(table.ColumnDefinitions))
			}
			names := 0
			for _, c := range table.ColumnDefinitions {
				if c.Format == "name" {
					names++
				}
			}
			if names != 1 || len(table.Rows[0].Object.Raw) == 0 {
				t.Fatalf("%d name columns, row object %q", names, table.Rows[0].Object.Raw)
			}
		})
	}
}
