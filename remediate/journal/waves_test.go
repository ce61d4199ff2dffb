package journal

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// twoRunners opens the same file twice, as two processes would.
func twoRunners(t *testing.T) (a, b *Journal) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	a = openAt(t, path, Options{})
	b = openAt(t, path, Options{})
	for _, id := range []string{"ra", "rb"} {
		must(t, a.StartRun(Run{ID: id, Command: "waves run", Started: t0}))
	}
	return a, b
}

func TestLockHeldByAnotherRunner(t *testing.T) {
	a, b := twoRunners(t)
	holderA := LockHolder{Host: "ctl1", PID: 100, RunID: "ra"}
	holderB := LockHolder{Host: "ctl2", PID: 200, RunID: "rb"}
	const stale = 5 * time.Minute

	got, err := a.Lock("prod.yaml", holderA, t0, stale)
	must(t, err)
	if want := (Lock{Name: "prod.yaml", Holder: holderA, Since: t0, Heartbeat: t0}); !reflect.DeepEqual(got, want) {
		t.Errorf("Lock = %+v, want %+v", got, want)
	}
	must(t, a.Heartbeat("prod.yaml", holderA, t0.Add(2*time.Minute)))

	_, err = b.Lock("prod.yaml", holderB, t0.Add(6*time.Minute), stale) // 4 minutes after the heartbeat
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second runner's Lock = %v, want a *LockedError", err)
	}
	want := LockedError{Name: "prod.yaml", Holder: holderA, Since: t0, Heartbeat: t0.Add(2 * time.Minute)}
	if !reflect.DeepEqual(*locked, want) {
		t.Errorf("LockedError = %+v, want %+v", *locked, want)
	}
	const msg = "prod.yaml is locked by run ra (pid 100 on ctl1) since 2010-06-21T09:00:00Z, last heartbeat 2010-06-21T09:02:00Z"
	if err.Error() != msg {
		t.Errorf("message = %q, want %q", err.Error(), msg)
	}
	if err := b.Unlock("prod.yaml", holderB); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock by a runner that does not hold the lock = %v, want ErrLockLost", err)
	}

	// The holder locks again (a resumed wave): the same lock, its heartbeat renewed.
	again, err := a.Lock("prod.yaml", holderA, t0.Add(3*time.Minute), stale)
	must(t, err)
	if !again.Since.Equal(t0) || !again.Heartbeat.Equal(t0.Add(3*time.Minute)) || again.TookOver != nil {
		t.Errorf("Lock by the holder = %+v, want since %v, heartbeat now", again, t0)
	}
	// Another waves file has its own lock.
	_, err = b.Lock("test.yaml", holderB, t0, stale)
	must(t, err)

	must(t, a.Unlock("prod.yaml", holderA))
	must(t, a.Unlock("prod.yaml", holderA)) // a free lock: nothing to do
	if _, err := b.Lock("prod.yaml", holderB, t0.Add(4*time.Minute), stale); err != nil {
		t.Errorf("Lock after Unlock = %v", err)
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	a, b := twoRunners(t)
	holderA := LockHolder{Host: "ctl1", PID: 100, RunID: "ra"}
	holderB := LockHolder{Host: "ctl1", PID: 101, RunID: "rb"} // same machine, a later process
	const stale = 5 * time.Minute
	_, err := a.Lock("prod.yaml", holderA, t0, stale)
	must(t, err)

	// Exactly staleAfter since the heartbeat is not yet stale.
	if _, err := b.Lock("prod.yaml", holderB, t0.Add(stale), stale); err == nil {
		t.Fatal("lock taken over at exactly staleAfter")
	}
	later := t0.Add(stale + time.Second)
	got, err := b.Lock("prod.yaml", holderB, later, stale)
	must(t, err)
	if want := (Lock{Name: "prod.yaml", Holder: holderB, Since: later, Heartbeat: later, TookOver: &holderA}); !reflect.DeepEqual(got, want) {
		t.Errorf("takeover = %+v, want %+v", got, want)
	}

	// The runner that was taken for dead wakes up: its heartbeat fails and names the new holder.
	err = a.Heartbeat("prod.yaml", holderA, later.Add(time.Second))
	var locked *LockedError
	if !errors.Is(err, ErrLockLost) || !errors.As(err, &locked) || locked.Holder != holderB {
		t.Errorf("Heartbeat after takeover = %v, want ErrLockLost and a *LockedError naming %+v", err, holderB)
	}
	if err := a.Unlock("prod.yaml", holderA); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock after takeover = %v, want ErrLockLost", err)
	}
	must(t, b.Heartbeat("prod.yaml", holderB, later.Add(time.Minute)))

	// A lock whose staleAfter is 0 is never taken over.
	_, err = a.Lock("never.yaml", holderA, t0, 0)
	must(t, err)
	if _, err := b.Lock("never.yaml", holderB, t0.Add(1000*time.Hour), 0); err == nil {
		t.Error("a lock with staleAfter 0 was taken over")
	}
	must(t, b.Unlock("prod.yaml", holderB))
	if err := b.Heartbeat("prod.yaml", holderB, later); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "nobody holds it") {
		t.Errorf("Heartbeat of a released lock = %v, want ErrLockLost: nobody holds it", err)
	}
}

// TestLockContention has runners of two "processes" race for a free lock and for a stale
// one: exactly one wins each race.
func TestLockContention(t *testing.T) {
	a, b := twoRunners(t)
	const runners = 40
	race := func(now time.Time) (winners []LockHolder) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range runners {
			j := a
			if i%2 == 1 {
				j = b
			}
			h := LockHolder{Host: "ctl", PID: 1000 + i, RunID: "ra"}
			wg.Go(func() {
				_, err := j.Lock("prod.yaml", h, now, time.Minute)
				var locked *LockedError
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, h)
					mu.Unlock()
				case !errors.As(err, &locked):
					t.Errorf("Lock by %+v = %v, want success or *LockedError", h, err)
				}
			})
		}
		wg.Wait()
		return winners
	}
	if w := race(t0); len(w) != 1 {
		t.Errorf("%d runners took the free lock, want 1: %+v", len(w), w)
	}
	if w := race(t0.Add(time.Hour)); len(w) != 1 {
		t.Errorf("%d runners took over the stale lock, want 1: %+v", len(w), w)
	}
}

func TestApprovals(t *testing.T) {
	j := openTemp(t, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if ok, a, err := j.Approved("prod.yaml", "w2"); ok || err != nil || a != (Approval{}) {
		t.Errorf("Approved before any approval = %v, %+v, %v", ok, a, err)
	}
	must(t, j.Approve("prod.yaml", "w2", "alice", t0))
	must(t, j.Approve("prod.yaml", "w3", "bob", time.Time{}))
	for wave, want := range map[string]Approval{
		"w2": {Waves: "prod.yaml", Wave: "w2", By: "alice", At: t0},
		"w3": {Waves: "prod.yaml", Wave: "w3", By: "bob", At: t0.Add(time.Hour)},
	} {
		ok, got, err := j.Approved("prod.yaml", wave)
		if err != nil || !ok || got != want {
			t.Errorf("Approved(%s) = %v, %+v, %v; want %+v", wave, ok, got, err, want)
		}
	}
	if ok, _, _ := j.Approved("test.yaml", "w2"); ok {
		t.Error("an approval of prod.yaml counted for test.yaml")
	}
	must(t, j.Approve("prod.yaml", "w2", "carol", t0.Add(time.Minute)))
	if _, got, _ := j.Approved("prod.yaml", "w2"); got.By != "carol" {
		t.Errorf("after approving again, approval by %s, want carol", got.By)
	}
	if err := j.Approve("prod.yaml", "w4", "", t0); err == nil {
		t.Error("Approve by nobody succeeded")
	}
}

func TestWavesRoundTrip(t *testing.T) {
	j := openTemp(t, Options{})
	startRun(t, j, "r1", t0)
	w1 := WaveState{Waves: "prod.yaml", Wave: "canary", RunID: "r1", Status: WaveRunning, Started: t0}
	w2 := WaveState{Waves: "prod.yaml", Wave: "rest", Status: WaveWaitingApproval, Reason: "needs approval"}
	must(t, j.PutWave(w1))
	must(t, j.PutWave(w2))
	must(t, j.PutWave(WaveState{Waves: "test.yaml", Wave: "all", Status: WavePending}))
	w1.Status, w1.Ended = WaveHalted, t0.Add(time.Hour)
	w1.Reason = "2 of 5 hosts failed (threshold 1)"
	update := w1
	update.Started = time.Time{} // keeps the recorded one
	must(t, j.PutWave(update))
	got, err := j.Waves("prod.yaml")
	must(t, err)
	if want := []WaveState{w1, w2}; !reflect.DeepEqual(got, want) {
		t.Errorf("Waves = %+v\nwant %+v", got, want)
	}
	if err := j.PutWave(WaveState{Waves: "prod.yaml", Wave: "x", Status: "paused"}); err == nil {
		t.Error("PutWave with status paused succeeded")
	}
}
