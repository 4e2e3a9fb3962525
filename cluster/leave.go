package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The control socket (DATA/control.sock, owner-only) takes local
// administrative requests such as leave; being root on the machine is the
// credential.
func controlSocket(dataDir string) string { return filepath.Join(dataDir, "control.sock") }

// serveControl serves the control socket until ctx ends.
func (d *Daemon) serveControl(ctx context.Context) error {
	path := controlSocket(d.cfg.Secure.DataDir)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("cluster: control socket: %w", err)
	}
	os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /leave", func(w http.ResponseWriter, r *http.Request) {
		d.leaveOnce()
		// The answer must be on the wire before the daemon stops, or the
		// caller sees EOF instead of success.
		body := []byte("left\n")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go d.stop()
	})
	hs := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		// Shutdown lets an answer in flight finish; Close would cut it.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}()
	err = hs.Serve(ln)
	os.Remove(path)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// RequestLeave asks the daemon of the node whose data dir this is to leave
// the cluster for good and stop.
func RequestLeave(ctx context.Context, dataDir string) error {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", controlSocket(dataDir))
		},
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://skiff/leave", nil)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the local daemon through %s: %w", controlSocket(dataDir), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the daemon refused to leave (HTTP %d): %s", resp.StatusCode, body)
	}
	return nil
}
