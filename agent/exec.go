package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	criremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"

	"github.com/skiffhq/skiff/agent/agentapi"
)

// Exec speaks the Kubernetes remotecommand protocols:
//
//   - WebSocket "v5.channel.k8s.io" (what kubectl tries first) is served
//     here on k8s.io/streaming's wsstream: channels 0-2 are stdin, stdout
//     and stderr, 3 carries the final metav1.Status (exit code), 4 terminal
//     resizes, and v5's close signal half-closes stdin.
//   - SPDY v4..v1 (kubectl's fallback) and the older WebSocket protocols
//     are served by the kubelet's own server, k8s.io/cri-streaming's
//     remotecommand.ServeExec.
//
// Both end with the command's exit code on the error channel, so kubectl
// exits with it. TTY sessions follow the client's terminal size.

const (
	// protocolV5 is remotecommand's WebSocket protocol version 5.
	protocolV5 = "v5.channel.k8s.io"
	// streamCreationTimeout bounds how long SPDY clients take to open
	// their streams.
	streamCreationTimeout = 30 * time.Second
)

// serveExec runs a command in a running container.
func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if !t.exists || t.latest.State != StateRunning {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not running", t.container.Name, t.pod.Name)))
		return
	}
	opts, err := criremote.NewOptions(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	cmd := r.URL.Query()[agentapi.ExecCommandParam]
	if len(cmd) == 0 {
		writeStatus(w, apierrors.NewBadRequest("you must specify a command"))
		return
	}
	ex := &executor{a: a, id: t.latest.ID, opts: opts}
	if wsstream.IsWebSocketRequest(r) && offersProtocol(r, protocolV5) {
		ex.serveV5(w, r, cmd)
		return
	}
	criremote.ServeExec(w, r, ex, t.pod.Name, string(t.pod.UID), t.container.Name, cmd, opts,
		a.cfg.StreamIdleTimeout, streamCreationTimeout, criremote.SupportedStreamingProtocols)
}

// offersProtocol reports whether a WebSocket request offers protocol.
func offersProtocol(r *http.Request, protocol string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if strings.TrimSpace(p) == protocol {
				return true
			}
		}
	}
	return false
}

// executor runs exec sessions in one container.
type executor struct {
	a    *Agent
	id   string
	opts *criremote.Options
}

// ExecInContainer implements criremote.Executor. A non-zero exit code
// becomes a utilexec.ExitError, which ServeExec reports as the exit code.
func (e *executor) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader,
	out, errOut io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize, _ time.Duration) error {
	spec := ExecSpec{Cmd: cmd, TTY: tty}
	if resize != nil {
		sizes := make(chan TerminalSize, 1)
		go relayResize(ctx, resize, sizes)
		spec.Resize = sizes
	}
	if e.opts.Stdin && in != nil {
		spec.Stdin = in
	}
	if out != nil {
		spec.Stdout = out
	}
	if errOut != nil {
		spec.Stderr = errOut
	}
	code, err := e.a.rt.Exec(ctx, e.id, spec)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// relayResize passes terminal sizes on until in closes or ctx ends; the
// newest size wins when the runtime is slow to take them.
func relayResize(ctx context.Context, in <-chan criremote.TerminalSize, out chan TerminalSize) {
	defer close(out)
	for {
		select {
		case <-ctx.Done():
			return
		case sz, ok := <-in:
			if !ok {
				return
			}
			sendLatest(out, TerminalSize{Width: sz.Width, Height: sz.Height})
		}
	}
}

// sendLatest puts sz in out (capacity 1), replacing a size not yet taken.
func sendLatest(out chan TerminalSize, sz TerminalSize) {
	for {
		select {
		case out <- sz:
			return
		default:
			select {
			case <-out:
			default:
			}
		}
	}
}

// readResizes decodes the JSON terminal sizes of a v5 resize channel into
// out, closing it at the end of the stream.
func readResizes(r io.Reader, out chan TerminalSize) {
	defer close(out)
	dec := json.NewDecoder(r)
	for {
		var sz struct{ Width, Height uint16 }
		if err := dec.Decode(&sz); err != nil {
			return
		}
		sendLatest(out, TerminalSize{Width: sz.Width, Height: sz.Height})
	}
}

// WebSocket channel numbers of the remotecommand protocol.
const (
	chanStdin = iota
	chanStdout
	chanStderr
	chanError
	chanResize
)

// serveV5 serves an exec session over WebSocket protocol v5.
func (e *executor) serveV5(w http.ResponseWriter, r *http.Request, cmd []string) {
	read := func(on bool) wsstream.ChannelType { return pick(on, wsstream.ReadChannel) }
	write := func(on bool) wsstream.ChannelType { return pick(on, wsstream.WriteChannel) }
	channels := []wsstream.ChannelType{read(e.opts.Stdin), write(e.opts.Stdout), write(e.opts.Stderr),
		wsstream.WriteChannel, wsstream.ReadChannel}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{protocolV5: {Binary: true, Channels: channels}})
	conn.SetIdleTimeout(e.a.cfg.StreamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		e.a.log.Warn("exec: websocket upgrade", "err", err)
		return
	}
	defer conn.Close()
	// An empty message on the first output channel tells the client the
	// session is up, as the kubelet does.
	switch {
	case e.opts.Stdout:
		_, _ = streams[chanStdout].Write(nil)
	case e.opts.Stderr:
		_, _ = streams[chanStderr].Write(nil)
	default:
		_, _ = streams[chanError].Write(nil)
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The resize channel ends when the connection does: stop the command.
	sizes := make(chan TerminalSize, 1)
	go func() {
		readResizes(streams[chanResize], sizes)
		cancel()
	}()
	spec := ExecSpec{Cmd: cmd, TTY: e.opts.TTY}
	if e.opts.TTY {
		spec.Resize = sizes
	}
	if e.opts.Stdin {
		spec.Stdin = streams[chanStdin]
	}
	if e.opts.Stdout {
		spec.Stdout = streams[chanStdout]
	}
	if e.opts.Stderr {
		spec.Stderr = streams[chanStderr]
	}
	code, err := e.a.rt.Exec(ctx, e.id, spec)
	b, _ := json.Marshal(execStatus(code, err))
	_, _ = streams[chanError].Write(b)
	// Closing the connection (deferred) ends the client's streams. The
	// client waits for that, so wsstream's reader logs the close as a
	// receive error through klog; the kubelet's sessions do the same.
}

func pick(on bool, t wsstream.ChannelType) wsstream.ChannelType {
	if on {
		return t
	}
	return wsstream.IgnoreChannel
}

// execStatus is the final status of an exec session, in the form client-go
// decodes into an exit code.
func execStatus(code int, err error) *metav1.Status {
	switch {
	case err != nil:
		return &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError,
			Code: http.StatusInternalServerError, Message: "error executing command in container: " + err.Error()}
	case code != 0:
		return &metav1.Status{Status: metav1.StatusFailure, Reason: criremote.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: criremote.ExitCodeCauseType, Message: strconv.Itoa(code)}}}}
	}
	return &metav1.Status{Status: metav1.StatusSuccess}
}
