package containerd

import "time"

// backoff computes restart delays: min after a run that lasted at least
// stable, doubling (up to max) after each quick failure. It is a pure value
// so tests drive it without a clock.
type backoff struct {
	min, max, stable time.Duration
	cur              time.Duration
}

func newBackoff(min, max, stable time.Duration) *backoff {
	return &backoff{min: min, max: max, stable: stable}
}

// next returns the delay before the next start, given how long the last
// run lasted.
func (b *backoff) next(ranFor time.Duration) time.Duration {
	switch {
	case ranFor >= b.stable || b.cur == 0:
		b.cur = b.min
	default:
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	return b.cur
}
