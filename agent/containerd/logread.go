package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// errLimitReached stops a log copy once LimitBytes were written.
var errLimitReached = errors.New("log byte limit reached")

// tailChunk is how much TailLog reads at a time while scanning backwards.
const tailChunk = 32 << 10

// TailLog writes the last n lines of the file at path to w (the whole file
// when n <= 0) and returns the offset it read up to, for FollowLog. A
// missing file reads as empty.
func TailLog(path string, n int, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	start := int64(0)
	if n > 0 {
		if start, err = tailStart(f, size, n); err != nil {
			return 0, fmt.Errorf("tail %s: %w", path, err)
		}
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, start, size-start)); err != nil {
		return 0, err
	}
	return size, nil
}

// tailStart returns the offset where the last n lines of f[0:size] begin.
// A final newline ends the last line rather than starting a new one.
func tailStart(f io.ReaderAt, size int64, n int) (int64, error) {
	buf := make([]byte, tailChunk)
	end := size
	seen := 0
	for end > 0 {
		chunk := min(int64(len(buf)), end)
		b := buf[:chunk]
		if _, err := f.ReadAt(b, end-chunk); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			pos := end - chunk + int64(i)
			if b[i] != '\n' || pos == size-1 {
				continue
			}
			seen++
			if seen == n {
				return pos + 1, nil
			}
		}
		end -= chunk
	}
	return 0, nil
}

// FollowLog writes what is appended to the file at path from offset off
// on, polling every interval, until ctx ends or running reports false (then
// it writes what is left and returns nil). A truncated file (rotation) is
// read again from its start.
func FollowLog(ctx context.Context, path string, off int64, w io.Writer, interval time.Duration, running func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		alive := running()
		var err error
		if off, err = copyNew(path, off, w); err != nil {
			return err
		}
		if !alive {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// copyNew writes path[off:] to w and returns the new offset.
func copyNew(path string, off int64, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return off, nil
	}
	if err != nil {
		return off, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return off, err
	}
	if st.Size() < off {
		off = 0 // truncated by rotation
	}
	n, err := io.Copy(w, io.NewSectionReader(f, off, st.Size()-off))
	return off + n, err
}

// limitWriter passes through at most left bytes, then fails with
// errLimitReached.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimitReached
	}
	cut := p
	if int64(len(cut)) > l.left {
		cut = cut[:l.left]
	}
	n, err := l.w.Write(cut)
	l.left -= int64(n)
	if err == nil && n < len(p) {
		err = errLimitReached
	}
	return n, err
}
