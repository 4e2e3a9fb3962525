package containerd

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"

	"github.com/skiffhq/skiff/agent"
)

// unknownExitCode is reported for containers whose process state was lost,
// as CRI implementations do.
const unknownExitCode = 255

// ContainerStatus implements agent.Runtime.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (agent.ContainerStatus, error) {
	ctx = r.nsCtx(ctx)
	info, err := r.client.ContainerService().Get(ctx, id)
	if err != nil {
		return agent.ContainerStatus{}, wrap(err, "container %s", id)
	}
	resp, err := r.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: id})
	if err != nil && !isNotFound(err) {
		return agent.ContainerStatus{}, wrap(err, "task of container %s", id)
	}
	var proc *tasktypes.Process
	if err == nil {
		proc = resp.GetProcess()
	}
	return r.buildStatus(info, proc), nil
}

// ListContainers implements agent.Runtime. It costs two calls to containerd
// however many containers there are.
func (r *Runtime) ListContainers(ctx context.Context) ([]agent.ContainerStatus, error) {
	ctx = r.nsCtx(ctx)
	infos, err := r.client.ContainerService().List(ctx, managedFilter)
	if err != nil {
		return nil, wrap(err, "list containers")
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, wrap(err, "list tasks")
	}
	procs := map[string]*tasktypes.Process{}
	for _, p := range resp.GetTasks() {
		id := p.GetID()
		if id == "" {
			id = p.GetContainerID()
		}
		procs[id] = p
	}
	out := make([]agent.ContainerStatus, 0, len(infos))
	for _, info := range infos {
		out = append(out, r.buildStatus(info, procs[info.ID]))
	}
	slices.SortFunc(out, func(a, b agent.ContainerStatus) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// buildStatus combines container metadata with its task's process state
// (nil when the container has no task).
func (r *Runtime) buildStatus(info containers.Container, proc *tasktypes.Process) agent.ContainerStatus {
	st := statusFromLabels(info.ID, info.Labels)
	st.Image = info.Image
	st.CreatedAt = info.CreatedAt
	switch {
	case proc == nil && st.StartedAt.IsZero():
		st.State = agent.StateCreated
	case proc == nil:
		st.State, st.Reason, st.ExitCode = agent.StateUnknown, agent.ReasonUnknown, unknownExitCode
	default:
		r.fillFromProcess(&st, info.Labels[labelCgroup], proc)
	}
	return st
}

// fillFromProcess sets state, PID, exit code and reason from a task.
func (r *Runtime) fillFromProcess(st *agent.ContainerStatus, cgroup string, proc *tasktypes.Process) {
	switch proc.GetStatus() {
	case tasktypes.Status_CREATED:
		st.State, st.PID = agent.StateCreated, proc.GetPid()
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		st.State, st.PID = agent.StateRunning, proc.GetPid()
	case tasktypes.Status_STOPPED:
		st.State = agent.StateExited
		st.ExitCode = int32(proc.GetExitStatus())
		if ts := proc.GetExitedAt(); ts != nil {
			st.FinishedAt = ts.AsTime()
		}
		switch {
		case st.ExitCode != 0 && r.oomKilled(st.ID, cgroup):
			st.Reason = agent.ReasonOOMKilled
		case st.ExitCode == 0:
			st.Reason = agent.ReasonCompleted
		default:
			st.Reason = agent.ReasonError
		}
	default:
		st.State, st.Reason, st.ExitCode = agent.StateUnknown, agent.ReasonUnknown, unknownExitCode
	}
}

// oomKilled reports whether the container's memory cgroup OOM-killed a
// process. The cgroup outlives the exited process until the task is
// deleted, so its kernel counter answers even after an agent restart; the
// OOM events seen by this process are the fallback.
func (r *Runtime) oomKilled(id, cgroup string) bool {
	if cgroup != "" {
		if n, err := cgroupOOMKills("/sys/fs/cgroup", cgroup); err == nil {
			return n > 0
		}
	}
	r.oomMu.Lock()
	defer r.oomMu.Unlock()
	return r.oomSeen[id]
}

// cgroupOOMKills reads the oom_kill counter of a cgroup under root, from
// memory.events on cgroup v2 or memory.oom_control on cgroup v1.
func cgroupOOMKills(root, cgroup string) (int64, error) {
	file := filepath.Join(root, "memory", cgroup, "memory.oom_control")
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		file = filepath.Join(root, cgroup, "memory.events")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return parseOOMKill(b)
}

// parseOOMKill extracts "oom_kill N" from a memory.events or
// memory.oom_control file.
func parseOOMKill(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, os.ErrNotExist
}

// trackOOM records OOM events while Run runs, for hosts where the cgroup
// counter cannot be read.
func (r *Runtime) trackOOM(ctx context.Context) {
	for ev := range r.Events(ctx) {
		if ev.Type == agent.EventOOM {
			r.oomMu.Lock()
			r.oomSeen[ev.ContainerID] = true
			r.oomMu.Unlock()
		}
	}
}

// forgetOOM drops a removed container from the OOM fallback set.
func (r *Runtime) forgetOOM(id string) {
	r.oomMu.Lock()
	delete(r.oomSeen, id)
	r.oomMu.Unlock()
}
