package agent

import (
	"context"
	"sync"
)

// imageIDs remembers the digest of every image the agent has seen, to
// report containers' imageID. Safe for concurrent use.
type imageIDs struct {
	mu    sync.Mutex
	byRef map[string]string
}

// set records an image.
func (m *imageIDs) set(img Image) {
	m.mu.Lock()
	m.byRef[img.Ref] = img.Digest
	m.mu.Unlock()
}

// id returns the image ID (repository@digest) of a normalised ref, or "".
func (m *imageIDs) id(ref string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return imageIDFor(ref, m.byRef[ref])
}

// load records every image the runtime holds.
func (m *imageIDs) load(ctx context.Context, rt Runtime) error {
	imgs, err := rt.ListImages(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		m.set(img)
	}
	return nil
}
