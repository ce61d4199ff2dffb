package win2003_test

import (
	"context"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

// TestManualClockTimers: timers fire inside Advance in time order, Stop removes them, Pending
// counts them, WaitPending returns once a goroutine has set its timer, AdvanceToNext jumps to the
// earliest.
func TestManualClockTimers(t *testing.T) {
	c := win2003.NewManualClock(win2003.DefaultStart)
	var fired []string
	c.AfterFunc(2*time.Minute, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Minute, func() { fired = append(fired, "a") })
	stopped := c.AfterFunc(90*time.Second, func() { fired = append(fired, "stopped") })
	if n := c.Pending(); n != 3 {
		t.Fatalf("Pending() = %d, want 3", n)
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop: want true once, then false")
	}
	if !c.AdvanceToNext() || !c.Now().Equal(win2003.DefaultStart.Add(time.Minute)) || len(fired) != 1 {
		t.Fatalf("AdvanceToNext: now %v, fired %v; want the 1-minute timer alone", c.Now(), fired)
	}
	c.Advance(10 * time.Minute)
	if got := c.Now().Sub(win2003.DefaultStart); got != 11*time.Minute || len(fired) != 2 || fired[1] != "b" || c.Pending() != 0 {
		t.Fatalf("after Advance: %v elapsed, fired %v, %d pending", got, fired, c.Pending())
	}
	if c.AdvanceToNext() {
		t.Error("AdvanceToNext with no timer reported true")
	}

	// A Sleep in another goroutine: WaitPending sees its timer, the Advance ends it.
	slept := make(chan bool)
	go func() { slept <- c.Sleep(context.Background(), time.Hour) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only a broken clock waits that long
	defer cancel()
	if !c.WaitPending(ctx, 1) {
		t.Fatal("WaitPending: the sleeper's timer never showed")
	}
	c.Advance(time.Hour)
	if !<-slept {
		t.Error("Sleep reported false after its duration elapsed")
	}

	// WaitPending gives up with its context; a scaled clock has no timers of its own to count.
	done, stop := context.WithCancel(context.Background())
	stop()
	if c.WaitPending(done, 1) {
		t.Error("WaitPending with a done context and no timer reported true")
	}
	if s := win2003.NewClock(win2003.DefaultStart, 60); s.WaitPending(context.Background(), 1) || s.Pending() != 0 || s.AdvanceToNext() {
		t.Error("scaled clock: WaitPending, Pending and AdvanceToNext should do nothing")
	}
}
