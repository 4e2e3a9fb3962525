package containerd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent"
)

func TestImages(t *testing.T) {
	_, rt := startEnv(t)
	ctx := ctxT(t, 60*time.Second)

	imgs := importTestImage(t, rt)
	if len(imgs) != 1 || imgs[0].Ref != testImageRef || !strings.HasPrefix(imgs[0].Digest, "sha256:") {
		t.Fatalf("ImportImage = %+v, want one image %s with a digest", imgs, testImageRef)
	}
	if imgs[0].Size <= 0 {
		t.Fatalf("ImportImage size = %d, want > 0", imgs[0].Size)
	}

	listed, err := rt.ListImages(ctx)
	if err != nil || len(listed) != 1 || listed[0] != imgs[0] {
		t.Fatalf("ListImages = %+v, %v; want %+v", listed, err, imgs)
	}

	// Pulls of names below cannot cause network traffic: 127.0.0.1:1
	// refuses connections, and the other cases never pull.
	const refused = "127.0.0.1:1/skiff/missing:v1"
	ensure := []struct {
		name    string
		ref     string
		policy  agent.PullPolicy
		wantErr error
		wantMsg string
	}{
		{name: "present IfNotPresent", ref: testImageRef, policy: agent.PullIfNotPresent},
		{name: "present Never", ref: testImageRef, policy: agent.PullNever},
		{name: "missing Never", ref: "skiff.local/missing", policy: agent.PullNever,
			wantErr: agent.ErrImageNotPresent, wantMsg: "skiff.local/missing:latest"},
		{name: "missing IfNotPresent refused", ref: refused, policy: agent.PullIfNotPresent,
			wantErr: agent.ErrImagePull, wantMsg: "127.0.0.1:1"},
		{name: "Always refused", ref: refused, policy: agent.PullAlways,
			wantErr: agent.ErrImagePull, wantMsg: "connection refused"},
		{name: "invalid name", ref: "Not/Valid", policy: agent.PullIfNotPresent,
			wantErr: agent.ErrInvalidImageName},
		{name: "unknown policy", ref: testImageRef, policy: "Sometimes", wantErr: agent.ErrInvalidSpec},
	}
	for _, tt := range ensure {
		t.Run("EnsureImage "+tt.name, func(t *testing.T) {
			img, err := rt.EnsureImage(ctxT(t, 20*time.Second), tt.ref, tt.policy)
			if tt.wantErr == nil {
				if err != nil || img.Ref != testImageRef {
					t.Fatalf("EnsureImage = %+v, %v; want %s", img, err, testImageRef)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("EnsureImage error = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}

	t.Run("CreateContainer without image", func(t *testing.T) {
		spec := podSpec("noimg", "c", "true")
		spec.Image = "skiff.local/missing"
		_, err := rt.CreateContainer(ctx, spec)
		if !errors.Is(err, agent.ErrImageNotPresent) {
			t.Fatalf("CreateContainer error = %v, want ErrImageNotPresent", err)
		}
	})

	t.Run("RemoveImage", func(t *testing.T) {
		if err := rt.RemoveImage(ctx, testImageRef); err != nil {
			t.Fatalf("RemoveImage: %v", err)
		}
		if err := rt.RemoveImage(ctx, testImageRef); err != nil {
			t.Fatalf("RemoveImage of an absent image: %v", err)
		}
		listed, err := rt.ListImages(ctx)
		if err != nil || len(listed) != 0 {
			t.Fatalf("ListImages after remove = %+v, %v; want none", listed, err)
		}
		if _, err := rt.EnsureImage(ctx, testImageRef, agent.PullNever); !errors.Is(err, agent.ErrImageNotPresent) {
			t.Fatalf("EnsureImage(Never) after remove = %v, want ErrImageNotPresent", err)
		}
	})
}
