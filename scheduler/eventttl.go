package scheduler

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultEventTTL is how long Events are kept, as in Kubernetes.
const DefaultEventTTL = time.Hour

// RunEventTTL deletes Events last seen more than ttl ago, every interval,
// until ctx ends. Events go through Raft like everything else, so without
// this they would pile up forever. Leader only.
func RunEventTTL(ctx context.Context, client kubernetes.Interface, ttl, interval time.Duration, now func() time.Time, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		expireEvents(ctx, client, ttl, now(), log)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func expireEvents(ctx context.Context, client kubernetes.Interface, ttl time.Duration, now time.Time, log *slog.Logger) {
	list, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("event ttl: listing events", "err", err)
		}
		return
	}
	deleted := 0
	for i := range list.Items {
		ev := &list.Items[i]
		if now.Sub(lastSeen(ev)) < ttl {
			continue
		}
		err := client.CoreV1().Events(ev.Namespace).Delete(ctx, ev.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ev.UID}})
		if err == nil {
			deleted++
		} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			log.Warn("event ttl: deleting event", "event", ev.Namespace+"/"+ev.Name, "err", err)
		}
	}
	if deleted > 0 {
		log.Info("event ttl: deleted expired events", "count", deleted)
	}
}

// lastSeen is when an Event last happened: its lastTimestamp (bumped each
// time it recurs), else its eventTime, else when it was stored.
func lastSeen(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}
