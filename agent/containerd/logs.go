package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skiffhq/skiff/agent"
)

// Log layout (see docs/runtime.md):
//
//	DataDir/logs/<podNamespace>_<podName>_<podUID>/<container>/<attempt>.log
//	DataDir/logs/<podNamespace>_<podName>_<podUID>/<container>/<attempt>.log.1
//
// The shim appends raw stdout+stderr (interleaved, no timestamps) to the
// .log file with O_APPEND, so a copy + truncate rotation loses nothing but
// the bytes written between the copy and the truncate.

// podLogDir is the directory of one pod's logs.
func (r *Runtime) podLogDir(podNamespace, podName, podUID string) string {
	return filepath.Join(r.cfg.logDir(), podNamespace+"_"+podName+"_"+podUID)
}

// LogPath returns the default log file of a container attempt.
func (r *Runtime) LogPath(podNamespace, podName, podUID, container string, attempt uint32) string {
	return filepath.Join(r.podLogDir(podNamespace, podName, podUID), container,
		strconv.FormatUint(uint64(attempt), 10)+".log")
}

// RemovePodLogs implements agent.Runtime.
func (r *Runtime) RemovePodLogs(ctx context.Context, podNamespace, podName, podUID string) error {
	if strings.ContainsAny(podNamespace+podName+podUID, "/\x00") || podUID == "" {
		return fmt.Errorf("%w: bad pod identity %q/%q/%q", agent.ErrInvalidSpec, podNamespace, podName, podUID)
	}
	if err := os.RemoveAll(r.podLogDir(podNamespace, podName, podUID)); err != nil {
		return fmt.Errorf("remove pod logs: %w", err)
	}
	return nil
}

// rotateLoop calls RotateLogs every LogRotateInterval until ctx ends.
func (r *Runtime) rotateLoop(ctx context.Context) {
	if r.cfg.LogRotateInterval <= 0 || r.cfg.LogMaxBytes <= 0 {
		return
	}
	t := time.NewTicker(r.cfg.LogRotateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.RotateLogs(ctx); err != nil {
				r.log.Warn("log rotation", "err", err)
			}
		}
	}
}

// RotateLogs rotates every container log under the log directory that is
// larger than LogMaxBytes: it is copied to "<file>.1" (replacing the older
// one) and truncated in place, which works because the shim writes with
// O_APPEND. Run calls it periodically.
func (r *Runtime) RotateLogs(ctx context.Context) error {
	if r.cfg.LogMaxBytes <= 0 {
		return nil
	}
	var errs []error
	err := filepath.WalkDir(r.cfg.logDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		info, err := d.Info()
		if err == nil && info.Size() > r.cfg.LogMaxBytes {
			errs = append(errs, copyTruncate(p))
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// copyTruncate copies path to path.1 and truncates path.
func copyTruncate(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		return err
	}
	return os.Truncate(path, 0)
}

// ReadLogs implements agent.Runtime.
func (r *Runtime) ReadLogs(ctx context.Context, id string, opts agent.LogOptions, w io.Writer) error {
	st, err := r.ContainerStatus(ctx, id)
	if err != nil {
		return err
	}
	path := st.LogPath
	if opts.Previous {
		if path, err = PreviousLogPath(st.LogPath); err != nil {
			return err
		}
	}
	if opts.LimitBytes > 0 {
		w = &limitWriter{w: w, left: opts.LimitBytes}
	}
	off, err := TailLog(path, opts.TailLines, w)
	if errors.Is(err, errLimitReached) {
		return nil
	}
	if err != nil || !opts.Follow || opts.Previous {
		return err
	}
	running := func() bool {
		s, err := r.ContainerStatus(ctx, id)
		return err == nil && (s.State == agent.StateRunning || s.State == agent.StateCreated)
	}
	err = FollowLog(ctx, path, off, w, r.cfg.LogFollowInterval, running)
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}

// PreviousLogPath returns the log file of the latest attempt before the one
// that logs to current (<dir>/<attempt>.log). Errors wrap agent.ErrNotFound
// when there is none.
func PreviousLogPath(current string) (string, error) {
	dir := filepath.Dir(current)
	cur, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(current), ".log"), 10, 32)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not an <attempt>.log file", agent.ErrNotFound, current)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	best, found := uint64(0), false
	for _, e := range entries {
		n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".log"), 10, 32)
		if err != nil || !strings.HasSuffix(e.Name(), ".log") || n >= cur {
			continue
		}
		if !found || n > best {
			best, found = n, true
		}
	}
	if !found {
		return "", fmt.Errorf("%w: no log of an attempt before %d in %s", agent.ErrNotFound, cur, dir)
	}
	return filepath.Join(dir, strconv.FormatUint(best, 10)+".log"), nil
}
