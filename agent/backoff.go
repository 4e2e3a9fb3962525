package agent

import (
	"strconv"
	"time"
)

// Restart back-off is derived from the runtime's own records, not from
// memory, so it survives an agent restart: every container carries in its
// labels the "restart streak" of its attempt, the number of restarts in a
// row without a long run in between. Attempt 0 has streak 0.
//
//	streak of the exited attempt   delay before the next attempt
//	0 (first run)                  0 (restart at once)
//	1                              base             (10 s)
//	2                              2 * base         (20 s)
//	n                              base * 2^(n-1), at most max (5 min)
//
// An attempt that ran for at least the reset time (10 min) before it
// exited resets the streak to 0. This is the kubelet's sequence.

// labelRestartStreak is the container label holding the attempt's streak.
const labelRestartStreak = "restart-streak"

// streakOf returns the restart streak recorded on a container.
func streakOf(st ContainerStatus) uint32 {
	n, err := strconv.ParseUint(st.Labels[labelRestartStreak], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// restartDelay returns how long after last exited the next attempt may
// start, and the streak that attempt carries.
func (p backoffPolicy) restartDelay(last ContainerStatus) (time.Duration, uint32) {
	streak := streakOf(last)
	if !last.StartedAt.IsZero() && !last.FinishedAt.IsZero() && last.FinishedAt.Sub(last.StartedAt) >= p.restartReset {
		streak = 0
	}
	return doubling(p.restartBase, p.restartMax, int(streak)), streak + 1
}

// pullDelay is the wait after the n-th consecutive failure (n >= 1) to get
// an image or create a container.
func (p backoffPolicy) pullDelay(n int) time.Duration {
	return doubling(p.pullBase, p.pullMax, n)
}

// doubling returns 0 for n <= 0, else base * 2^(n-1) capped at max.
func doubling(base, max time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
