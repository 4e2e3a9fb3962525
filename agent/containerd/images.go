package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"

	"github.com/skiffhq/skiff/agent"
)

// NormalizeRef returns the canonical form of an image reference, like
// Kubernetes and docker: "busybox" -> "docker.io/library/busybox:latest".
// Errors wrap agent.ErrInvalidImageName.
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", agent.ErrInvalidImageName, ref, err)
	}
	return named.String(), nil
}

// ImportImage implements agent.Runtime.
func (r *Runtime) ImportImage(ctx context.Context, rd io.Reader) ([]agent.Image, error) {
	ctx = r.nsCtx(ctx)
	imported, err := r.client.Import(ctx, rd,
		client.WithImageRefTranslator(ociRefName),
		client.WithImportCompression())
	if err != nil {
		return nil, wrap(err, "import image archive")
	}
	if len(imported) == 0 {
		return nil, fmt.Errorf("%w: the archive names no image (annotation %s or %s)",
			agent.ErrInvalidSpec, images.AnnotationImageName, "org.opencontainers.image.ref.name")
	}
	var out []agent.Image
	for _, rec := range imported {
		rec, err := r.renameNormalized(ctx, rec)
		if err != nil {
			return out, err
		}
		img := client.NewImage(r.client, rec)
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return out, wrap(err, "unpack image %s", rec.Name)
		}
		out = append(out, r.imageInfo(ctx, img))
		r.log.Info("imported image", "ref", rec.Name, "digest", rec.Target.Digest)
	}
	return out, nil
}

// ociRefName turns an org.opencontainers.image.ref.name annotation into an
// image name when it is a reference. A bare tag ("latest", "1.36") names
// nothing: tags contain neither "/" nor ":", references with a repository
// and a tag or a domain do.
func ociRefName(name string) string {
	if !strings.ContainsAny(name, "/:") {
		return ""
	}
	n, err := NormalizeRef(name)
	if err != nil {
		return ""
	}
	return n
}

// renameNormalized stores an imported image under its normalised name, so
// that "busybox" imported from a docker archive is found as
// docker.io/library/busybox:latest.
func (r *Runtime) renameNormalized(ctx context.Context, rec images.Image) (images.Image, error) {
	name, err := NormalizeRef(rec.Name)
	if err != nil || name == rec.Name {
		return rec, nil
	}
	is := r.client.ImageService()
	rec2 := images.Image{Name: name, Target: rec.Target, Labels: rec.Labels}
	created, err := is.Update(ctx, rec2, "target")
	if isNotFound(err) {
		created, err = is.Create(ctx, rec2)
	}
	if err != nil {
		return rec, wrap(err, "name image %s", name)
	}
	if err := is.Delete(ctx, rec.Name); err != nil && !isNotFound(err) {
		return created, wrap(err, "drop unnormalised name %s", rec.Name)
	}
	return created, nil
}

// imageInfo converts a client image.
func (r *Runtime) imageInfo(ctx context.Context, img client.Image) agent.Image {
	size, err := img.Size(ctx)
	if err != nil {
		r.log.Debug("image size", "ref", img.Name(), "err", err)
	}
	return agent.Image{Ref: img.Name(), Digest: img.Target().Digest.String(), Size: size}
}

// ListImages implements agent.Runtime.
func (r *Runtime) ListImages(ctx context.Context) ([]agent.Image, error) {
	ctx = r.nsCtx(ctx)
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, wrap(err, "list images")
	}
	out := make([]agent.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, r.imageInfo(ctx, img))
	}
	slices.SortFunc(out, func(a, b agent.Image) int {
		switch {
		case a.Ref < b.Ref:
			return -1
		case a.Ref > b.Ref:
			return 1
		}
		return 0
	})
	return out, nil
}

// RemoveImage implements agent.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	name, err := NormalizeRef(ref)
	if err != nil {
		return err
	}
	err = r.client.ImageService().Delete(r.nsCtx(ctx), name, images.SynchronousDelete())
	if err != nil && !isNotFound(err) {
		return wrap(err, "remove image %s", name)
	}
	return nil
}

// EnsureImage implements agent.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy agent.PullPolicy) (agent.Image, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return agent.Image{}, err
	}
	ctx = r.nsCtx(ctx)
	img, err := r.client.GetImage(ctx, name)
	present := err == nil
	if err != nil && !isNotFound(err) {
		return agent.Image{}, wrap(err, "look up image %s", name)
	}
	switch policy {
	case agent.PullNever, agent.PullIfNotPresent, "":
		if present {
			if err := r.ensureUnpacked(ctx, img); err != nil {
				return agent.Image{}, err
			}
			return r.imageInfo(ctx, img), nil
		}
		if policy == agent.PullNever {
			return agent.Image{}, fmt.Errorf("%w: %s is not on this node and the pull policy is Never",
				agent.ErrImageNotPresent, name)
		}
	case agent.PullAlways:
	default:
		return agent.Image{}, fmt.Errorf("%w: unknown pull policy %q", agent.ErrInvalidSpec, policy)
	}
	return r.pull(ctx, name)
}

// ensureUnpacked unpacks img for the snapshotter when it is not yet.
func (r *Runtime) ensureUnpacked(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err == nil && ok {
		return nil
	}
	if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
		return wrap(err, "unpack image %s", img.Name())
	}
	return nil
}

// pull fetches and unpacks name from its registry.
func (r *Runtime) pull(ctx context.Context, name string) (agent.Image, error) {
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(r.plainHTTP)),
	})
	r.log.Info("pulling image", "ref", name)
	img, err := r.client.Pull(ctx, name,
		client.WithPullUnpack,
		client.WithPullSnapshotter(r.cfg.Snapshotter),
		client.WithResolver(resolver))
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return agent.Image{}, fmt.Errorf("%w: pull %s: %w", agent.ErrImagePull, name, ctx.Err())
		}
		return agent.Image{}, fmt.Errorf("%w: pull %s: %w", agent.ErrImagePull, name, err)
	}
	return r.imageInfo(ctx, img), nil
}

// plainHTTP reports whether host is pulled from over HTTP: loopback hosts and
// Config.InsecureRegistries.
func (r *Runtime) plainHTTP(host string) (bool, error) {
	if slices.Contains(r.cfg.InsecureRegistries, host) {
		return true, nil
	}
	return docker.MatchLocalhost(host)
}
