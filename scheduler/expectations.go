package scheduler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// expectations remembers, per controller key, how many pod creations and
// which pod deletions a sync issued that the pod informer has not shown
// yet, in the spirit of Kubernetes' UIDTrackingControllerExpectations.
// While a key has outstanding expectations its sync does not create or
// delete pods again, so a slow informer cannot cause double creation.
// Expectations older than the timeout are ignored, so a lost event cannot
// wedge a controller. Safe for concurrent use.
type expectations struct {
	clock   clock.PassiveClock
	timeout time.Duration

	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	adds int
	dels sets.Set[string] // pod keys whose deletion is not yet observed
	at   time.Time
}

func newExpectations(clk clock.PassiveClock, timeout time.Duration) *expectations {
	return &expectations{clock: clk, timeout: timeout, m: map[string]*expectation{}}
}

// satisfied reports whether key may create or delete pods now.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && x.dels.Len() == 0 {
		return true
	}
	return e.clock.Since(x.at) > e.timeout
}

// expect records that a sync is about to create adds pods and delete
// the pods named by dels.
func (e *expectations) expect(key string, adds int, dels []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: adds, dels: sets.New(dels...), at: e.clock.Now()}
}

// creationObserved lowers the outstanding creations of key by one: the
// informer showed a new pod, or a create call failed.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds--
	}
}

// deletionObserved records that podKey's deletion was seen (or failed).
// Seeing the same deletion twice (graceful mark, then removal) is fine.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.dels.Delete(podKey)
	}
}

// forget drops key, when its owner is gone.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
