// Package scheduler runs skiff's leader-only control loops: the
// controllers that turn desired state into pods, the garbage collector,
// and the scheduler that places pods on nodes.
//
// # Lifecycle
//
// Only the Raft leader runs them. For every leadership term the daemon
// does:
//
//	cfg := scheduler.DefaultConfig()
//	cfg.RESTConfig = inproc.RESTConfig("skiff-controllers") // the API, in-process
//	m, err := scheduler.New(cfg)                            // builds clients, informers, controllers
//	err = m.Run(leaderCtx)                                  // blocks until leaderCtx ends
//
// Run creates the system namespaces if they are missing, fills the
// informer caches, starts every controller's workers, and when the context
// ends (leadership lost) stops the workers, the informers and the event
// writer before it returns. A Manager is used once; the next term makes a
// new one and starts from a fresh list of the store, so nothing carries
// over between leaders.
//
//	New ──► Run: informers start ──► caches synced ──► workers ──► ctx done ──► queues shut down,
//	                                                                              workers, informers,
//	                                                                              event writer stopped
//
// Everything goes through the API with client-go, exactly as a remote
// controller would: typed clients, shared informers (one per kind, shared
// by all controllers), and rate-limited work queues. Informer event
// handlers only queue keys; workers take a key, read the current object
// from the informer cache and make one reconciling pass, and a failed pass
// is retried with back-off. A key is never processed by two workers at
// once.
//
// # Controllers
//
//   - bootstrap: creates default, kube-system, kube-public and
//     kube-node-lease when missing, at start and after one is deleted.
//   - deployment (deployment*.go): Deployment → ReplicaSets, as in
//     Kubernetes. The new ReplicaSet is <name>-<pod-template-hash>, its
//     revision annotation is one more than the old ones', and a
//     ReplicaSet whose template matches again (kubectl rollout undo) is
//     reused with a higher revision. RollingUpdate honours maxSurge and
//     maxUnavailable counting available pods (Ready condition, held for
//     minReadySeconds); Recreate waits for old pods to stop. Status and
//     the Available/Progressing conditions are those kubectl rollout
//     status reads.
//   - replicaset (replicaset*.go): keeps spec.replicas active pods,
//     adopts and releases pods by selector, deletes surplus pods in
//     Kubernetes' order, and tracks expectations so a slow informer never
//     causes double creation.
//   - daemonset (daemonset*.go): one pod per eligible node, created bound,
//     replaced maxUnavailable at a time when the template changes.
//   - garbage collector (gc*.go): deletes dependents of vanished owners
//     and carries out the orphan and foregroundDeletion finalizers.
//   - namespace (namespace.go): empties a terminating namespace, then
//     removes its "kubernetes" finalizer.
//   - scheduler (podscheduler.go, cache.go, pipeline.go, filters.go,
//     scorers.go): binds pending pods through pods/binding. Placement is a
//     pipeline of Filters and Scorers over a read-only State, testable
//     without an API, that explains a failure in Kubernetes' words.
//
// Controllers record Kubernetes-style events (ScalingReplicaSet,
// SuccessfulCreate, SuccessfulDelete, Scheduled, FailedScheduling)
// through client-go's event broadcaster, which never blocks a controller,
// merges repeats into a count and rate-limits each object's events, since
// every event is a Raft write.
package scheduler
