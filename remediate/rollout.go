package remediate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate/journal"
)

// Rollout runs a waves file: the waves in order, each in its maintenance window, with its own
// parallelism and failure threshold, a pause or an approval between waves, resuming from the
// journal where an earlier runner stopped. One runner at a time holds the waves file's lock.
type Rollout struct {
	Waves      *Waves
	Hosts      []Host // the inventory's hosts with their targets
	Engine     *Engine
	Journal    *journal.Journal
	Installers *Installers
	Pull       *PullServer
	Options    Options // the plan options of every wave
	Playbooks  []*playbooks.Playbook
	Tool       string
	RunID      string
	Holder     journal.LockHolder
	// Only runs this one wave and returns (for cron); the waves before it must be done.
	Only string
	// Drain, when closed, lets every host reach a safe point and starts no wave.
	Drain <-chan struct{}
	// Notify hears what the rollout waits for and how each wave ends.
	Notify func(RolloutEvent)
	// Poll is how often an approval is looked for (0 = one minute), on the engine's clock.
	Poll time.Duration
	// Results, when set, hears every host's result of every wave run.
	Results func(wave string, results []HostResult)

	resumes map[string]bool // the earlier runs of the waves file, from the journal
}

// RolloutEvent is a change in a rollout, for progress.
type RolloutEvent struct {
	Wave   string
	What   string    // "waiting-window", "waiting-approval", "pause", "staging-ahead", "started", "done", "halted", "window-closed"
	Until  time.Time // when waiting: the instant waited for
	Window *Window
	Detail string
}

// Lock staleness: a runner beats every lockBeat; a lock not beaten for lockStale is a dead
// runner's and is taken over.
const (
	lockBeat  = time.Minute
	lockStale = 10 * time.Minute
)

// ErrHalted is wrapped by the error of a rollout a wave's failure threshold stopped.
var ErrHalted = errors.New("rollout halted")

// LockName is the journal lock of a waves file: its absolute path.
func LockName(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		return abs
	}
	return file
}

// Run works through the waves. It returns nil when every wave (or Only) is done, ErrHalted
// (wrapped, with the reason) when a threshold stopped it, ErrStopped when drained, and ctx's
// error when cancelled. A lock held by another live runner is a *journal.LockedError.
func (ro *Rollout) Run(ctx context.Context) error {
	clock := ro.Engine.clock()
	name := LockName(ro.Waves.File)
	if _, err := ro.Journal.Lock(name, ro.Holder, clock.Now(), lockStale); err != nil {
		return err
	}
	beatCtx, stopBeat := context.WithCancel(ctx)
	defer func() {
		stopBeat()
		_ = ro.Journal.Unlock(name, ro.Holder)
	}()
	go ro.heartbeat(beatCtx, name)

	states, err := ro.Journal.Waves(name)
	if err != nil {
		return err
	}
	status := map[string]journal.WaveState{}
	for _, s := range states {
		status[s.Wave] = s
	}
	done, resumes, err := ro.history()
	if err != nil {
		return err
	}
	ro.resumes = resumes
	only := -1
	for i, wv := range ro.Waves.Waves {
		if wv.Name == ro.Only {
			only = i
		}
	}
	if ro.Only != "" && only < 0 {
		return fmt.Errorf("no wave named %s in %s", ro.Only, ro.Waves.File)
	}
	for i, wv := range ro.Waves.Waves {
		if status[wv.Name].Status == journal.WaveDone {
			continue
		}
		if only >= 0 && i < only {
			return fmt.Errorf("wave %s comes before %s and is not done (%s): run it first", wv.Name, ro.Only, orNone(status[wv.Name].Status))
		}
		if i > 0 {
			if err := ro.after(ctx, ro.Waves.Waves[i-1], status[ro.Waves.Waves[i-1].Name]); err != nil {
				return err
			}
		}
		if err := ro.wave(ctx, wv, done); err != nil {
			return err
		}
		status[wv.Name] = journal.WaveState{Status: journal.WaveDone, Ended: clock.Now()}
		if only >= 0 {
			return nil
		}
	}
	return nil
}

func (ro *Rollout) heartbeat(ctx context.Context, name string) {
	clock := ro.Engine.clock()
	for clock.Sleep(ctx, lockBeat) == nil {
		if err := ro.Journal.Heartbeat(name, ro.Holder, clock.Now()); err != nil {
			ro.notify(RolloutEvent{What: "lock-lost", Detail: err.Error()})
			return
		}
	}
}

func (ro *Rollout) notify(ev RolloutEvent) {
	if ro.Notify != nil {
		ro.Notify(ev)
	}
}

func (ro *Rollout) putWave(wv *Wave, status, reason string, started, ended time.Time) error {
	return ro.Journal.PutWave(journal.WaveState{Waves: LockName(ro.Waves.File), Wave: wv.Name, RunID: ro.RunID, Status: status,
		Reason: reason, Started: started, Ended: ended})
}

// history reads the earlier runs of this waves file: the hosts they remediated, and the runs
// themselves, whose finished installs count as this runner's.
func (ro *Rollout) history() (done, runIDs map[string]bool, err error) {
	runs, err := ro.Journal.Runs(10000)
	if err != nil {
		return nil, nil, err
	}
	done, runIDs = map[string]bool{}, map[string]bool{}
	for _, r := range runs {
		if r.Inventory != LockName(ro.Waves.File) {
			continue
		}
		runIDs[r.ID] = true
		hosts, err := ro.Journal.Hosts(r.ID)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hosts {
			if h.Outcome == string(Remediated) {
				done[h.Host] = true
			}
		}
	}
	return done, runIDs, nil
}

// after waits for what the previous wave asked: an approval, then its pause.
func (ro *Rollout) after(ctx context.Context, prev *Wave, st journal.WaveState) error {
	clock := ro.Engine.clock()
	poll := ro.Poll
	if poll <= 0 {
		poll = time.Minute
	}
	if prev.Approve {
		for first := true; ; first = false {
			ok, _, err := ro.Journal.Approved(LockName(ro.Waves.File), prev.Name)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if first {
				ro.notify(RolloutEvent{Wave: prev.Name, What: "waiting-approval",
					Detail: fmt.Sprintf("run: iisremedy waves approve %s %s", ro.Waves.File, prev.Name)})
			}
			if err := ro.wait(ctx, poll); err != nil {
				return err
			}
		}
	}
	if prev.Pause > 0 {
		ended := st.Ended
		if ended.IsZero() {
			ended = clock.Now()
		}
		if until := ended.Add(prev.Pause); until.After(clock.Now()) {
			ro.notify(RolloutEvent{Wave: prev.Name, What: "pause", Until: until})
			if err := ro.wait(ctx, until.Sub(clock.Now())); err != nil {
				return err
			}
		}
	}
	return nil
}

// wait sleeps on the engine's clock; a drain ends it. On a simulated clock that moves only
// while all its participants wait (the lab's), the rollout takes part for the wait: else,
// with no host worked on, nobody would be waiting and the clock would never reach the window.
// It beats the lock itself each lockBeat: a simulated clock may jump hours ahead between two
// looks of the heartbeat goroutine, which does not take part.
func (ro *Rollout) wait(ctx context.Context, d time.Duration) error {
	wctx, stop := cancelOnDrain(ctx, ro.Drain)
	defer stop()
	clock := ro.Engine.clock()
	if j, ok := clock.(joiner); ok {
		var leave func()
		wctx, leave = j.Join(wctx)
		defer leave()
	}
	for first := true; first || d > 0; first = false {
		step := min(d, lockBeat)
		err := clock.Sleep(wctx, step)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case drained(ro.Drain):
			return fmt.Errorf("%w: drained", ErrStopped)
		case err != nil:
			return err
		}
		if err := ro.Journal.Heartbeat(LockName(ro.Waves.File), ro.Holder, clock.Now()); err != nil {
			return fmt.Errorf("the waves file's lock: %w", err)
		}
		d -= step
	}
	return nil
}

// wave runs one wave until all its hosts are through: in its window, again in the next window
// for the hosts a closing window stopped.
func (ro *Rollout) wave(ctx context.Context, wv *Wave, done map[string]bool) error {
	clock := ro.Engine.clock()
	started := clock.Now()
	staged := false
	for {
		if drained(ro.Drain) {
			return fmt.Errorf("%w: drained", ErrStopped)
		}
		now := clock.Now()
		if wv.Window != nil {
			opens, _, ok := wv.Window.Next(now)
			if !ok {
				_ = ro.putWave(wv, journal.WaveHalted, "its window never opens again", started, now)
				return fmt.Errorf("%w at wave %s: its window never opens again", ErrHalted, wv.Name)
			}
			if opens.After(now) {
				if ro.Waves.StageAhead && !staged {
					ro.notify(RolloutEvent{Wave: wv.Name, What: "staging-ahead", Window: wv.Window, Until: opens})
					if _, err := ro.attempt(ctx, wv, done, true); err != nil {
						return err
					}
					staged = true
					continue
				}
				_ = ro.putWave(wv, journal.WaveWaitingWindow, "", started, time.Time{})
				ro.notify(RolloutEvent{Wave: wv.Name, What: "waiting-window", Window: wv.Window, Until: opens})
				if err := ro.wait(ctx, opens.Sub(now)); err != nil {
					return err
				}
				continue
			}
		}
		_ = ro.putWave(wv, journal.WaveRunning, "", started, time.Time{})
		ro.notify(RolloutEvent{Wave: wv.Name, What: "started", Window: wv.Window})
		pending, err := ro.attempt(ctx, wv, done, false)
		var halted *haltError
		switch {
		case errors.As(err, &halted):
			_ = ro.putWave(wv, journal.WaveHalted, halted.reason, started, clock.Now())
			ro.notify(RolloutEvent{Wave: wv.Name, What: "halted", Detail: halted.reason})
			return fmt.Errorf("%w at wave %s: %s", ErrHalted, wv.Name, halted.reason)
		case err != nil:
			return err
		case pending > 0 && wv.Window != nil && !wv.Window.Open(clock.Now()):
			ro.notify(RolloutEvent{Wave: wv.Name, What: "window-closed", Detail: fmt.Sprintf("%d hosts wait for the next window", pending)})
			continue
		case pending > 0:
			return fmt.Errorf("wave %s: %d hosts were stopped before their end", wv.Name, pending)
		}
		_ = ro.putWave(wv, journal.WaveDone, "", started, clock.Now())
		ro.notify(RolloutEvent{Wave: wv.Name, What: "done"})
		return nil
	}
}

// haltError is a wave past its failure threshold.
type haltError struct{ reason string }

func (h *haltError) Error() string { return h.reason }

// attempt probes the wave's hosts not done yet, plans them and remediates them (or only stages
// them, ahead of the window); it returns how many hosts the window's closing left for later.
func (ro *Rollout) attempt(ctx context.Context, wv *Wave, done map[string]bool, stageOnly bool) (pending int, err error) {
	var hosts []Host
	for _, entry := range wv.Members {
		if done[entry] {
			continue
		}
		for _, h := range ro.Hosts {
			if h.Entry == entry {
				hosts = append(hosts, h)
			}
		}
	}
	if len(hosts) == 0 {
		return 0, nil
	}
	e := ro.Engine
	findings := e.detect(ctx, hosts, wv.Parallel)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	plan := NewPlan(findings, ro.Options, ro.Installers, ro.Playbooks, ro.Tool, e.clock().Now(), ro.Waves.File)
	run := &Run{ID: ro.RunID, Plan: plan, Installers: ro.Installers, Pull: ro.Pull, Drain: ro.Drain, Done: done, StageOnly: stageOnly,
		Parallel: wv.Parallel, Resumes: ro.resumes}
	if wv.MaxFailures != "" {
		count, percent, _ := parseShare(wv.MaxFailures, false)
		run.MaxFailures, run.MaxFailurePercent = count, percent
	}
	if wv.Window != nil {
		run.Window = wv.Window.Open
	}
	results, err := e.Remediate(ctx, run)
	if ro.Results != nil {
		ro.Results(wv.Name, results)
	}
	for _, r := range results {
		switch r.Outcome {
		case Remediated:
			done[r.Host.Entry] = true
		case Interrupted:
			pending++
		}
	}
	switch {
	case ctx.Err() != nil:
		return pending, ctx.Err()
	case errors.Is(err, ErrStopped) && drained(ro.Drain):
		return pending, err
	case errors.Is(err, ErrStopped):
		return pending, &haltError{reason: err.Error()}
	}
	return pending, nil
}
