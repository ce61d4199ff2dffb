package remediate

import (
	"context"
	"time"
)

// Clock is the engine's time: every wait, poll interval and step timeout of the engine goes
// through it, so that the lab can run a remediation on simulated time. The real clock is
// RealClock.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls f in its own goroutine after d; stop cancels it and reports whether
	// it was still pending.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// joiner is implemented by a simulated clock that moves only when every goroutine taking
// part in the simulation waits on it (the lab's). The engine joins each of its workers,
// so that the clock neither waits forever for a worker nor jumps while one still works;
// Sleep calls with the returned context count as waiting.
type joiner interface {
	Join(ctx context.Context) (context.Context, func())
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
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

// AfterFunc is time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// withTimeout returns a context cancelled with cause when d passes on clock, or when ctx
// ends. A timeout measured on the engine's clock can be driven by a test or the lab.
func withTimeout(ctx context.Context, clock Clock, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := clock.AfterFunc(d, func() { cancel(cause) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}
