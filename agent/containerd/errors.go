package containerd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/agent"
)

// wrap annotates a containerd error with what was being done and with the
// agent sentinel callers branch on (not found, exists, unavailable).
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	native := toNative(err)
	if s := sentinelFor(native); s != nil {
		return fmt.Errorf("%s: %w: %w", msg, s, native)
	}
	return fmt.Errorf("%s: %w", msg, native)
}

// wrapCtx is wrap for calls made with ctx: once ctx has ended, the error is
// the context's own (containerd may report an expired deadline as Unknown,
// relayed from the shim), so callers can branch on context.DeadlineExceeded.
func wrapCtx(ctx context.Context, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if cerr := ctxEnded(ctx); cerr != nil {
		return fmt.Errorf("%s: %w (%v)", fmt.Sprintf(format, args...), cerr, toNative(err))
	}
	return wrap(err, format, args...)
}

// ctxEnded is ctx.Err(), or DeadlineExceeded once the deadline has passed
// even if ctx's timer has not fired yet: containerd's side of a call can
// give up (and answer) a moment before the caller's timer runs.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// sentinelFor maps a containerd error class to an agent sentinel.
func sentinelFor(err error) error {
	switch {
	case errdefs.IsNotFound(err):
		return agent.ErrNotFound
	case errdefs.IsAlreadyExists(err):
		return agent.ErrAlreadyExists
	case errdefs.IsUnavailable(err) && !errors.Is(err, context.DeadlineExceeded):
		return agent.ErrUnavailable
	}
	return nil
}

// toNative converts a raw gRPC status error (from the raw service clients)
// into containerd's errdefs classes; other errors pass unchanged.
func toNative(err error) error {
	if _, ok := status.FromError(err); ok && err != nil {
		return errgrpc.ToNative(err)
	}
	return err
}

// isNotFound reports whether err (possibly a gRPC status) means "not found".
func isNotFound(err error) bool {
	return err != nil && errdefs.IsNotFound(toNative(err))
}

// isAlreadyExists reports whether err means "already exists".
func isAlreadyExists(err error) bool {
	return err != nil && errdefs.IsAlreadyExists(toNative(err))
}
