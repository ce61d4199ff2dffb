package remote

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the one retry policy of iisremedy: for a WinRM message that failed on the way
// and for a whole read-only command that may run again. Up to Attempts tries, waiting Initial
// after the first failure and doubling up to Max, each wait shortened by up to Jitter (0..1)
// of itself so that hosts that failed together do not retry together.
type Backoff struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration // 0 = no cap
	Jitter   float64
}

// Retry calls op (attempt counts from 1) until it succeeds, retry(err) says no, the attempts
// run out or ctx ends. sleep waits between attempts and returns an error when ctx ends first;
// it is the caller's clock. The last error is returned; onRetry, when set, hears each error
// about to be retried with the wait before the next attempt.
func (b Backoff) Retry(ctx context.Context, sleep func(context.Context, time.Duration) error,
	op func(attempt int) error, retry func(error) bool, onRetry func(attempt int, wait time.Duration, err error)) error {
	delay := b.Initial
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil || attempt >= b.Attempts || !retry(err) || ctx.Err() != nil {
			return err
		}
		wait := delay
		if b.Jitter > 0 && wait > 0 {
			wait -= time.Duration(rand.Float64() * b.Jitter * float64(wait))
		}
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		if serr := sleep(ctx, wait); serr != nil {
			return err
		}
		delay *= 2
		if b.Max > 0 && delay > b.Max {
			delay = b.Max
		}
	}
}
