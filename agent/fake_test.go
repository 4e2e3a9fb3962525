package agent

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// fakeRuntime is an in-memory Runtime for unit tests. Its default
// behaviour is a well-behaved runtime; function fields (swarmkit's stub
// controller style) override single calls. Every call is logged.
type fakeRuntime struct {
	clock clock.PassiveClock

	// Overrides; nil means the default behaviour.
	EnsureImageFn func(ctx context.Context, ref string, p PullPolicy) (Image, error)
	StartFn       func(id string) error
	ExecFn        func(ctx context.Context, id string, spec ExecSpec) (int, error)

	mu         sync.Mutex
	images     map[string]Image
	containers map[string]*fakeContainer
	sandboxes  map[string]Sandbox
	subs       []chan ContainerEvent
	calls      []string
}

type fakeContainer struct {
	st   ContainerStatus
	spec ContainerSpec
}

func newFakeRuntime(clk clock.PassiveClock, images ...string) *fakeRuntime {
	f := &fakeRuntime{clock: clk, images: map[string]Image{}, containers: map[string]*fakeContainer{}, sandboxes: map[string]Sandbox{}}
	for _, ref := range images {
		f.images[ref] = Image{Ref: ref, Digest: "sha256:" + strings.Repeat("a", 64)}
	}
	return f
}

var _ Runtime = (*fakeRuntime)(nil)

func fakeID(uid, name string, attempt uint32) string {
	return fmt.Sprintf("%s-%s-%d", uid, name, attempt)
}

func (f *fakeRuntime) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls whose text starts with prefix.
func (f *fakeRuntime) Calls(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeRuntime) emitLocked(ev ContainerEvent) {
	ev.At = f.clock.Now()
	for _, s := range f.subs {
		select {
		case s <- ev:
		default:
		}
	}
}

// ImportImage "imports" the image named by the archive's content.
func (f *fakeRuntime) ImportImage(ctx context.Context, r io.Reader) ([]Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	ref := strings.TrimSpace(string(b))
	img := Image{Ref: ref, Digest: "sha256:" + strings.Repeat("b", 64), Size: int64(len(b))}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = img
	return []Image{img}, nil
}

func (f *fakeRuntime) EnsureImage(ctx context.Context, ref string, p PullPolicy) (Image, error) {
	if f.EnsureImageFn != nil {
		return f.EnsureImageFn(ctx, ref, p)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ensure %s", ref)
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	if p == PullNever {
		return Image{}, fmt.Errorf("%w: %s", ErrImageNotPresent, ref)
	}
	return Image{}, fmt.Errorf("%w: pull %s: registry unreachable", ErrImagePull, ref)
}

func (f *fakeRuntime) ListImages(ctx context.Context) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.images)), nil
}

func (f *fakeRuntime) RemoveImage(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, ref)
	return nil
}

func (f *fakeRuntime) CreateSandbox(ctx context.Context, spec SandboxSpec) (Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sb, ok := f.sandboxes[spec.PodUID]; ok {
		return sb, nil
	}
	f.record("sandbox %s", spec.PodUID)
	sb := Sandbox{PodUID: spec.PodUID, Name: spec.Name, Namespace: spec.Namespace, Hostname: spec.Hostname, CreatedAt: f.clock.Now()}
	f.sandboxes[spec.PodUID] = sb
	return sb, nil
}

func (f *fakeRuntime) RemoveSandbox(ctx context.Context, podUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("rmsandbox %s", podUID)
	delete(f.sandboxes, podUID)
	return nil
}

func (f *fakeRuntime) ListSandboxes(ctx context.Context) ([]Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.sandboxes)), nil
}

func (f *fakeRuntime) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[spec.Image]; !ok {
		return "", fmt.Errorf("%w: %s", ErrImageNotPresent, spec.Image)
	}
	id := fakeID(spec.PodUID, spec.Name, spec.Attempt)
	if c, ok := f.containers[id]; ok {
		if c.st.SpecHash != spec.SpecHash {
			return "", fmt.Errorf("%w: %s", ErrAlreadyExists, id)
		}
		return id, nil
	}
	f.record("create %s/%s/%d", spec.PodName, spec.Name, spec.Attempt)
	f.containers[id] = &fakeContainer{spec: spec, st: ContainerStatus{
		ID: id, PodUID: spec.PodUID, PodName: spec.PodName, PodNamespace: spec.PodNamespace, Name: spec.Name,
		Attempt: spec.Attempt, SpecHash: spec.SpecHash, Image: spec.Image, State: StateCreated,
		CreatedAt: f.clock.Now(), Labels: maps.Clone(spec.Labels), LogPath: "",
	}}
	return id, nil
}

func (f *fakeRuntime) StartContainer(ctx context.Context, id string) error {
	if f.StartFn != nil {
		if err := f.StartFn(id); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if c.st.State != StateCreated {
		return fmt.Errorf("%w: %s started", ErrAlreadyExists, id)
	}
	f.record("start %s", id)
	c.st.State, c.st.StartedAt, c.st.PID = StateRunning, f.clock.Now(), 42
	f.emitLocked(ContainerEvent{Type: EventStarted, ContainerID: id})
	return nil
}

func (f *fakeRuntime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if c.st.State != StateRunning {
		return nil
	}
	f.record("stop %s %s", id, grace)
	f.exitLocked(c, 137, ReasonError)
	return nil
}

// Exit makes a running container exit.
func (f *fakeRuntime) Exit(id string, code int32, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok && c.st.State == StateRunning {
		f.exitLocked(c, code, reason)
	}
}

func (f *fakeRuntime) exitLocked(c *fakeContainer, code int32, reason string) {
	c.st.State, c.st.ExitCode, c.st.Reason, c.st.FinishedAt, c.st.PID = StateExited, code, reason, f.clock.Now(), 0
	f.emitLocked(ContainerEvent{Type: EventExited, ContainerID: c.st.ID, ExitCode: code})
}

// Put adds a container as if an earlier agent had made it.
func (f *fakeRuntime) Put(st ContainerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[st.ID] = &fakeContainer{st: st}
}

func (f *fakeRuntime) RemoveContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[id]; ok {
		f.record("remove %s", id)
		delete(f.containers, id)
	}
	return nil
}

func (f *fakeRuntime) ContainerStatus(ctx context.Context, id string) (ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return ContainerStatus{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return c.st, nil
}

func (f *fakeRuntime) ListContainers(ctx context.Context) ([]ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ContainerStatus
	for _, c := range f.containers {
		out = append(out, c.st)
	}
	return out, nil
}

func (f *fakeRuntime) Exec(ctx context.Context, id string, spec ExecSpec) (int, error) {
	if f.ExecFn != nil {
		return f.ExecFn(ctx, id, spec)
	}
	return 0, nil
}

func (f *fakeRuntime) Events(ctx context.Context) <-chan ContainerEvent {
	ch := make(chan ContainerEvent, 1024)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	ch <- ContainerEvent{Type: EventResync, At: f.clock.Now()}
	f.mu.Unlock()
	out := make(chan ContainerEvent)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (f *fakeRuntime) ReadLogs(ctx context.Context, id string, opts LogOptions, w io.Writer) error {
	_, err := fmt.Fprintf(w, "log of %s previous=%v\n", id, opts.Previous)
	return err
}

func (f *fakeRuntime) RemovePodLogs(ctx context.Context, podNamespace, podName, podUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("rmlogs %s", podUID)
	return nil
}

// Container returns a container's status.
func (f *fakeRuntime) Container(id string) (ContainerStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return ContainerStatus{}, false
	}
	return c.st, true
}

// Spec returns the spec a container was created with.
func (f *fakeRuntime) Spec(id string) (ContainerSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return ContainerSpec{}, false
	}
	return c.spec, true
}
