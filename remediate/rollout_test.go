package remediate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
	"github.com/iisremedy/iisremedy/remote"
)

// group is one inventory group of a rollout rig: n lab hosts of one scenario.
type group struct {
	name, scenario string
	n              int
}

// rolloutRig is a waves file over lab fleets that share one clock, a journal file, and what a
// Rollout needs; each rollout's steps and host outcomes go to the journal as `waves run`
// writes them, since resuming reads them back.
type rolloutRig struct {
	t       *testing.T
	clock   *win2003.Clock
	file    string
	waves   *remediate.Waves
	hosts   []remediate.Host
	lab     map[string]*lab.Host // by inventory entry
	inGroup map[string][]string  // entries by group, in inventory order
	j       *journal.Journal
	in      *remediate.Installers
	opts    remediate.Options
}

// newRolloutRig starts one fleet per group on clock and writes the inventory and the waves
// file (wavesYAML after an inventory: line) to a temporary folder; the file is read at the
// clock's time. With virtual, the clock runs on virtual time: it jumps ahead whenever every
// participant waits. The plan's polls are longer than the playbook's so that a host costs
// fewer round trips; the soak is given (the lab's install takes 25 simulated minutes).
func newRolloutRig(t *testing.T, clock *win2003.Clock, virtual bool, soak time.Duration, groups []group, wavesYAML string) *rolloutRig {
	t.Helper()
	if virtual {
		drive(t, clock)
	}
	dir := t.TempDir()
	r := &rolloutRig{t: t, clock: clock, lab: map[string]*lab.Host{}, inGroup: map[string][]string{}}
	var inv bytes.Buffer
	var images []win2003.InstallerImage
	for i, g := range groups {
		f, err := lab.Start(context.Background(), lab.Config{Hosts: g.n, Scenario: g.scenario, Clock: clock, Port: -1,
			Password: labPassword, InstallerSize: 32 << 10, FirstAddr: netip.AddrFrom4([4]byte{127, 0, byte(20 + i), 1})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		fmt.Fprintf(&inv, "[%s]\n", g.name)
		for _, h := range f.Hosts() {
			fmt.Fprintln(&inv, h.Addr)
			r.lab[h.Addr] = h
			r.inGroup[g.name] = append(r.inGroup[g.name], h.Addr)
		}
		for _, img := range f.Images() {
			if !slices.ContainsFunc(images, func(o win2003.InstallerImage) bool { return o.Name == img.Name }) {
				images = append(images, img)
			}
		}
	}
	installers := filepath.Join(dir, "installers")
	if err := lab.WriteInstallers(installers, images); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), inv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r.file = filepath.Join(dir, "waves.yaml")
	if err := os.WriteFile(r.file, []byte("inventory: hosts.txt\n"+wavesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	w, parsed, err := remediate.LoadWaves(r.file, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.waves = w
	if r.hosts, err = remediate.ResolveTargets(parsed, remediate.TargetDefaults{User: "Administrator"}); err != nil {
		t.Fatal(err)
	}
	pb := playbooks.Default()
	if r.in, err = remediate.LoadInstallers(installers, pb, nil); err != nil {
		t.Fatal(err)
	}
	timing := remediate.TimingFrom(pb.Steps)
	timing.Poll = remediate.Duration(2 * time.Minute)
	timing.Soak = remediate.Duration(soak)
	r.opts = remediate.Options{Stage: remediate.StagePush, Warmup: "remote", InstallerDir: installers, Timing: timing}
	if r.j, err = journal.Open(filepath.Join(dir, "journal.db"), journal.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.j.Close() })
	return r
}

// drive runs clock on virtual time until the test ends.
func drive(t *testing.T, clock *win2003.Clock) {
	ctx, stop := context.WithCancel(context.Background())
	go clock.Drive(ctx)
	t.Cleanup(stop)
}

// rollout returns a Rollout of the rig as a new runner with its own run in the journal.
func (r *rolloutRig) rollout(runID string) *remediate.Rollout {
	r.t.Helper()
	if err := r.j.StartRun(journal.Run{ID: runID, Command: "waves run", Inventory: remediate.LockName(r.file), Started: r.clock.Now()}); err != nil {
		r.t.Fatal(err)
	}
	clock := lab.EngineClock{C: r.clock}
	e := &remediate.Engine{Dial: remediate.WinRMDialer(labPassword, remote.WithSleep(clock.Sleep)), Clock: clock}
	var mu sync.Mutex
	seen := map[string]bool{}
	e.Events = func(ev remediate.HostStep) {
		mu.Lock()
		first := !seen[ev.Host]
		seen[ev.Host] = true
		mu.Unlock()
		if first {
			r.check(r.j.PutHost(journal.HostState{RunID: runID, Host: ev.Host, Step: string(ev.Step), Started: ev.At}))
		}
		r.check(r.j.AddStep(journal.StepEvent{RunID: runID, Host: ev.Host, Step: string(ev.Step), State: string(ev.State), Detail: ev.Detail, At: ev.At}))
	}
	e.HostDone = func(h remediate.HostResult) {
		r.check(r.j.PutHost(journal.HostState{RunID: runID, Host: h.Host.Entry, VerdictBefore: string(h.Verdict),
			Outcome: string(h.Outcome), Step: string(h.Step), Evidence: h.Evidence, Ended: r.clock.Now()}))
	}
	return &remediate.Rollout{Waves: r.waves, Hosts: r.hosts, Engine: e, Journal: r.j, Installers: r.in, Options: r.opts,
		Tool: "iisremedy test", RunID: runID, Holder: journal.LockHolder{Host: "control", PID: len(runID), RunID: runID}}
}

func (r *rolloutRig) check(err error) {
	if err != nil {
		r.t.Error(err)
	}
}

// deadline is a context that ends once d of simulated time has passed, so that a rollout that
// would wait for ever fails the test on virtual time instead of hanging it.
func (r *rolloutRig) deadline(d time.Duration) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	timer := r.clock.AfterFunc(d, cancel)
	r.t.Cleanup(func() { timer.Stop(); cancel() })
	return ctx
}

// disruptions are the instants an install or a restart began on a host, from the host's own logs.
func disruptions(h *lab.Host) []time.Time {
	var out []time.Time
	for _, run := range h.Model.InstallerRuns() {
		out = append(out, run.Start)
	}
	for _, c := range h.Model.Commands() {
		if strings.HasPrefix(c.CommandLine, "shutdown ") {
			out = append(out, c.Start)
		}
	}
	return out
}

// span is a window occurrence as the test computes it by hand, in UTC.
type span struct{ from, to time.Time }

func (s span) has(t time.Time) bool { return !t.Before(s.from) && t.Before(s.to) }

func (s span) String() string {
	return s.from.UTC().Format("2006-01-02 15:04") + " to " + s.to.UTC().Format("2006-01-02 15:04 UTC")
}

// checkDisruptionsIn fails for any install or restart of the rig's hosts that began outside
// the spans; it returns the installs' start times, sorted.
func (r *rolloutRig) checkDisruptionsIn(spans ...span) []time.Time {
	r.t.Helper()
	var installs []time.Time
	for entry, h := range r.lab {
		for _, at := range disruptions(h) {
			if !slices.ContainsFunc(spans, func(s span) bool { return s.has(at) }) {
				r.t.Errorf("%s: an install or restart began at %s, outside the window %v", entry, at.UTC(), spans)
			}
		}
		for _, run := range h.Model.InstallerRuns() {
			installs = append(installs, run.Start)
		}
	}
	slices.SortFunc(installs, time.Time.Compare)
	return installs
}

// checkRemediatedOnce fails unless every host of the groups ran the installer exactly once and
// ended remediated in the journal.
func (r *rolloutRig) checkRemediatedOnce(groups ...string) {
	r.t.Helper()
	outcome := r.outcomes()
	for _, g := range groups {
		for _, entry := range r.inGroup[g] {
			if runs := r.lab[entry].Model.InstallerRuns(); len(runs) != 1 {
				r.t.Errorf("%s (%s): %d installer runs, want 1: %+v", entry, g, len(runs), runs)
			}
			if outcome[entry] != journal.OutcomeRemediated {
				r.t.Errorf("%s (%s): the journal's last outcome is %q, want remediated", entry, g, outcome[entry])
			}
		}
	}
}

// outcomes are the hosts' last outcomes in the journal, over every run of the waves file.
func (r *rolloutRig) outcomes() map[string]string {
	r.t.Helper()
	runs, err := r.j.Runs(0)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for i := len(runs) - 1; i >= 0; i-- { // oldest first: the newest outcome wins
		hosts, err := r.j.Hosts(runs[i].ID)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, h := range hosts {
			if h.Outcome != "" {
				out[h.Host] = h.Outcome
			}
		}
	}
	return out
}

// waveStates are the journal's states of the rig's waves, by name.
func (r *rolloutRig) waveStates() map[string]journal.WaveState {
	r.t.Helper()
	states, err := r.j.Waves(remediate.LockName(r.file))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]journal.WaveState{}
	for _, s := range states {
		out[s.Wave] = s
	}
	return out
}

// commandCount is how many commands the hosts of a group received.
func (r *rolloutRig) commandCount(g string) int {
	n := 0
	for _, entry := range r.inGroup[g] {
		n += len(r.lab[entry].Model.Commands())
	}
	return n
}

func utc(year int, month time.Month, day, hour, min int) time.Time {
	return time.Date(year, month, day, hour, min, 0, 0, time.UTC)
}

// TestRolloutWaitsForWindow: a wave whose window opens later waits for it on the engine's
// clock, recorded as waiting in the journal; no install or restart reaches a host before it
// opens, with staging ahead of the window or without, and the hosts go in as it opens.
func TestRolloutWaitsForWindow(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	for _, ahead := range []bool{false, true} {
		t.Run(fmt.Sprintf("stage_ahead=%v", ahead), func(t *testing.T) {
			clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
			r := newRolloutRig(t, clock, true, 10*time.Minute, []group{{"web", "affected", 3}}, fmt.Sprintf(`stage_ahead: %v
waves:
  - name: night
    groups: [web]
    window: {zone: UTC, from: "2026-06-02 22:00", to: "2026-06-03 04:00"}
`, ahead))
			opens := utc(2026, 6, 2, 22, 0)
			ro := r.rollout("r1")
			var waiting []remediate.RolloutEvent
			ro.Notify = func(ev remediate.RolloutEvent) {
				if ev.What == "waiting-window" {
					waiting = append(waiting, ev)
					if st := r.waveStates()["night"]; st.Status != journal.WaveWaitingWindow {
						t.Errorf("while it waits, the journal says the wave is %q", st.Status)
					}
				}
			}
			if err := ro.Run(r.deadline(7 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			if len(waiting) != 1 || !waiting[0].Until.Equal(opens) {
				t.Errorf("waiting events %+v, want one until %s", waiting, opens)
			}
			installs := r.checkDisruptionsIn(span{opens, utc(2026, 6, 3, 4, 0)})
			if len(installs) == 0 || installs[0].Sub(opens) > time.Minute {
				t.Errorf("installs began at %v, want the first as the window opens at %s", installs, opens)
			}
			for entry, h := range r.lab {
				var before int
				for _, c := range h.Model.Commands() {
					if c.Start.Before(opens) {
						before++
					}
				}
				if staged := before > 0; staged != ahead {
					t.Errorf("%s: %d commands before the window opened (stage_ahead %v)", entry, before, ahead)
				}
			}
			r.checkRemediatedOnce("web")
			if st := r.waveStates()["night"]; st.Status != journal.WaveDone {
				t.Errorf("wave night: %+v, want done", st)
			}
		})
	}
}

// TestRolloutWindowAcrossMidnightAndDST: a Saturday-night window in Europe/Madrid, 23:00 to
// 03:30 on the nights the clocks change, hosts one at a time, each about two hours long. In
// March the night is an hour shorter: the window closes at 01:30 UTC, so the third host, due
// at about 02:00 UTC, waits for the next Saturday, whose window opens at 21:00 UTC in summer
// time. In October the night is an hour longer: the third host installs after 01:30 UTC, in
// the hour the change gives back. Either way the second host starts after local midnight.
func TestRolloutWindowAcrossMidnightAndDST(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	madrid, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		start time.Time
		soak  time.Duration // sets each host's length
		spans []span        // the window's occurrences the hosts need, in UTC
		third time.Time     // the third install begins at or after it
	}{
		{"spring", utc(2026, 3, 27, 12, 0), 84 * time.Minute,
			[]span{{utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 1, 30)}, {utc(2026, 4, 4, 21, 0), utc(2026, 4, 5, 1, 30)}},
			utc(2026, 4, 4, 21, 0)},
		{"autumn", utc(2026, 10, 23, 12, 0), 106 * time.Minute,
			[]span{{utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 2, 30)}},
			utc(2026, 10, 25, 1, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && tc.name == "spring" {
				t.Skip("-short (CI's race run): the autumn change alone")
			}
			clock := win2003.NewManualClock(tc.start)
			r := newRolloutRig(t, clock, true, tc.soak, []group{{"web", "affected", 3}}, `waves:
  - name: night
    groups: [web]
    parallel: 1
    window: {zone: Europe/Madrid, days: [sat], start: "23:00", end: "03:30"}
`)
			if err := r.rollout("r1").Run(r.deadline(14 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			installs := r.checkDisruptionsIn(tc.spans...)
			if len(installs) != 3 {
				t.Fatalf("installs at %v, want 3", installs)
			}
			if d := installs[0].Sub(tc.spans[0].from); d < 0 || d > time.Minute {
				t.Errorf("the first install began at %s, want as the window opens at %s", installs[0].UTC(), tc.spans[0].from)
			}
			if local := installs[1].In(madrid); local.Weekday() != time.Sunday || !tc.spans[0].has(installs[1]) {
				t.Errorf("the second install began at %s, want on Sunday after midnight in the first window", local)
			}
			if installs[2].Before(tc.third) || installs[2].Sub(tc.third) > time.Hour {
				t.Errorf("the third install began at %s, want within the hour after %s", installs[2].UTC(), tc.third)
			}
			r.checkRemediatedOnce("web")
		})
	}
}

// TestRolloutHaltsPastThreshold: the canary's hosts fail their install; once two have failed,
// the wave's threshold, the third is not started, the rollout stops with ErrHalted and the
// reason in the journal, and the next wave's hosts never hear from the tool.
func TestRolloutHaltsPastThreshold(t *testing.T) {
	clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
	r := newRolloutRig(t, clock, true, 10*time.Minute, []group{{"canary", "installer-fails", 3}, {"farm", "affected", 3}}, `waves:
  - name: canary
    groups: [canary]
    parallel: 1
    max_failures: 2
  - name: farm
    groups: [farm]
`)
	// A failing install ends within two minutes, when its task's own start time would run it
	// again: polls as short as the playbook's see it end and delete the task first.
	r.opts.Timing.Poll = remediate.Duration(15 * time.Second)
	err := r.rollout("r1").Run(r.deadline(7 * 24 * time.Hour))
	if !errors.Is(err, remediate.ErrHalted) || !strings.Contains(err.Error(), "canary") {
		t.Fatalf("err %v, want ErrHalted at wave canary", err)
	}
	const reason = "2 hosts failed, the run's threshold is 2"
	states := r.waveStates()
	if st := states["canary"]; st.Status != journal.WaveHalted || !strings.Contains(st.Reason, reason) {
		t.Errorf("wave canary in the journal: %+v, want halted: %s", st, reason)
	}
	if st, ok := states["farm"]; ok {
		t.Errorf("wave farm in the journal: %+v, want never started", st)
	}
	outcome := r.outcomes()
	canary := r.inGroup["canary"]
	for i, entry := range canary {
		runs := r.lab[entry].Model.InstallerRuns()
		switch {
		case i < 2 && (len(runs) != 1 || outcome[entry] != journal.OutcomeRemediationFailed):
			t.Errorf("%s: %d installs, outcome %q; want one that failed", entry, len(runs), outcome[entry])
		case i == 2 && (len(runs) != 0 || outcome[entry] != journal.OutcomeInterrupted):
			t.Errorf("%s, after the threshold: %d installs, outcome %q; want none, interrupted", entry, len(runs), outcome[entry])
		}
	}
	for _, c := range r.lab[canary[2]].Model.Commands() {
		if c.Wrote {
			t.Errorf("%s, after the threshold, was changed: %s", canary[2], c.CommandLine)
		}
	}
	if n := r.commandCount("farm"); n != 0 {
		t.Errorf("the halted rollout sent %d commands to the next wave's hosts", n)
	}
}

// TestRolloutWindowClosesMidWave: a daily window of 105 minutes and four hosts one at a time,
// each about 46 minutes long. The third host's install is running when the window closes: it
// runs to its end, then the host stops before its restart and the fourth is not started. The
// next evening's window picks up where it stopped: the third host restarts without installing
// again, then the fourth goes through.
func TestRolloutWindowClosesMidWave(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
	r := newRolloutRig(t, clock, true, 10*time.Minute, []group{{"web", "affected", 4}}, `waves:
  - name: evening
    groups: [web]
    parallel: 1
    window: {zone: UTC, days: daily, start: "22:00", end: "23:45"}
`)
	first := span{utc(2026, 6, 1, 22, 0), utc(2026, 6, 1, 23, 45)}
	second := span{utc(2026, 6, 2, 22, 0), utc(2026, 6, 2, 23, 45)}
	ro := r.rollout("r1")
	var closed []string
	ro.Notify = func(ev remediate.RolloutEvent) {
		if ev.What == "window-closed" {
			closed = append(closed, ev.Detail)
		}
	}
	if err := ro.Run(r.deadline(7 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(closed) != 1 || !strings.Contains(closed[0], "2 hosts") {
		t.Errorf("window-closed events %q, want one with 2 hosts waiting", closed)
	}
	r.checkDisruptionsIn(first, second)
	r.checkRemediatedOnce("web")
	web := r.inGroup["web"]
	third := r.lab[web[2]].Model
	if runs := third.InstallerRuns(); len(runs) == 0 || !first.has(runs[0].Start) || !runs[0].End.After(first.to) || runs[0].Killed {
		t.Errorf("%s: installs %+v, want one begun in the first window that ran to its end after it closed", web[2], runs)
	}
	for i, entry := range web {
		for _, at := range disruptions(r.lab[entry]) {
			if want := i < 2 || i == 2 && at.Before(first.to); first.has(at) != want {
				t.Errorf("%s: an install or restart at %s; in the first window: %v, want %v", entry, at.UTC(), first.has(at), want)
			}
		}
	}
	// The journal says where the third host stopped: before its restart, in the first window.
	steps, err := r.j.Steps("r1", web[2])
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, st := range steps {
		between := span{first.to, second.from}.has(st.At)
		stopped = stopped || st.Step == string(remediate.StepReboot) && st.State == journal.StepSkipped && between
	}
	if !stopped {
		t.Errorf("%s: no skipped restart after the first window in the journal: %+v", web[2], steps)
	}
}

// TestRolloutResumes: a rollout stopped in its second wave, by cancelling its context once a
// host of that wave is remediated, or by a drain while a host installs, is carried on by a new
// runner on the same journal. The new runner starts at the second wave and its hosts not
// remediated: the first wave and the host already done get no command at all, the drained host
// restarts without installing again, and every host ran the installer exactly once.
func TestRolloutResumes(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	for _, how := range []string{"cancel", "drain"} {
		t.Run(how, func(t *testing.T) {
			clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
			r := newRolloutRig(t, clock, true, 10*time.Minute, []group{{"first", "affected", 2}, {"second", "affected", 3}}, `waves:
  - name: first
    groups: [first]
    parallel: 1
  - name: second
    groups: [second]
    parallel: 1
`)
			second := r.inGroup["second"]
			ctx, cancel := context.WithCancel(r.deadline(7 * 24 * time.Hour))
			defer cancel()
			drain := make(chan struct{})
			ro := r.rollout("r1")
			ro.Drain = drain
			record := ro.Engine.Events
			ro.Engine.Events = func(ev remediate.HostStep) {
				record(ev)
				switch {
				case how == "cancel" && ev.Host == second[0] && ev.Step == remediate.StepVerify && ev.State == remediate.StepDone:
					cancel()
				case how == "drain" && ev.Host == second[0] && ev.Step == remediate.StepInstall && ev.State == remediate.StepStarted:
					close(drain)
				}
			}
			err := ro.Run(ctx)
			if how == "cancel" && !errors.Is(err, context.Canceled) || how == "drain" && !errors.Is(err, remediate.ErrStopped) {
				t.Fatalf("the first runner: %v", err)
			}
			states := r.waveStates()
			if states["first"].Status != journal.WaveDone || states["second"].Status != journal.WaveRunning {
				t.Errorf("waves after the first runner: %+v", states)
			}
			untouched := append([]string(nil), r.inGroup["first"]...)
			if how == "cancel" {
				untouched = append(untouched, second[0])
			}
			before := map[string]int{}
			for _, entry := range untouched {
				before[entry] = len(r.lab[entry].Model.Commands())
			}

			if err := r.rollout("r2").Run(r.deadline(7 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			for _, entry := range untouched {
				if n := len(r.lab[entry].Model.Commands()); n != before[entry] {
					t.Errorf("%s, remediated by the first runner, got %d commands from the second", entry, n-before[entry])
				}
			}
			hosts, err := r.j.Hosts("r2")
			if err != nil {
				t.Fatal(err)
			}
			var worked []string
			for _, h := range hosts {
				worked = append(worked, h.Host)
			}
			if want := second[len(second)-len(worked):]; len(worked) == 0 || !slices.Equal(worked, want) {
				t.Errorf("the second runner worked on %v, want %v", worked, want)
			}
			r.checkRemediatedOnce("first", "second")
			if st := r.waveStates()["second"]; st.Status != journal.WaveDone {
				t.Errorf("wave second: %+v, want done", st)
			}
		})
	}
}

// TestRolloutLock: while a runner holds the waves file, waiting for its window, a second
// runner is refused with the first one named, and still is a quarter of an hour later, since the
// first one's heartbeat keeps its lock fresh (the clock is moved by hand, a minute at a time).
// A dead runner's lock is refused while its last heartbeat is 9 minutes old and taken over
// at 11, past the staleness of 10; the runner that took it over does the rollout.
func TestRolloutLock(t *testing.T) {
	clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
	r := newRolloutRig(t, clock, false, 10*time.Minute, []group{{"web", "affected", 1}}, `waves:
  - name: night
    groups: [web]
    window: {zone: UTC, from: "2026-06-01 12:00", to: "2026-06-01 18:00"}
`)
	name := remediate.LockName(r.file)
	refused := func(runID, holder string) {
		t.Helper()
		// A runner that got the lock would wait for the window on a clock nobody moves: its
		// first event ends it, and the test fails rather than hangs.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ro := r.rollout(runID)
		ro.Notify = func(remediate.RolloutEvent) { cancel() }
		var locked *journal.LockedError
		if err := ro.Run(ctx); !errors.As(err, &locked) || locked.Holder.RunID != holder {
			t.Fatalf("runner %s at %s: %v, want the lock refused, held by %s", runID, clock.Now().UTC(), err, holder)
		}
	}

	first := r.rollout("r1")
	waiting := make(chan struct{})
	first.Notify = func(ev remediate.RolloutEvent) {
		if ev.What == "waiting-window" {
			close(waiting)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("the first runner ended before waiting for its window: %v", err)
	}
	refused("r2", "r1")
	for range 15 {
		// The first runner's two timers, its wait and its next heartbeat, are set: the
		// heartbeat of the minute before has been written.
		clock.WaitPending(ctx, 2)
		clock.Advance(time.Minute)
	}
	clock.WaitPending(ctx, 2)
	refused("r3", "r1")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first runner, cancelled: %v", err)
	}
	if n := r.commandCount("web"); n != 0 {
		t.Fatalf("%d commands reached the host before its window", n)
	}

	dead := journal.LockHolder{Host: "old-control", PID: 7, RunID: "r0"}
	plant := func(age time.Duration) {
		t.Helper()
		if _, err := r.j.Lock(name, dead, clock.Now().Add(-age), 0); err != nil {
			t.Fatal(err)
		}
	}
	plant(9 * time.Minute)
	refused("r4", "r0")
	plant(11 * time.Minute)
	drive(t, clock)
	ro := r.rollout("r5")
	ro.Notify = func(ev remediate.RolloutEvent) {
		if ev.What == "started" {
			var locked *journal.LockedError
			if _, err := r.j.Lock(name, dead, clock.Now(), 10*time.Minute); !errors.As(err, &locked) || locked.Holder.RunID != "r5" {
				t.Errorf("while the wave runs, the lock: %v, want held by r5", err)
			}
		}
	}
	if err := ro.Run(r.deadline(7 * 24 * time.Hour)); err != nil {
		t.Fatalf("the runner taking the stale lock over: %v", err)
	}
	r.checkRemediatedOnce("web")
	if _, err := r.j.Lock(name, dead, clock.Now(), 0); err != nil {
		t.Errorf("the lock after the rollout: %v, want released", err)
	}
}

// TestRolloutWaitsForApproval: a wave that asks for approval holds the next one; recording
// the approval in the journal as `waves approve` does, six hours on, lets it start, at the
// rollout's next look.
func TestRolloutWaitsForApproval(t *testing.T) {
	clock := win2003.NewManualClock(utc(2026, 6, 1, 9, 0))
	r := newRolloutRig(t, clock, true, 10*time.Minute, []group{{"canary", "affected", 1}, {"farm", "affected", 2}}, `waves:
  - name: canary
    groups: [canary]
    after: approve
  - name: farm
    groups: [farm]
`)
	const poll = 10 * time.Minute
	ro := r.rollout("r1")
	ro.Poll = poll
	approval := make(chan time.Time, 1)
	asked := 0
	ro.Notify = func(ev remediate.RolloutEvent) {
		if ev.What != "waiting-approval" || ev.Wave != "canary" {
			return
		}
		asked++
		if st := r.waveStates()["canary"]; st.Status != journal.WaveDone {
			t.Errorf("waiting for approval, wave canary is %q, want done", st.Status)
		}
		// The approver takes part in the virtual clock from here, so that it cannot
		// jump past the approval.
		actx, leave := lab.EngineClock{C: clock}.Join(context.Background())
		go func() {
			defer leave()
			if !clock.Sleep(actx, 6*time.Hour) {
				return
			}
			at := clock.Now()
			r.check(r.j.Approve(remediate.LockName(r.file), "canary", "alice@control", at))
			approval <- at
		}()
	}
	if err := ro.Run(r.deadline(3 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	var approved time.Time
	select {
	case approved = <-approval:
	default:
	}
	if asked != 1 || approved.IsZero() {
		t.Fatalf("asked for approval %d times, approved at %v; want once, approved", asked, approved)
	}
	var first time.Time
	for _, entry := range r.inGroup["farm"] {
		for _, c := range r.lab[entry].Model.Commands() {
			if first.IsZero() || c.Start.Before(first) {
				first = c.Start
			}
		}
	}
	if first.Before(approved) || first.Sub(approved) > poll {
		t.Errorf("the held wave's first command at %s, want within %s after the approval at %s", first.UTC(), poll, approved.UTC())
	}
	ok, a, err := r.j.Approved(remediate.LockName(r.file), "canary")
	if err != nil || !ok || a.By != "alice@control" {
		t.Errorf("the journal's approval: %v %+v %v", ok, a, err)
	}
	r.checkRemediatedOnce("canary", "farm")
}
