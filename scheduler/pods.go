package scheduler

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/dump"
)

// podDeletionCost is the annotation by which users rank pods for scale-down.
const podDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// computeHash hashes a pod template the way Kubernetes' ComputeHash does
// (FNV-32a over the template's deterministic dump, plus the collision
// count), so pod-template-hash values look like Kubernetes' own.
func computeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(template))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// podCondition returns the pod's condition of type t, or nil.
func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// isPodReady reports whether the pod's Ready condition is True; the node
// agent sets it from readiness probes.
func isPodReady(pod *corev1.Pod) bool {
	c := podCondition(pod, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isPodAvailable reports whether the pod has been ready for at least
// minReadySeconds at now. When it is ready but not yet available, wait
// says how long until it will be.
func isPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) (ok bool, wait time.Duration) {
	c := podCondition(pod, corev1.PodReady)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReadySeconds == 0 {
		return true, 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if c.LastTransitionTime.IsZero() || !at.After(now) {
		return true, 0
	}
	return false, at.Sub(now)
}

// isPodActive reports whether the pod counts towards its controller's
// replicas: not being deleted and not finished.
func isPodActive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && !isPodTerminal(pod)
}

// isPodTerminal reports whether all of the pod's containers have stopped
// for good.
func isPodTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podKey returns namespace/name.
func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

var phaseRank = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// rankPodsForDeletion sorts pods so that the ones to delete first come
// first, with Kubernetes' ActivePodsWithRanks order: unscheduled before
// scheduled, pending before unknown before running, not ready before
// ready, lower deletion cost first, pods doubled up on a node first, ready
// for less time first, more restarts first, newer first.
func rankPodsForDeletion(pods []*corev1.Pod) {
	perNode := map[string]int{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			perNode[p.Spec.NodeName]++
		}
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if phaseRank[a.Status.Phase] != phaseRank[b.Status.Phase] {
			return phaseRank[a.Status.Phase] < phaseRank[b.Status.Phase]
		}
		if isPodReady(a) != isPodReady(b) {
			return !isPodReady(a)
		}
		if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
			return ca < cb
		}
		if ra, rb := perNode[a.Spec.NodeName], perNode[b.Spec.NodeName]; ra != rb {
			return ra > rb
		}
		if isPodReady(a) && isPodReady(b) {
			ta, tb := podCondition(a, corev1.PodReady).LastTransitionTime, podCondition(b, corev1.PodReady).LastTransitionTime
			if !ta.Equal(&tb) {
				return afterOrZero(&ta, &tb)
			}
		}
		if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
			return ra > rb
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return afterOrZero(&a.CreationTimestamp, &b.CreationTimestamp)
		}
		return a.Name > b.Name
	})
}

// afterOrZero is true when t1 is zero or later than t2 (zero means "not
// known", which sorts first).
func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero()
	}
	return t1.After(t2.Time)
}

func deletionCost(pod *corev1.Pod) int64 {
	n, err := strconv.ParseInt(pod.Annotations[podDeletionCost], 10, 32)
	if err != nil {
		return 0
	}
	return n
}

func maxRestarts(pod *corev1.Pod) int32 {
	var n int32
	for _, s := range pod.Status.ContainerStatuses {
		n = max(n, s.RestartCount)
	}
	return n
}

// newControllerRef returns the ownerReference a controller puts on what it
// creates: controller=true and blockOwnerDeletion=true, so foreground
// deletion of the owner waits for it.
func newControllerRef(owner metav1.Object, apiVersion, kind string) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: &yes, BlockOwnerDeletion: &yes}
}

// podFromTemplate builds a pod for a controller from its template.
func podFromTemplate(t *corev1.PodTemplateSpec, namespace, generateName string, ref metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       namespace,
			GenerateName:    generateName,
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{ref},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
