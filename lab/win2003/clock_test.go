package win2003

import (
	"context"
	"testing"
	"time"
)

// TestVirtualTimeWaitsForWorkers: on virtual time the clock jumps to the next timer only when
// every goroutine that joined it sleeps. B works (blocked on the test) while A sleeps ten
// minutes; had the clock moved meanwhile, B's five-minute sleep would end after A's.
func TestVirtualTimeWaitsForWorkers(t *testing.T) {
	c := NewManualClock(DefaultStart)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go c.Drive(ctx)

	actx, leaveA := c.Join(ctx)
	bctx, leaveB := c.Join(ctx)
	release := make(chan struct{})
	woke := make(chan string, 2)
	go func() {
		defer leaveA()
		c.Sleep(actx, 10*time.Minute)
		woke <- "A " + c.Now().Sub(DefaultStart).String()
	}()
	go func() {
		defer leaveB()
		<-release // B's work, however long it takes
		c.Sleep(bctx, 5*time.Minute)
		woke <- "B " + c.Now().Sub(DefaultStart).String()
	}()
	close(release)
	if first, second := <-woke, <-woke; first != "B 5m0s" || second != "A 10m0s" {
		t.Errorf("woke %q then %q, want B at 5m0s then A at 10m0s", first, second)
	}
}

// TestVirtualTimeCancelledSleep: a Sleep cancelled by its context leaves no participant asleep;
// a participant's long Sleep runs the timers due on the way; the count is back to zero after.
func TestVirtualTimeCancelledSleep(t *testing.T) {
	c := NewManualClock(DefaultStart)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	fired := make(chan struct{})
	c.AfterFunc(time.Hour, func() { close(fired) })
	pctx, leave := c.Join(ctx)
	sctx, cancel := context.WithCancel(pctx)
	cancel()
	if c.Sleep(sctx, time.Minute) {
		t.Error("a cancelled Sleep reported the time elapsed")
	}
	go c.Drive(ctx)
	c.Sleep(pctx, 2*time.Hour) // the hour timer fires on the way
	<-fired
	leave()
	if got := c.Now().Sub(DefaultStart); got != 2*time.Hour {
		t.Errorf("clock at +%s, want +2h0m0s", got)
	}
	c.mu.Lock()
	joined, asleep := c.joined, c.asleep
	c.mu.Unlock()
	if joined != 0 || asleep != 0 {
		t.Errorf("joined %d, asleep %d after everyone left", joined, asleep)
	}
}
