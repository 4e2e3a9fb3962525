package containerd

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"

	"github.com/skiffhq/skiff/agent"
)

// syncTopic carries the probe event that tells a new subscription is live.
const syncTopic = "/skiff/events-sync"

// Events implements agent.Runtime. It subscribes to containerd's task
// events of this node's namespace. Each (re)subscription publishes a probe
// event and sends EventResync once the probe comes back, i.e. once the
// subscription is live: a consumer that lists containers after EventResync
// misses no change. A broken subscription (e.g. containerd restarted) is
// re-established with back-off.
func (r *Runtime) Events(ctx context.Context) <-chan agent.ContainerEvent {
	out := make(chan agent.ContainerEvent, 64)
	go func() {
		defer close(out)
		bo := newBackoff(100*time.Millisecond, 2*time.Second, 10*time.Second)
		for {
			started := r.now()
			err := r.subscribeOnce(ctx, out)
			if ctx.Err() != nil {
				return
			}
			delay := bo.next(r.now().Sub(started))
			r.log.Debug("event subscription broke, resubscribing", "err", err, "after", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return out
}

// subscribeOnce streams events until the subscription or ctx ends.
func (r *Runtime) subscribeOnce(ctx context.Context, out chan<- agent.ContainerEvent) error {
	sctx, cancel := context.WithCancel(r.nsCtx(ctx))
	defer cancel()
	ns := r.cfg.Namespace
	envs, errs := r.client.Subscribe(sctx,
		fmt.Sprintf(`namespace==%q,topic~="^/tasks/"`, ns),
		fmt.Sprintf(`namespace==%q,topic==%q`, ns, syncTopic))
	token := randomHex(8)
	probe := time.NewTimer(0)
	defer probe.Stop()
	probeEvery := 50 * time.Millisecond
	synced := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-probe.C:
			// Until our probe comes back the subscription may not be
			// registered yet; publish it again now and then.
			if err := r.client.EventService().Publish(sctx, syncTopic, &apievents.ContainerDelete{ID: token}); err != nil {
				return fmt.Errorf("publish sync probe: %w", err)
			}
			probeEvery = min(2*probeEvery, time.Second)
			probe.Reset(probeEvery)
		case err := <-errs:
			if err == nil {
				err = fmt.Errorf("event stream closed")
			}
			return err
		case env, ok := <-envs:
			if !ok {
				return fmt.Errorf("event stream closed")
			}
			if env.Topic == syncTopic {
				if !synced && isProbe(env, token) {
					synced = true
					probe.Stop()
					if !send(ctx, out, agent.ContainerEvent{Type: agent.EventResync, At: r.now()}) {
						return ctx.Err()
					}
				}
				continue
			}
			if ev, ok := translateEvent(env); ok && !send(ctx, out, ev) {
				return ctx.Err()
			}
		}
	}
}

// isProbe reports whether env is the sync probe with token.
func isProbe(env *events.Envelope, token string) bool {
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return false
	}
	e, ok := v.(*apievents.ContainerDelete)
	return ok && e.GetID() == token
}

// send delivers ev unless ctx ends first.
func send(ctx context.Context, out chan<- agent.ContainerEvent, ev agent.ContainerEvent) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// translateEvent maps a containerd task event to a ContainerEvent; events of
// exec processes and other topics are dropped.
func translateEvent(env *events.Envelope) (agent.ContainerEvent, bool) {
	if env == nil || env.Event == nil {
		return agent.ContainerEvent{}, false
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return agent.ContainerEvent{}, false
	}
	ev := agent.ContainerEvent{At: env.Timestamp}
	switch e := v.(type) {
	case *apievents.TaskStart:
		ev.Type, ev.ContainerID = agent.EventStarted, e.GetContainerID()
	case *apievents.TaskExit:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return ev, false // an exec process
		}
		ev.Type, ev.ContainerID, ev.ExitCode = agent.EventExited, e.GetContainerID(), int32(e.GetExitStatus())
		if ts := e.GetExitedAt(); ts != nil {
			ev.At = ts.AsTime()
		}
	case *apievents.TaskOOM:
		ev.Type, ev.ContainerID = agent.EventOOM, e.GetContainerID()
	case *apievents.TaskDelete:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return ev, false
		}
		ev.Type, ev.ContainerID = agent.EventDeleted, e.GetContainerID()
	default:
		return ev, false
	}
	return ev, true
}
