package containerd

import (
	"context"
	"strings"

	"github.com/skiffhq/skiff/agent"
)

var _ agent.RuntimeVersioner = (*Runtime)(nil)

// RuntimeVersion implements agent.RuntimeVersioner: "containerd://" and
// the daemon's version, e.g. "containerd://1.6.20". A distribution's
// packaging suffix (Debian's "1.6.20~ds1") is dropped.
func (r *Runtime) RuntimeVersion(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.nsCtx(ctx))
	if err != nil {
		return "", wrap(err, "containerd version")
	}
	version, _, _ := strings.Cut(v.Version, "~")
	return "containerd://" + strings.TrimPrefix(version, "v"), nil
}
