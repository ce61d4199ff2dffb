package remediate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remote"
)

// Outcome is how a host's remediation ended (docs/design.md §8.3).
type Outcome string

// The outcomes.
const (
	Remediated        Outcome = "remediated"         // verified: pools up through the soak, files at the baseline
	RemediationFailed Outcome = "remediation-failed" // a step failed; Step and Evidence say which and why
	RefusedDrift      Outcome = "refused-drift"      // the host's facts changed since the plan
	NotPlanned        Outcome = "not-planned"        // the plan does nothing to this host
	Interrupted       Outcome = "interrupted"        // stopped at a safe point, or never started; a rerun resumes
	Staged            Outcome = "staged"             // iisremedy stage: the installer is on the host, proven
)

// HostResult is what a remediation did to one host.
type HostResult struct {
	Host     Host
	Verdict  playbooks.Verdict // the verdict the plan acted on
	Outcome  Outcome
	Step     Step // the step the host stopped at or failed in ("" when remediated)
	Evidence []string
	Facts    *checks.Facts // the last probe's facts
}

// CommandRecord is one remote command, for the journal's transcript.
type CommandRecord struct {
	Host        string
	Step        Step
	At          time.Time
	Duration    time.Duration
	CommandLine string
	ExitCode    int
	Stdout      []byte
	Stderr      []byte
	Err         error
}

// Run is one remediation run of a plan.
type Run struct {
	ID         string // names the run on the hosts (task markers, the shutdown comment)
	Plan       *Plan
	Installers *Installers // the checked installer files (push and pull)
	Pull       *PullServer // serves the installers when a host stages by pull
	// Drain, when closed, lets every host reach a safe point: no new install or reboot starts,
	// a running step is followed to its end (the first Ctrl-C). Cancelling ctx stops at once.
	Drain <-chan struct{}
	// Drained, when set, hears once that Drain has been seen and every install or restart
	// that passed its last check before has been sent: from then on none starts.
	Drained func()
	// MaxFailures stops starting new hosts once this many have failed (0 = no limit);
	// MaxFailurePercent does the same for a share of the planned hosts (0 = no limit).
	MaxFailures       int
	MaxFailurePercent float64
	// Done names hosts a previous run of the plan already remediated: they are left alone.
	Done map[string]bool
	// Resumes names earlier runs this one carries on (a rollout's earlier runners of its waves
	// file). An install that this run or one of them finished with success is not run again,
	// though the host was planned anew: a rollout plans again in each window, so the plan alone
	// does not say that a host stopped before its restart has its install behind it.
	Resumes map[string]bool
	// StageOnly stops every host after its installer is staged and proven (iisremedy stage).
	StageOnly bool
	// Parallel is how many hosts are worked on at once (0 = the engine's Parallel).
	Parallel int
	// Window, when set, says whether the maintenance window is open at an instant of the
	// engine's clock: outside it no install or reboot starts (a host stops at a safe point, and
	// no host starts), while running steps go on to their end.
	Window func(time.Time) bool

	acts     sync.RWMutex // held shared by each disruptive act from its last check until sent
	draining atomic.Bool  // set under acts once Drain is seen
}

// gate sets draining once Drain is closed and the acts past their last check have been sent,
// then tells Drained; stop ends it.
func (r *Run) gate() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-r.Drain:
		case <-done:
			return
		}
		r.acts.Lock()
		r.draining.Store(true)
		r.acts.Unlock()
		if r.Drained != nil {
			r.Drained()
		}
	}()
	return func() { close(done); <-finished }
}

// ErrStopped reports a run that stopped starting hosts: drained, or its failure threshold reached.
var ErrStopped = errors.New("run stopped")

// Remediate works through the plan's hosts, at most Parallel at once: each planned host is
// probed again (a host whose facts drifted is refused), its installer staged, installed, the
// host rebooted, its pools started and watched through the soak window. It returns one result
// per plan host, in plan order, and ErrStopped (wrapped with the reason) when it stopped
// starting hosts because of Drain or the failure threshold.
func (e *Engine) Remediate(ctx context.Context, r *Run) ([]HostResult, error) {
	defer r.gate()()
	hosts := r.Plan.Hosts
	results := make([]HostResult, len(hosts))
	var failures atomic.Int64
	var stopped atomic.Value // string: why no more hosts start
	planned := 0
	for _, ph := range hosts {
		if ph.Action == ActionRemediate {
			planned++
		}
	}
	limit := int64(r.MaxFailures)
	if r.MaxFailurePercent > 0 {
		if n := int64(float64(planned) * r.MaxFailurePercent / 100); limit == 0 || n < limit {
			limit = max(n, 1)
		}
	}
	reason := func() string {
		select {
		case <-r.Drain:
			return "the run was drained before this host started"
		default:
		}
		if r.Window != nil && !r.StageOnly && !r.Window(e.clock().Now()) {
			return "the maintenance window closed before this host started"
		}
		if s, ok := stopped.Load().(string); ok {
			return s
		}
		return ""
	}
	e.forEach(ctx, len(hosts), r.Parallel, func(ctx context.Context, i int) {
		ph := hosts[i]
		h := ph.host()
		if why := reason(); why != "" && ph.Action == ActionRemediate && !r.Done[h.Entry] {
			results[i] = HostResult{Host: h, Verdict: ph.Verdict, Outcome: Interrupted, Step: StepProbe, Evidence: []string{why}}
			e.emit(h.Entry, StepProbe, StepSkipped, why)
			e.hostDone(results[i])
			return
		}
		results[i] = e.remediateOne(ctx, r, ph)
		e.hostDone(results[i])
		if results[i].Outcome == RemediationFailed || results[i].Outcome == RefusedDrift {
			if n := failures.Add(1); limit > 0 && n >= limit {
				stopped.CompareAndSwap(nil, fmt.Sprintf("not started: %d hosts failed, the run's threshold is %d", n, limit))
			}
		}
	}, func(i int) {
		ph := hosts[i]
		results[i] = HostResult{Host: ph.host(), Verdict: ph.Verdict, Outcome: Interrupted, Step: StepProbe,
			Evidence: []string{"the run was interrupted before this host started"}}
		e.hostDone(results[i])
	})
	if ctx.Err() != nil {
		return results, ctx.Err()
	}
	select {
	case <-r.Drain:
		return results, fmt.Errorf("%w: drained", ErrStopped)
	default:
	}
	if s, ok := stopped.Load().(string); ok {
		return results, fmt.Errorf("%w: %s", ErrStopped, s)
	}
	return results, nil
}

func (e *Engine) hostDone(r HostResult) {
	if e.HostDone == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.HostDone(r)
}

// stepError is a failed step with the evidence of why.
type stepError struct {
	step     Step
	evidence []string
}

func (s *stepError) Error() string { return string(s.step) + ": " + strings.Join(s.evidence, " ") }

func fail(step Step, format string, args ...any) *stepError {
	return &stepError{step: step, evidence: []string{fmt.Sprintf(format, args...)}}
}

// errDrained stops a host at a safe point.
type errDrained struct{ before Step }

func (e errDrained) Error() string { return "drained before " + string(e.before) }

// hostRun is one host's pipeline: its plan, the live session and what the steps learned.
type hostRun struct {
	e     *Engine
	r     *Run
	ph    PlanHost
	h     Host
	s     Session
	facts *checks.Facts
	step  Step
	// offset is the host's clock minus the engine's, from the probe: task start times are
	// written in the host's local time.
	offset time.Duration
	zone   *time.Location
	work   string // the host's work folder
	// installEnded is when the install step saw the installer finish (engine clock), for the
	// reboot step's check that the host booted since.
	installer   string // W\SHA.exe
	installCode int
	restarted   time.Time // host time when the pools step began
	notes       []string
	// secret is the pull token of the host's transfer, kept out of the transcript.
	secret string
}

func (e *Engine) remediateOne(ctx context.Context, r *Run, ph PlanHost) (res HostResult) {
	h := ph.host()
	res = HostResult{Host: h, Verdict: ph.Verdict}
	if ph.Action == ActionBlocked {
		res.Outcome, res.Step, res.Evidence = RemediationFailed, StepStage, []string{"blocked: " + ph.Reason}
		e.emit(h.Entry, StepStage, StepFailed, "blocked: "+ph.Reason)
		return res
	}
	if ph.Action != ActionRemediate {
		res.Outcome, res.Evidence = NotPlanned, []string{ph.Reason}
		e.emit(h.Entry, StepProbe, StepSkipped, "not planned: "+ph.Reason)
		return res
	}
	if r.Done[h.Entry] {
		res.Outcome, res.Evidence = Remediated, []string{"remediated by an earlier run of this plan"}
		e.emit(h.Entry, StepVerify, StepSkipped, "remediated by an earlier run of this plan")
		return res
	}
	hr := &hostRun{e: e, r: r, ph: ph, h: h}
	defer hr.close(ctx)
	defer func() {
		if p := recover(); p != nil {
			res.Outcome, res.Step = RemediationFailed, hr.step
			res.Evidence = []string{fmt.Sprintf("internal error (a bug of iisremedy): %v", p)}
			e.emit(h.Entry, hr.step, StepFailed, "internal error")
		}
	}()
	steps := []struct {
		step Step
		run  func(context.Context) error
	}{
		{StepProbe, hr.probe},
		{StepStage, hr.stage},
		{StepInstall, hr.install},
		{StepReboot, hr.reboot},
		{StepPools, hr.pools},
		{StepVerify, hr.verify},
	}
	if r.StageOnly {
		steps = steps[:2]
	}
	for _, st := range steps {
		hr.step = st.step
		if drained(r.Drain) && st.step != StepProbe {
			return hr.result(Interrupted, []string{fmt.Sprintf("stopped at a safe point before %s: the run was drained; a rerun of the plan resumes here", st.step)})
		}
		if disruptive(st.step) && r.Window != nil && !r.Window(e.clock().Now()) {
			e.emit(h.Entry, st.step, StepSkipped, "the maintenance window is closed")
			return hr.result(Interrupted, []string{fmt.Sprintf("stopped at a safe point before %s: the maintenance window closed; the next window resumes here", st.step)})
		}
		e.emit(h.Entry, st.step, StepStarted, "")
		err := st.run(ctx)
		var se *stepError
		var drift *driftError
		var dr errDrained
		switch {
		case err == nil:
			e.emit(h.Entry, st.step, StepDone, hr.doneDetail(st.step))
			continue
		case errors.As(err, &dr):
			e.emit(h.Entry, st.step, StepSkipped, dr.Error())
			return hr.result(Interrupted, []string{fmt.Sprintf("stopped at a safe point before %s: the run was drained; a rerun of the plan resumes here", dr.before)})
		case ctx.Err() != nil:
			e.emit(h.Entry, st.step, StepFailed, "interrupted")
			return hr.result(Interrupted, []string{fmt.Sprintf("interrupted during %s: %v", st.step, err)})
		case errors.As(err, &drift):
			e.emit(h.Entry, st.step, StepFailed, drift.Error())
			return hr.result(RefusedDrift, []string{drift.Error()})
		case errors.As(err, &se):
			e.emit(h.Entry, st.step, StepFailed, se.evidence[0])
			return hr.result(RemediationFailed, se.evidence)
		default:
			e.emit(h.Entry, st.step, StepFailed, err.Error())
			return hr.result(RemediationFailed, []string{err.Error()})
		}
	}
	hr.step = ""
	if r.StageOnly {
		return hr.result(Staged, hr.notes)
	}
	return hr.result(Remediated, append(hr.notes, "Verified: every auto-start pool stayed started through the soak window, no new worker crash, and the core IIS files are at the baseline."))
}

func (hr *hostRun) result(o Outcome, evidence []string) HostResult {
	step := hr.step
	if o == Remediated || o == Staged {
		step = ""
	}
	if o != Remediated && o != Staged {
		evidence = append(append([]string(nil), hr.notes...), evidence...)
	}
	return HostResult{Host: hr.h, Verdict: hr.ph.Verdict, Outcome: o, Step: step, Evidence: evidence, Facts: hr.facts}
}

func (hr *hostRun) doneDetail(step Step) string {
	switch step {
	case StepInstall:
		return fmt.Sprintf("exit code %d", hr.installCode)
	}
	return ""
}

// disruptive steps take a host's sites down; they start only inside the maintenance window.
func disruptive(s Step) bool { return s == StepInstall || s == StepReboot }

func drained(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
	}
	return false
}

// session returns the live session, dialing one when there is none (first use, after a
// reboot, after a broken connection).
func (hr *hostRun) session(ctx context.Context) (Session, error) {
	if hr.s != nil {
		return hr.s, nil
	}
	s, err := hr.e.Dial(ctx, hr.h)
	if err != nil {
		return nil, err
	}
	hr.s = s
	return s, nil
}

func (hr *hostRun) close(ctx context.Context) {
	if hr.s != nil {
		hr.e.closeSession(ctx, hr.s)
		hr.s = nil
	}
}

// drop forgets a session whose connection failed, or whose shell the host no longer knows (its
// idle timeout deleted it while a long install was polled, or WinRM restarted), so the next
// command opens a new one.
func (hr *hostRun) drop(ctx context.Context, err error) {
	var re *remote.Error
	if hr.s != nil && errors.As(err, &re) && (re.Class != remote.ClassFault || re.Code == remote.CodeShellNotFound) {
		hr.close(ctx)
	}
}

// run runs one command that is safe to repeat, and records it; a non-zero exit code is not an
// error. A command that failed on the connection is run again (Engine.Retry), on a new
// connection when the old one broke: hosts on poor links drop connections and answer the odd
// request with a 500, and a run of hours must ride that out.
func (hr *hostRun) run(ctx context.Context, cmdline string) (remote.Result, error) {
	return hr.runInput(ctx, cmdline, nil)
}

// runInput is run with stdin (nil = none). Stdin is given as a function so that a retry sends
// it again from the start.
func (hr *hostRun) runInput(ctx context.Context, cmdline string, stdin func() stdinReader) (remote.Result, error) {
	var res remote.Result
	err := hr.e.retry().Retry(ctx, hr.e.clock().Sleep, func(int) error {
		var err error
		res, err = hr.runOnce(ctx, cmdline, stdin)
		return err
	}, worthRetrying, func(attempt int, wait time.Duration, err error) {
		if hr.e.Logger != nil {
			hr.e.Logger.Debug("running the command again", "host", hr.h.Entry, "step", hr.step, "attempt", attempt+1, "after", wait, "err", err)
		}
	})
	return res, err
}

// runOnce runs a command once: for commands that must not run twice, whose callers decide
// what a failure on the connection means (stdin nil = none).
func (hr *hostRun) runOnce(ctx context.Context, cmdline string, stdin func() stdinReader) (remote.Result, error) {
	s, err := hr.session(ctx)
	if err != nil {
		return remote.Result{}, err
	}
	start := hr.e.clock().Now()
	var res remote.Result
	if stdin != nil {
		in := stdin()
		res, err = s.RunInput(ctx, cmdline, in)
		in.Close()
	} else {
		res, err = s.Run(ctx, cmdline)
	}
	line := cmdline
	if hr.secret != "" {
		// The pull token stays out of the transcript, the evidence and the output.
		line = strings.ReplaceAll(line, hr.secret, "[token]")
		res.Stdout = bytes.ReplaceAll(res.Stdout, []byte(hr.secret), []byte("[token]"))
		res.Stderr = bytes.ReplaceAll(res.Stderr, []byte(hr.secret), []byte("[token]"))
	}
	if hr.e.Commands != nil {
		rec := CommandRecord{Host: hr.h.Entry, Step: hr.step, At: start, Duration: hr.e.clock().Now().Sub(start),
			CommandLine: line, ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr, Err: err}
		hr.e.mu.Lock()
		hr.e.Commands(rec)
		hr.e.mu.Unlock()
	}
	if err != nil {
		hr.drop(ctx, err)
	}
	return res, err
}

// runOK runs a command that must exit 0; anything else fails step with its output.
func (hr *hostRun) runOK(ctx context.Context, cmdline string) (remote.Result, error) {
	res, err := hr.run(ctx, cmdline)
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		return res, fail(hr.step, "%s exited %d: %s", firstWord(cmdline), res.ExitCode, outputTail(res, 300))
	}
	return res, nil
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// outputTail quotes the end of a command's output, stderr first, for evidence.
func outputTail(res remote.Result, n int) string {
	out := strings.TrimSpace(string(res.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(res.Stdout))
	}
	if len(out) > n {
		out = "…" + out[len(out)-n:]
	}
	return fmt.Sprintf("%q", out)
}

// hostNow is the host's local time now, as its clock reads.
func (hr *hostRun) hostNow() time.Time {
	t := hr.e.clock().Now().Add(hr.offset)
	if hr.zone != nil {
		t = t.In(hr.zone)
	}
	return t
}

// probe runs the full probe on the host and refuses it when the facts the plan rests on
// changed.
func (hr *hostRun) probe(ctx context.Context) error {
	hf, s := hr.e.probe(ctx, hr.h)
	if hf.Err != nil {
		return &stepError{step: StepProbe, evidence: hf.Evidence}
	}
	hr.s = s
	hr.learn(hf.Facts)
	if changed := driftOf(hr.ph, hf.Facts); changed != "" {
		return &driftError{host: hr.h.Entry, changed: changed}
	}
	if hr.facts.SystemDrive == "" {
		return fail(StepProbe, "the probe did not establish the system drive")
	}
	hr.work = hr.r.Plan.Options.WorkDir
	if hr.work == "" {
		hr.work = hr.facts.SystemDrive + `\iisremedy`
	}
	return nil
}

// learn keeps what a probe found: the facts and the host's clock.
func (hr *hostRun) learn(f *checks.Facts) {
	hr.facts = f
	if f.LocalTime != nil {
		hr.offset = f.LocalTime.Sub(hr.e.clock().Now())
		hr.zone = f.LocalTime.Location()
	}
}

// driftError refuses a host whose facts differ from the plan's.
type driftError struct {
	host, changed string
}

func (d *driftError) Error() string {
	return fmt.Sprintf("refused: the host changed since the plan was made (%s); make a new plan", d.changed)
}

// pollProbe runs the probe's sections named and returns their facts.
func (hr *hostRun) pollProbe(ctx context.Context, sections ...string) (*checks.Facts, error) {
	res, err := hr.run(ctx, checks.ProbeCommandFor(sections...))
	if err != nil {
		return nil, err
	}
	f, err := checks.ParseFacts(res.Stdout)
	if err != nil {
		return nil, fail(hr.step, "reading %s: %v", strings.Join(sections, ", "), err)
	}
	for _, s := range sections {
		if f.Sections[s] != "ok" {
			return nil, fail(hr.step, "reading %s: the %s section was %s", strings.Join(sections, ", "), s, f.Sections[s])
		}
	}
	return f, nil
}

// sleep waits d on the engine's clock; a drain does not cut it (the caller decides).
func (hr *hostRun) sleep(ctx context.Context, d time.Duration) error {
	return hr.e.clock().Sleep(ctx, d)
}
