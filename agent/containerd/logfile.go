package containerd

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/cio"
)

// shimLogFile makes the shim append a container's stdout and stderr to the
// file at path.
//
// containerd's cio.LogFile names the same file for both streams, and the
// runc shim then hands one descriptor to its two copy loops; the stdout loop
// closes it at EOF, so whatever stderr still has to copy is lost (a process
// that closes its stdout early, or writes to stderr as it exits, loses its
// stderr). Naming the file differently for stderr ("dir/./name", a plain
// path, which the shim treats as a file it opens itself) gives each stream
// its own O_APPEND descriptor on the same file.
func shimLogFile(path string) cio.Creator {
	return func(string) (cio.IO, error) {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("log path %q must be absolute", path)
		}
		path = filepath.Clean(path)
		// The shim opens both names without O_CREATE.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("create log file: %w", err)
		}
		f.Close()
		stderr := filepath.Dir(path) + string(filepath.Separator) + "." + string(filepath.Separator) + filepath.Base(path)
		return logFiles{cio.Config{Stdout: path, Stderr: stderr}}, nil
	}
}

// logFiles is a cio.IO whose copying happens in the shim: nothing to wait
// for or close on this side.
type logFiles struct{ cfg cio.Config }

func (l logFiles) Config() cio.Config { return l.cfg }
func (logFiles) Cancel()              {}
func (logFiles) Wait()                {}
func (logFiles) Close() error         { return nil }
