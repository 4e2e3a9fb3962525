package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// podEvents turns pod informer events into syncs of the controllers that
// own the pods or could adopt them, with the expectations bookkeeping, as
// Kubernetes' ReplicaSet and DaemonSet controllers do. Its funcs are the
// controller's; the handlers run on the informer's goroutine.
type podEvents struct {
	exp      *expectations
	add      func(key string)
	addAfter func(key string, d time.Duration)
	// controllerOf returns the key of the owner controlling pod.
	controllerOf func(pod *corev1.Pod) (string, bool)
	// enqueueMatching queues the owners that could adopt an orphan pod.
	enqueueMatching func(pod *corev1.Pod)
	// minReadySeconds returns the owner's minReadySeconds (0 if gone).
	minReadySeconds func(key string) int32
}

// handlers returns the informer handlers.
func (e *podEvents) handlers() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: e.addPod, UpdateFunc: e.updatePod, DeleteFunc: e.deletePod}
}

func (e *podEvents) addPod(obj interface{}) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		e.deletePod(pod) // restarted with a pod already being deleted
		return
	}
	if key, ok := e.controllerOf(pod); ok {
		e.exp.creationObserved(key)
		e.add(key)
		return
	}
	if metav1.GetControllerOfNoCopy(pod) == nil {
		e.enqueueMatching(pod)
	}
}

func (e *podEvents) updatePod(old, cur interface{}) {
	oldPod, curPod := old.(*corev1.Pod), cur.(*corev1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return // resync: pods are not resynced
	}
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		// A graceful deletion is the deletion a sync expects.
		e.deletePod(curPod)
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldPod), metav1.GetControllerOfNoCopy(curPod)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if key, ok := e.controllerOf(oldPod); ok {
			e.add(key)
		}
	}
	if key, ok := e.controllerOf(curPod); ok {
		e.add(key)
		// A pod that just became ready turns available after
		// minReadySeconds: look again then.
		if !isPodReady(oldPod) && isPodReady(curPod) {
			if s := e.minReadySeconds(key); s > 0 {
				e.addAfter(key, time.Duration(s)*time.Second+time.Second)
			}
		}
		return
	}
	if curRef == nil && (!labels.Equals(oldPod.Labels, curPod.Labels) || oldRef != nil) {
		e.enqueueMatching(curPod)
	}
}

func (e *podEvents) deletePod(obj interface{}) {
	pod, ok := untomb(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := e.controllerOf(pod); ok {
		e.exp.deletionObserved(key, podKey(pod))
		e.add(key)
	}
}
