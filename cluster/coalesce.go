package cluster

import (
	"context"
	"sync"
)

// coalescer runs fn on behalf of many concurrent callers: each caller waits
// for a run that started after it called, so the answer is never older
// than the question, yet a burst of callers shares one run. Used for
// leadership checks and read indexes behind consistent reads.
type coalescer struct {
	fn func(context.Context) (uint64, error)

	mu      sync.Mutex
	waiting *coalescedCall
	running bool
}

type coalescedCall struct {
	done  chan struct{}
	value uint64
	err   error
}

// Do waits for the next run of fn and returns its result.
func (c *coalescer) Do(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting = &coalescedCall{done: make(chan struct{})}
	}
	call := c.waiting
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.value, call.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *coalescer) loop() {
	for {
		c.mu.Lock()
		call := c.waiting
		c.waiting = nil
		if call == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), readIndexTimeout)
		call.value, call.err = c.fn(ctx)
		cancel()
		close(call.done)
	}
}
