package remediate

import (
	"context"
	"sync"
	"time"
)

// RateLimit caps the total rate of installer bytes sent to all hosts together (--bwlimit):
// admins stage over WAN links. It schedules each chunk at the rate, so the total converges to
// the limit whatever the number of transfers. Bandwidth is real time, never the engine's clock.
type RateLimit struct {
	bytesPerSecond float64

	mu   sync.Mutex
	next time.Time // when the link is free for the next chunk
}

// NewRateLimit returns a limit of bytesPerSecond (<= 0: none, nil).
func NewRateLimit(bytesPerSecond float64) *RateLimit {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &RateLimit{bytesPerSecond: bytesPerSecond}
}

// wait blocks until n more bytes may go, or ctx ends.
func (l *RateLimit) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	start := l.next
	if start.Before(now) {
		start = now
	}
	l.next = start.Add(time.Duration(float64(n) / l.bytesPerSecond * float64(time.Second)))
	l.mu.Unlock()
	d := time.Until(start)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
