package win2003

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Clock is the simulated time of a lab. One Clock may drive many hosts.
//
// A scaled clock (NewClock with scale > 0) runs Scale simulated seconds per real second from a start
// instant: NewClock(start, 60) makes one simulated minute pass per real second.
// A manual clock (NewManualClock) stands still until Advance is called; timers fire inside Advance.
// All durations given to a Clock are simulated durations.
//
// A manual clock makes a test independent of the machine's speed: simulated time moves only when
// the test says so. Work the test starts in the background (a scheduled task, an installer, a
// command over WinRM) may not have set its timer yet when the test wants to move time past it;
// Pending and WaitPending tell the test when it has, and AdvanceToNext moves to the earliest timer.
//
// A manual clock can also run on virtual time (Drive): it jumps to its next timer as soon as every
// goroutine that joined it (Join) waits in Sleep, and never while one of them still works. The
// engine joins its workers and the host model its scheduled tasks, so a remediation of hours
// runs as fast as the hosts answer, and the same way however busy the machine is.
type Clock struct {
	mu        sync.Mutex
	scale     float64 // 0 = manual
	realStart time.Time
	simStart  time.Time
	manualNow time.Time
	timers    timerHeap
	seq       uint64
	// changed is closed and replaced whenever a timer is set, stopped or fired, or a participant
	// joins, leaves, sleeps or wakes (manual clocks).
	changed chan struct{}

	joined, asleep int // goroutines that joined, and those of them in Sleep
}

// participantKey marks the context of a goroutine that joined the clock.
type participantKey struct{}

// NewClock returns a clock whose simulated time starts at start and runs scale times faster than
// real time. A scale <= 0 is taken as 1.
func NewClock(start time.Time, scale float64) *Clock {
	if scale <= 0 {
		scale = 1
	}
	return &Clock{scale: scale, realStart: time.Now(), simStart: start, changed: make(chan struct{})}
}

// NewManualClock returns a clock that stands at start until Advance (or Drive) moves it.
func NewManualClock(start time.Time) *Clock {
	return &Clock{manualNow: start, changed: make(chan struct{})}
}

// Scale reports the time-scale factor (0 for a manual clock).
func (c *Clock) Scale() float64 { return c.scale }

// Now reports the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	if c.scale == 0 {
		return c.manualNow
	}
	real := time.Since(c.realStart)
	return c.simStart.Add(time.Duration(float64(real) * c.scale))
}

// Join registers the calling goroutine as taking part in the simulation until leave is called:
// on virtual time the clock does not move while it works, only while it waits in Sleep with the
// returned context (or a context derived from it).
func (c *Clock) Join(ctx context.Context) (_ context.Context, leave func()) {
	c.mu.Lock()
	c.joined++
	c.changedLocked()
	c.mu.Unlock()
	var once sync.Once
	return context.WithValue(ctx, participantKey{}, c), func() {
		once.Do(func() {
			c.mu.Lock()
			c.joined--
			c.changedLocked()
			c.mu.Unlock()
		})
	}
}

// Drive runs a manual clock on virtual time until ctx ends: whenever goroutines have joined and
// all of them wait in Sleep, time jumps to the next timer. It does nothing on a scaled clock.
func (c *Clock) Drive(ctx context.Context) {
	if c.scale != 0 {
		return
	}
	for {
		c.mu.Lock()
		if c.joined > 0 && c.asleep == c.joined && len(c.timers) > 0 {
			c.advanceLocked(c.timers[0].when)
			c.mu.Unlock()
			continue
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// Timer is a pending AfterFunc call.
type Timer struct {
	c  *Clock
	rt *time.Timer
	mt *manualTimer
}

// Stop cancels the timer; it reports whether the call was still pending.
func (t *Timer) Stop() bool {
	if t == nil {
		return false
	}
	if t.rt != nil {
		return t.rt.Stop()
	}
	if t.mt == nil {
		return false
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.mt.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.mt.index)
	t.c.changedLocked()
	return true
}

// AfterFunc calls f after the simulated duration d: in its own goroutine on a scaled clock, inside
// Advance on a manual clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) *Timer {
	t := &Timer{c: c}
	if c.scale != 0 {
		t.rt = time.AfterFunc(time.Duration(float64(d)/c.scale), f)
		return t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.mt = c.addTimerLocked(d, f)
	return t
}

func (c *Clock) addTimerLocked(d time.Duration, f func()) *manualTimer {
	c.seq++
	mt := &manualTimer{when: c.manualNow.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, mt)
	c.changedLocked()
	return mt
}

// Sleep waits for the simulated duration d or until ctx is done; it reports whether d elapsed.
// A goroutine that joined the clock counts as waiting meanwhile.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if c.scale != 0 || ctx.Value(participantKey{}) != c {
		done := make(chan struct{})
		t := c.AfterFunc(d, func() { close(done) })
		select {
		case <-done:
			return true
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	// A participant on a manual clock: it is asleep from the moment its timer is set until the
	// timer fires, which wakes it inside Advance, so Drive never sees it asleep while it works.
	done := make(chan struct{})
	c.mu.Lock()
	c.asleep++
	mt := c.addTimerLocked(d, func() {
		c.mu.Lock()
		c.asleep--
		c.changedLocked()
		c.mu.Unlock()
		close(done)
	})
	c.mu.Unlock()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		c.mu.Lock()
		pending := mt.index >= 0
		if pending {
			heap.Remove(&c.timers, mt.index)
			c.asleep--
			c.changedLocked()
		}
		c.mu.Unlock()
		if !pending {
			<-done // it is firing: let it finish counting this goroutine awake
		}
		return false
	}
}

// Advance moves a manual clock forward by d, running the timers that fall due in time order.
// It does nothing on a scaled clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	if c.scale != 0 {
		c.mu.Unlock()
		return
	}
	c.advanceLocked(c.manualNow.Add(d))
	c.mu.Unlock()
}

// advanceLocked moves a manual clock to target, running the timers due by then in time order
// (each with mu released).
func (c *Clock) advanceLocked(target time.Time) {
	for len(c.timers) > 0 && !c.timers[0].when.After(target) {
		mt := heap.Pop(&c.timers).(*manualTimer)
		if mt.when.After(c.manualNow) {
			c.manualNow = mt.when
		}
		c.changedLocked()
		c.mu.Unlock()
		mt.f()
		c.mu.Lock()
	}
	if target.After(c.manualNow) {
		c.manualNow = target
	}
}

// AdvanceToNext moves a manual clock to the instant its earliest pending timer is due and runs
// the timers due then, as Advance does. It reports false, and does nothing, when no timer is
// pending or the clock is scaled.
func (c *Clock) AdvanceToNext() bool {
	c.mu.Lock()
	if c.scale != 0 || len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	d := c.timers[0].when.Sub(c.manualNow)
	c.mu.Unlock()
	c.Advance(max(d, 0))
	return true
}

// Pending reports how many timers wait on a manual clock (AfterFunc calls not yet run nor
// stopped, Sleep calls included). It is 0 on a scaled clock, whose timers are the runtime's.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitPending blocks until at least n timers are pending on a manual clock, and reports true; it
// reports false when ctx ends first, and at once on a scaled clock. A test calls it after starting
// work that will wait on simulated time (noting Pending before), so that its next Advance does not
// come before the work has set its timer.
func (c *Clock) WaitPending(ctx context.Context, n int) bool {
	for {
		c.mu.Lock()
		if c.scale != 0 {
			c.mu.Unlock()
			return false
		}
		if len(c.timers) >= n {
			c.mu.Unlock()
			return true
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// changedLocked wakes whoever waits for the clock's state to change (WaitPending, Drive).
func (c *Clock) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type manualTimer struct {
	when  time.Time
	seq   uint64
	f     func()
	index int
}

type timerHeap []*manualTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	mt := x.(*manualTimer)
	mt.index = len(*h)
	*h = append(*h, mt)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	mt := old[n-1]
	old[n-1] = nil
	mt.index = -1
	*h = old[:n-1]
	return mt
}
