package containerd

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/moby/sys/signal"

	"github.com/skiffhq/skiff/agent"
)

// CreateContainer implements agent.Runtime.
func (r *Runtime) CreateContainer(ctx context.Context, spec agent.ContainerSpec) (string, error) {
	if err := validateContainerSpec(spec); err != nil {
		return "", err
	}
	ref, err := NormalizeRef(spec.Image)
	if err != nil {
		return "", err
	}
	ctx = r.nsCtx(ctx)
	img, err := r.client.GetImage(ctx, ref)
	if isNotFound(err) {
		return "", fmt.Errorf("%w: %s (call EnsureImage first)", agent.ErrImageNotPresent, ref)
	}
	if err != nil {
		return "", wrap(err, "look up image %s", ref)
	}
	if err := r.ensureUnpacked(ctx, img); err != nil {
		return "", err
	}
	ispec, err := img.Spec(ctx)
	if err != nil {
		return "", wrap(err, "read image config of %s", ref)
	}
	argv, err := resolveArgs(ispec.Config, spec.Command, spec.Args)
	if err != nil {
		return "", err
	}
	id := containerID(spec.PodUID, spec.Name, spec.Attempt)
	hash := spec.SpecHash
	if hash == "" {
		hash = specHash(spec)
	}
	logPath := spec.LogPath
	if logPath == "" {
		logPath = r.LogPath(spec.PodNamespace, spec.PodName, spec.PodUID, spec.Name, spec.Attempt)
	}
	cgroup := path.Join(r.cfg.cgroupParent(), id)
	stopSignal := ispec.Config.StopSignal
	if stopSignal == "" {
		stopSignal = "SIGTERM"
	}
	labels := containerLabels(spec, hash, logPath, cgroup, stopSignal)
	_, err = r.client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter(r.cfg.Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithRuntime(r.cfg.RuntimeName, nil),
		client.WithContainerLabels(labels),
		client.WithNewSpec(specOpts(img, spec, argv, cgroup)...))
	if isAlreadyExists(err) {
		return r.existingContainer(ctx, id, hash)
	}
	if err != nil {
		return "", wrap(err, "create container %s for %s/%s", spec.Name, spec.PodNamespace, spec.PodName)
	}
	r.log.Info("created container", "id", id, "pod", spec.PodNamespace+"/"+spec.PodName,
		"container", spec.Name, "attempt", spec.Attempt)
	return id, nil
}

// existingContainer resolves a create that hit an existing ID (or a
// leftover snapshot of a create that crashed half-way).
func (r *Runtime) existingContainer(ctx context.Context, id, hash string) (string, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if isNotFound(err) {
		// Only the snapshot is left: drop it so that a retry succeeds.
		if rmErr := r.client.SnapshotService(r.cfg.Snapshotter).Remove(ctx, id); rmErr != nil && !isNotFound(rmErr) {
			return "", wrap(rmErr, "remove leftover snapshot %s", id)
		}
		return "", fmt.Errorf("%w: leftover snapshot of container %s removed, retry", agent.ErrUnavailable, id)
	}
	if err != nil {
		return "", wrap(err, "load container %s", id)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return "", wrap(err, "labels of container %s", id)
	}
	if labels[labelSpecHash] != hash {
		return "", fmt.Errorf("%w: container %s exists with spec hash %s, not %s",
			agent.ErrAlreadyExists, id, labels[labelSpecHash], hash)
	}
	return id, nil
}

// StartContainer implements agent.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	ctx = r.nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap(err, "load container %s", id)
	}
	task, err := c.Task(ctx, nil)
	if err == nil {
		st, err := task.Status(ctx)
		if err != nil {
			return wrap(err, "status of container %s", id)
		}
		if st.Status != client.Created {
			return fmt.Errorf("%w: container %s was already started (%s)", agent.ErrAlreadyExists, id, st.Status)
		}
		return wrap(task.Start(ctx), "start container %s", id)
	}
	if !isNotFound(err) {
		return wrap(err, "task of container %s", id)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return wrap(err, "labels of container %s", id)
	}
	logPath := labels[labelLogPath]
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("create log dir for %s: %w", id, err)
	}
	// Record the start before it happens: a crash after Start must not leave
	// a running container without StartedAt.
	startedAt := r.now().UTC().Format(time.RFC3339Nano)
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: startedAt}); err != nil {
		return wrap(err, "record start of %s", id)
	}
	// The shim itself appends stdout+stderr to the log file, so logging goes
	// on while the agent is down.
	task, err = c.NewTask(ctx, shimLogFile(logPath))
	if err == nil {
		err = task.Start(ctx)
		if err != nil {
			_, _ = task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		}
	}
	if err != nil {
		_, _ = c.SetLabels(context.WithoutCancel(ctx), map[string]string{labelStartedAt: ""})
		return wrap(err, "start container %s", id)
	}
	r.log.Info("started container", "id", id, "pid", task.Pid())
	return nil
}

// StopContainer implements agent.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap(err, "load container %s", id)
	}
	task, err := c.Task(ctx, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "task of container %s", id)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return wrap(err, "status of container %s", id)
	}
	if st.Status != client.Running && st.Status != client.Paused && st.Status != client.Pausing {
		return nil
	}
	// Wait before signalling, or the exit could be missed.
	exitC, err := task.Wait(ctx)
	if err != nil {
		return wrap(err, "wait for container %s", id)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return wrap(err, "labels of container %s", id)
	}
	sig, err := signal.ParseSignal(labels[labelStopSignal])
	if err != nil {
		sig = syscall.SIGTERM
	}
	if err := task.Kill(ctx, sig); err != nil && !isNotFound(err) {
		return wrap(err, "signal container %s", id)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exitC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	r.log.Info("grace period over, killing container", "id", id, "grace", grace)
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !isNotFound(err) {
		return wrap(err, "kill container %s", id)
	}
	select {
	case <-exitC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer implements agent.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctx = r.nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "load container %s", id)
	}
	task, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !isNotFound(err) {
			return wrap(err, "delete task of %s", id)
		}
	case !isNotFound(err):
		return wrap(err, "task of container %s", id)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !isNotFound(err) {
		return wrap(err, "delete container %s", id)
	}
	r.forgetOOM(id)
	r.log.Info("removed container", "id", id)
	return nil
}
