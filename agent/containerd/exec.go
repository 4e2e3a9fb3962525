package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/skiffhq/skiff/agent"
)

// Exec implements agent.Runtime. The process inherits the container's
// user, working directory, capabilities and environment.
func (r *Runtime) Exec(ctx context.Context, id string, spec agent.ExecSpec) (int, error) {
	if len(spec.Cmd) == 0 {
		return -1, fmt.Errorf("%w: exec needs a command", agent.ErrInvalidSpec)
	}
	ctx = r.nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, wrapCtx(ctx, err, "load container %s", id)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return -1, wrapCtx(ctx, err, "container %s is not running", id)
	}
	ospec, err := c.Spec(ctx)
	if err != nil {
		return -1, wrapCtx(ctx, err, "spec of container %s", id)
	}
	pspec := *ospec.Process
	pspec.Args = spec.Cmd
	pspec.Terminal = spec.TTY
	pspec.Env = mergeEnv(pspec.Env, envList(spec.Env))

	creator, stdin := r.execIO(spec)
	execID := "exec-" + randomHex(8)
	proc, err := task.Exec(ctx, execID, &pspec, creator)
	if err != nil {
		return -1, wrapCtx(ctx, err, "exec in container %s", id)
	}
	// live lasts as long as the exec (whatever ctx does meanwhile): the
	// resize and stdin helpers use it. Clean-ups get their own deadline.
	live, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	cleanup := func(fn func(context.Context)) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		fn(cctx)
	}
	defer cleanup(func(c context.Context) { _, _ = proc.Delete(c, client.WithProcessKill) })
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return -1, wrapCtx(ctx, err, "wait for exec in %s", id)
	}
	if err := proc.Start(ctx); err != nil {
		return -1, wrapCtx(ctx, err, "start exec in %s", id)
	}
	if spec.TTY && spec.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-spec.Resize:
					if !ok {
						return
					}
					if err := proc.Resize(live, uint32(sz.Width), uint32(sz.Height)); err != nil {
						r.log.Debug("exec: resize", "container", id, "err", err)
					}
				case <-live.Done():
					return
				}
			}
		}()
	}
	if stdin != nil {
		go func() {
			select {
			case <-stdin.eof:
				_ = proc.CloseIO(live, client.WithStdinCloser)
			case <-live.Done():
			}
		}()
	}
	select {
	case st := <-statusC:
		code, _, err := st.Result()
		proc.IO().Wait() // all output copied
		if err != nil {
			return -1, wrapCtx(ctx, err, "exec in %s", id)
		}
		return int(code), nil
	case <-ctx.Done():
		cleanup(func(c context.Context) { _ = proc.Kill(c, syscall.SIGKILL) })
		return -1, ctx.Err()
	}
}

// execIO returns the FIFO-based IO creator for an exec and, when it has
// stdin, the reader that reports its EOF.
func (r *Runtime) execIO(spec agent.ExecSpec) (cio.Creator, *eofReader) {
	stdout, stderr := spec.Stdout, spec.Stderr
	if sameWriter(stdout, stderr) {
		// Two copy goroutines would write (or ReadFrom) one writer at once.
		sw := &syncWriter{w: stdout}
		stdout, stderr = sw, sw
	}
	var stdin *eofReader
	var in io.Reader // a nil *eofReader must stay a nil interface
	if spec.Stdin != nil {
		stdin = newEOFReader(spec.Stdin)
		in = stdin
	}
	opts := []cio.Opt{cio.WithFIFODir(r.cfg.fifoDir()), cio.WithStreams(in, stdout, stderr)}
	if spec.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	return cio.NewCreator(opts...), stdin
}

// sameWriter reports whether a and b are the same writer, without
// panicking on writers of uncomparable types.
func sameWriter(a, b io.Writer) bool {
	if a == nil || b == nil || !reflect.TypeOf(a).Comparable() || !reflect.TypeOf(b).Comparable() {
		return false
	}
	return a == b
}

// mergeEnv returns base with the KEY=VALUE entries of extra replacing
// those of the same key, and the rest appended.
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// eofReader closes eof when the wrapped reader is exhausted, so that the
// process's stdin can be closed (the FIFO alone does not signal EOF).
type eofReader struct {
	r    io.Reader
	once sync.Once
	eof  chan struct{}
}

func newEOFReader(r io.Reader) *eofReader { return &eofReader{r: r, eof: make(chan struct{})} }

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// syncWriter serialises writes from the stdout and stderr copiers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
