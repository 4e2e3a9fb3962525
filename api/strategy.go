package api

import (
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/skiffhq/skiff/proto"
)

// target says which part of an object a write may change.
type target int

const (
	mainResource        target = iota // spec and metadata; status is kept
	statusSubresource                 // status only
	finalizeSubresource               // a namespace's spec.finalizers only
	bindingSubresource                // spec and status together (pods/binding)
)

// structField returns the named top-level field of a typed object, or an
// invalid Value when the kind has none.
func structField(obj proto.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// prepareCreate fixes everything the state machine must not decide: the
// name from generateName, UID, creation time, generation; it clears what a
// client may not set and applies defaults.
func prepareCreate(kind *proto.Kind, obj proto.Object, now time.Time) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if m.GetResourceVersion() != "" {
		return apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(generateName(m.GetGenerateName()))
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.NewTime(now.Truncate(time.Second)))
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetManagedFields(nil)
	if structField(obj, "Spec").IsValid() {
		m.SetGeneration(1)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{}
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	case *appsv1.ReplicaSet:
		o.Status = appsv1.ReplicaSetStatus{}
	case *appsv1.DaemonSet:
		o.Status = appsv1.DaemonSetStatus{}
	case *corev1.Service:
		o.Status = corev1.ServiceStatus{}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{}
		o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
	mergeStringData(obj)
	proto.Default(obj)
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.Status.QOSClass = qosClass(&pod.Spec)
		if pod.Spec.NodeName != "" {
			setPodScheduled(pod, now)
		}
	}
	return nil
}

func generateName(prefix string) string {
	const maxGenerated = 63 - 5
	if len(prefix) > maxGenerated {
		prefix = prefix[:maxGenerated]
	}
	return prefix + utilrand.String(5)
}

// prepareUpdate builds the object to store from the client's object and
// the stored one: identity and timestamps are kept, status is kept on a
// main-resource write and is all that changes on a status write, and the
// generation moves when the spec changes. A client object without a
// resourceVersion (an unconditional update) gets the stored one, so the
// write is still a compare-and-swap against what was read.
func prepareUpdate(kind *proto.Kind, obj, old proto.Object, tgt target) (proto.Object, error) {
	om, _ := meta.Accessor(old)
	switch tgt {
	case statusSubresource:
		out := old.DeepCopyObject().(proto.Object)
		structField(out, "Status").Set(structField(obj, "Status"))
		return out, nil
	case finalizeSubresource:
		out := old.DeepCopyObject().(*corev1.Namespace)
		out.Spec.Finalizers = obj.(*corev1.Namespace).Spec.Finalizers
		return out, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if m.GetUID() != "" && m.GetUID() != om.GetUID() {
		return nil, proto.NewUIDConflict(kind.GroupVersionResource().GroupResource(), om.GetName(), string(m.GetUID()), string(om.GetUID()))
	}
	if m.GetResourceVersion() == "" {
		m.SetResourceVersion(om.GetResourceVersion())
	}
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetGeneration(om.GetGeneration())
	m.SetManagedFields(nil)
	if st := structField(obj, "Status"); st.IsValid() && !isNode(obj) && tgt != bindingSubresource {
		st.Set(structField(old, "Status"))
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		// Only the finalize subresource changes a namespace's finalizers.
		ns.Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
	}
	mergeStringData(obj)
	proto.Default(obj)
	if spec := structField(obj, "Spec"); spec.IsValid() {
		if !apiequality.Semantic.DeepEqual(spec.Interface(), structField(old, "Spec").Interface()) {
			m.SetGeneration(om.GetGeneration() + 1)
		}
	}
	return obj, nil
}

// mergeStringData folds a Secret's write-only stringData into data, as the
// Kubernetes API server does; stringData wins over data for the same key.
func mergeStringData(obj proto.Object) {
	sec, ok := obj.(*corev1.Secret)
	if !ok || len(sec.StringData) == 0 {
		return
	}
	if sec.Data == nil {
		sec.Data = make(map[string][]byte, len(sec.StringData))
	}
	for k, v := range sec.StringData {
		sec.Data[k] = []byte(v)
	}
	sec.StringData = nil
}

func isNode(obj proto.Object) bool { _, ok := obj.(*corev1.Node); return ok }

// unchanged reports whether writing obj over old would change nothing but
// the resourceVersion.
func unchanged(obj, old proto.Object) bool {
	a := obj.DeepCopyObject()
	am, _ := meta.Accessor(a)
	om, _ := meta.Accessor(old)
	am.SetResourceVersion(om.GetResourceVersion())
	return apiequality.Semantic.DeepEqual(a, old)
}

// qosClass computes a pod's quality-of-service class as Kubernetes does.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := 0, 0
	guaranteed := true
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq && !req.IsZero() {
				requests++
			}
			if hasLim && !lim.IsZero() {
				limits++
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case requests == 0 && limits == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// setPodScheduled records the PodScheduled condition on a bound pod.
func setPodScheduled(pod *corev1.Pod, now time.Time) {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type == corev1.PodScheduled {
			if c.Status != corev1.ConditionTrue {
				c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
				c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
			}
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
	})
}
