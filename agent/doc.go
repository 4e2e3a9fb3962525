// Package agent is skiff's node agent, the kubelet of a node: it runs the
// pods the API binds to the node on a Runtime (containerd in production,
// see agent/containerd), reports their status and the Node, and serves
// logs, exec and image management over HTTP.
//
// # Using it
//
//	rt, _ := containerd.New(rcfg, log) // and go rt.Run(ctx); rt.WaitReady(ctx)
//	cfg := agent.DefaultConfig()
//	cfg.NodeName, cfg.DataDir = "node1", "/var/lib/skiff/agent"
//	cfg.RESTConfig = inproc.RESTConfig("skiff-agent") // or a remote one
//	cfg.Runtime, cfg.Logger = rt, log
//	a, err := agent.New(cfg)
//	err = a.Run(ctx) // until ctx ends; containers keep running
//
// The caller owns the Runtime: the agent neither starts nor stops it, and
// when Run returns every container keeps running, to be adopted by the
// next Run (even after kill -9 of the agent).
//
// # Moving parts
//
//	Runtime.Events --> container cache ---+     pod informer (spec.nodeName=NODE)
//	(exit, oom; resync: re-list)          |         | add / update / delete
//	                                      v         v
//	probe workers --result changed--> pod workers (one goroutine per pod UID)
//	                                      | sync: plan (pure) -> kill/start -> status
//	                                      v
//	                       status manager (coalesced, paced UpdateStatus)
//
// Every wake-up of a pod's worker (pod change, container event, probe
// result, back-off expiry) runs the same sync: gather what the runtime
// has for the pod, decide with computeActions (plan.go, no I/O), act, and
// compute the status again. Decisions are derived from the runtime's
// records, not from memory: container IDs are a function of (pod UID,
// container name, attempt), and labels carry the spec hash and the
// restart streak, so a restarted agent adopts running containers (same
// IDs, restartCount = attempt) and resumes back-off where it was.
//
// # A pod's lifecycle
//
//	bound to this node
//	  |
//	  v
//	sandbox: pinned net, ipc and uts namespaces (CNI will use the netns)
//	  |
//	  v
//	init containers, one at a time, in order
//	  image -> create -> start -> exited 0 -> next init container
//	  exited != 0 -> restart with back-off        (policy Never: Failed)
//	  |
//	  v all succeeded: Initialized
//	containers, all at once
//	  image ------> create -> start -> running ---------------> exited
//	    |                                |   |                    |
//	    | absent, pull fails             |   | liveness or        | restart policy:
//	    v                                |   | startup probe      | Always, or
//	  ErrImagePull, then                 |   | fails: stop it ----+ OnFailure and
//	  ImagePullBackOff; retried          |   |                    | code != 0
//	  with back-off                      |   v                    v
//	                                     |  Ready while the     restart after 0, 10s,
//	                                     |  readiness probe     20s, ... 5min (waiting:
//	                                     |  passes              CrashLoopBackOff), else
//	                                     |                      stay exited:
//	                                     |                      Succeeded / Failed
//	                                     v
//	deletionTimestamp set, or gone from the API
//	  stop every container: stop signal, SIGKILL after the grace period
//	  remove containers and snapshots, the sandbox, the log files
//	  delete the pod object (gracePeriodSeconds=0, UID precondition)
//
// # Status
//
// Phase follows the kubelet's rules; conditions are PodScheduled (kept),
// Initialized, ContainersReady and Ready; containerStatuses carry state,
// lastState, restartCount, ready, started, image, imageID and
// containerID "containerd://<id>". The status manager writes only the
// latest status of a pod, at most once per StatusMinInterval (a change to
// a terminal phase at once), never an unchanged one, and retries
// conflicts on the fresh object.
//
// # Probes
//
// Liveness, readiness and startup probes (exec, httpGet, tcpSocket) follow
// the Kubernetes timing fields. There is no pod IP before CNI, so HTTP and
// TCP probes connect to 127.0.0.1 (or the probe's host, which must be an
// IP) from a goroutine locked to an OS thread that has entered the pod's
// network namespace (netns_linux.go); exec probes run through the
// runtime.
//
// # HTTP
//
// The agent serves the kubelet-style endpoints described in package
// agentapi; the API server proxies pods/log, pods/exec and
// nodes/{name}/proxy to them, and ImageClient wraps the image ones.
package agent
