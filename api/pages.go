package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffhq/skiff/proto"
)

// Paged lists (limit and continue). A list with a limit returns the first
// items and keeps the rest of that same result (objects in the store are
// immutable, so this is a slice of pointers) under a random continue token:
// every page of one list shows the state at one resourceVersion, as with
// Kubernetes. The rest is kept on the serving node for pageTTL; a token that
// is unknown here (expired, evicted, or made by another node) gets 410 Gone
// with reason Expired, which client-go's pager answers with a full list.
const (
	pageTTL       = 5 * time.Minute
	maxPagedLists = 256
)

// pageCache holds the unread rest of paged lists. Safe for concurrent use.
type pageCache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*pageEntry
}

type pageEntry struct {
	kind    *proto.Kind
	scope   string // namespace and selectors of the list
	rv      uint64
	rest    []proto.Object
	expires time.Time
}

func newPageCache(now func() time.Time) *pageCache {
	return &pageCache{now: now, entries: map[string]*pageEntry{}}
}

// put keeps rest and returns its continue token.
func (c *pageCache) put(kind *proto.Kind, scope string, rv uint64, rest []proto.Object) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := strconv.FormatUint(rv, 10) + "." + hex.EncodeToString(b)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, t)
		}
	}
	if len(c.entries) >= maxPagedLists {
		c.evictOldestLocked()
	}
	c.entries[token] = &pageEntry{kind: kind, scope: scope, rv: rv, rest: rest, expires: now.Add(pageTTL)}
	return token
}

func (c *pageCache) evictOldestLocked() {
	var oldest string
	for t, e := range c.entries {
		if oldest == "" || e.expires.Before(c.entries[oldest].expires) {
			oldest = t
		}
	}
	delete(c.entries, oldest)
}

// take returns the rest of a paged list. A token stays valid until it
// expires, so a client may retry a page.
func (c *pageCache) take(token string, kind *proto.Kind, scope string) ([]proto.Object, uint64, error) {
	c.mu.Lock()
	e, ok := c.entries[token]
	c.mu.Unlock()
	switch {
	case ok && (e.kind != kind || e.scope != scope):
		return nil, 0, apierrors.NewBadRequest("the continue token is for another list (resource, namespace or selectors differ)")
	case !ok || c.now().After(e.expires):
		return nil, 0, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
	}
	return e.rest, e.rv, nil
}

// listScope identifies a list for its continue tokens.
func listScope(namespace, labelSelector, fieldSelector string) string {
	return namespace + "\x00" + labelSelector + "\x00" + fieldSelector
}

// parseLimit reads the limit query parameter; 0 means no limit.
func parseLimit(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q: must be a non-negative integer", v))
	}
	return n, nil
}
