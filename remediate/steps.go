package remediate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
)

// planTag marks a host's task markers with the plan they belong to: a marker of another plan
// is stale, except an install still running, which no plan may start twice.
func (hr *hostRun) planTag() string { return "plan=" + hr.r.Plan.Digest[:12] }

// readMarker reads a task's marker file (empty when there is none).
func (hr *hostRun) readMarker(ctx context.Context, path string) (marker, string, error) {
	res, err := hr.run(ctx, typeCmd(path))
	if err != nil {
		return marker{}, "", err
	}
	if res.ExitCode != 0 {
		return marker{}, "", nil
	}
	return parseMarker(res.Stdout), string(res.Stdout), nil
}

// runTask runs body as a one-shot scheduled task as SYSTEM, outside the WinRM shell and its
// quotas, and returns the exit code its marker file records. A task of the same name still
// running (an earlier run's, or another runner's) is waited for, never started twice.
func (hr *hostRun) runTask(ctx context.Context, name string, body []string, timeout time.Duration) (int, error) {
	markerPath := hr.work + `\` + name + ".marker"
	batch := hr.work + `\` + name + ".cmd"
	m, _, err := hr.readMarker(ctx, markerPath)
	if err != nil {
		return 0, err
	}
	if m.Started && !m.Done {
		return hr.awaitTask(ctx, name, markerPath, timeout, m)
	}
	if _, err := hr.runOK(ctx, mkdirCmd(hr.work)); err != nil {
		return 0, err
	}
	if _, err := hr.run(ctx, delCmd(markerPath)); err != nil {
		return 0, err
	}
	text := taskBatch(markerPath, hr.r.ID+" "+hr.planTag(), body)
	if _, err := hr.runInputOK(ctx, writeFileCmd(batch), text); err != nil {
		return 0, err
	}
	res, err := hr.runOK(ctx, intlCmd)
	if err != nil {
		return 0, err
	}
	order, sep := parseIntl(res.Stdout)
	at := hr.hostNow().Add(2 * time.Minute).Truncate(time.Second)
	// Checked before the task exists: a created task runs at its start time, run or not.
	release, err := hr.lastCheck()
	if err != nil {
		return 0, err
	}
	_, err = hr.runOK(ctx, taskCreateCmd(name, batch, at, order, sep))
	if err == nil {
		err = hr.startTask(ctx, name, markerPath)
	}
	release()
	if err != nil {
		return 0, err
	}
	code, err := hr.awaitTask(ctx, name, markerPath, timeout, marker{})
	if err == nil {
		// The task and its batch go; the marker stays as the host's record of what ran.
		_, _ = hr.run(ctx, taskDeleteCmd(name))
		_, _ = hr.run(ctx, delCmd(batch))
	}
	return code, err
}

// lastCheck is the drain's look just before a disruptive step's act (creating and running
// the install's task, shutdown): the step began before the drain perhaps, but its preparation
// takes several commands, and what has not started yet need not. Until release is called,
// once the act's command has returned, the run does not announce its drain (Run.Drained).
func (hr *hostRun) lastCheck() (release func(), err error) {
	if !disruptive(hr.step) {
		return func() {}, nil
	}
	hr.r.acts.RLock()
	if hr.r.draining.Load() || drained(hr.r.Drain) {
		hr.r.acts.RUnlock()
		return nil, errDrained{before: hr.step}
	}
	return hr.r.acts.RUnlock, nil
}

// startTask runs a created task now. schtasks /run is the one task command that must not be
// repeated blindly: when its reply is lost, the task's marker and status say whether it started,
// and it is run again only when it did not.
func (hr *hostRun) startTask(ctx context.Context, name, markerPath string) error {
	for attempt := 1; ; attempt++ {
		res, err := hr.runOnce(ctx, taskRunCmd(name), nil)
		switch {
		case err == nil && res.ExitCode != 0:
			return fail(hr.step, "schtasks /run exited %d: %s", res.ExitCode, outputTail(res, 300))
		case err == nil:
			return nil
		case !worthRetrying(err) || attempt >= hr.e.retry().Attempts:
			return err
		}
		if err := hr.sleep(ctx, hr.e.retry().Initial); err != nil {
			return err
		}
		m, _, err := hr.readMarker(ctx, markerPath)
		if err != nil {
			return err
		}
		q, err := hr.run(ctx, taskQueryCmd)
		if err != nil {
			return err
		}
		if m.Started || taskRunning(q.Stdout, name) {
			return nil
		}
	}
}

// awaitTask polls a task's marker, less often as time goes on, until it records an exit code, the task is seen to have
// stopped without one, or timeout passes (on the engine's clock). Connection failures while
// polling are tolerated until then: a busy host may not answer every poll.
func (hr *hostRun) awaitTask(ctx context.Context, name, markerPath string, timeout time.Duration, seen marker) (int, error) {
	clock := hr.e.clock()
	deadline := clock.Now().Add(timeout)
	poll := hr.r.Plan.Options.Timing.Poll.D()
	idle := 0 // polls that found the task neither marked nor running
	for {
		m, _, err := hr.readMarker(ctx, markerPath)
		if err == nil {
			if m.Done {
				return m.Exit, nil
			}
			q, qerr := hr.run(ctx, taskQueryCmd)
			if qerr == nil && !taskRunning(q.Stdout, name) {
				if idle++; idle >= 3 {
					if m.Started || seen.Started {
						return 0, fail(hr.step, "the task %s (run %s) stopped without recording an exit code; look at the host before running it again", taskName(name), orNone(firstOf(m.RunID, seen.RunID)))
					}
					return 0, fail(hr.step, "the task %s did not start", taskName(name))
				}
			} else if qerr == nil {
				idle = 0
			}
		} else if ctx.Err() != nil {
			return 0, err
		}
		if !clock.Now().Before(deadline) {
			if err != nil {
				return 0, fail(hr.step, "the task %s was not seen to finish within %s; the host's last answer: %v", taskName(name), timeout, err)
			}
			return 0, fail(hr.step, "the task %s did not finish within %s", taskName(name), timeout)
		}
		if err := hr.sleep(ctx, min(poll, deadline.Sub(clock.Now()))); err != nil {
			return 0, err
		}
		// A task that runs for minutes is looked at less often as it goes on: each look
		// starts two processes on the host.
		poll = min(poll*3/2, 4*hr.r.Plan.Options.Timing.Poll.D())
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runInputOK writes text to a command's stdin; the command must exit 0.
func (hr *hostRun) runInputOK(ctx context.Context, cmdline, text string) (struct{}, error) {
	res, err := hr.runInput(ctx, cmdline, func() stdinReader { return textReader(text) })
	if err != nil {
		return struct{}{}, err
	}
	if res.ExitCode != 0 {
		return struct{}{}, fail(hr.step, "%s exited %d: %s", firstWord(cmdline), res.ExitCode, outputTail(res, 300))
	}
	return struct{}{}, nil
}

// installAttempts bounds how often an installer that found another installation running
// (exit 1618) is started again.
const installAttempts = 4

// install runs the staged SP2 installer from a scheduled task and waits for its exit code. An
// install this plan, this run or a run it resumes already finished is not run again; a failed
// one's evidence is the tail of svcpack.log.
func (hr *hostRun) install(ctx context.Context) error {
	pb := playbookNamed(embeddedOr(hr.e.Playbooks), hr.ph.Playbook)
	markerPath := hr.work + `\install.marker`
	m, text, err := hr.readMarker(ctx, markerPath)
	if err != nil {
		return err
	}
	ours := strings.Contains(text, hr.planTag()) || m.RunID == hr.r.ID || hr.r.Resumes[m.RunID]
	if m.Done && ours && slices.Contains(pb.Installer.SuccessExitCodes, m.Exit) {
		hr.installCode = m.Exit
		hr.notes = append(hr.notes, fmt.Sprintf("The installer had already run for this plan or rollout (run %s, exit code %d).", m.RunID, m.Exit))
		return nil
	}
	res, err := hr.run(ctx, pendingRenameCmd)
	if err != nil {
		return err
	}
	if res.ExitCode == 0 && strings.Contains(string(res.Stdout), "PendingFileRenameOperations") {
		hr.notes = append(hr.notes, "A reboot was already pending before the install (PendingFileRenameOperations is set); the reboot after the install completes both.")
	}
	cmd := `"` + hr.installer + `" ` + strings.Join(hr.ph.Installer.Switches, " ")
	timeout := hr.r.Plan.Options.Timing.Install.D()
	for attempt := 1; ; attempt++ {
		code, err := hr.runTask(ctx, "install", []string{cmd}, timeout)
		if err != nil {
			return err
		}
		hr.installCode = code
		if slices.Contains(pb.Installer.SuccessExitCodes, code) {
			return nil
		}
		if code == exitInstallBusy && attempt < installAttempts {
			hr.e.emit(hr.h.Entry, StepInstall, StepStarted, "another installation is running (exit code 1618); waiting to try again")
			if err := hr.sleep(ctx, 4*hr.r.Plan.Options.Timing.Poll.D()); err != nil {
				return err
			}
			continue
		}
		return hr.installFailed(ctx, pb, code)
	}
}

// exitInstallBusy is Windows Installer's ERROR_INSTALL_ALREADY_RUNNING, which the SP2
// installer is taken to return when another installation runs (unconfirmed, docs/facts.md §2.3).
const exitInstallBusy = 1618

// svcpackTail is how many lines of svcpack.log a failed install quotes.
const svcpackTail = 12

func (hr *hostRun) installFailed(ctx context.Context, pb *playbooks.Playbook, code int) error {
	why := fmt.Sprintf("the installer exited with %d (success is %s)", code, ints(pb.Installer.SuccessExitCodes))
	if code == exitInstallBusy {
		why = "another installation kept running on the host (exit code 1618)"
	}
	se := fail(StepInstall, "%s", why)
	log := strings.ReplaceAll(pb.Installer.Log, "%SystemRoot%", hr.facts.SystemRoot)
	if log == "" {
		return se
	}
	res, err := hr.run(ctx, typeCmd(log))
	if err != nil || res.ExitCode != 0 {
		return se
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(res.Stdout), "\r", ""), "\n"), "\n")
	if len(lines) > svcpackTail {
		lines = lines[len(lines)-svcpackTail:]
	}
	se.evidence = append(se.evidence, fmt.Sprintf("The last lines of %s:", log))
	for _, l := range lines {
		se.evidence = append(se.evidence, "  "+strings.TrimSpace(l))
	}
	return se
}

// reboot restarts the host and waits until it answers again with a newer boot time; a host
// that this plan's install already saw rebooted is not restarted twice.
func (hr *hostRun) reboot(ctx context.Context) error {
	markerPath := hr.work + `\install.marker`
	_, text, err := hr.readMarker(ctx, markerPath)
	if err != nil {
		return err
	}
	if strings.Contains(text, "rebooted="+hr.r.Plan.Digest[:12]) {
		hr.notes = append(hr.notes, "The host had already been restarted after the install.")
		return nil
	}
	f, err := hr.pollProbe(ctx, "boot")
	if err != nil {
		return err
	}
	before := f.BootTime
	if before == nil {
		return fail(StepReboot, "the host's boot time could not be read")
	}
	release, err := hr.lastCheck()
	if err != nil {
		return err
	}
	t := hr.r.Plan.Options.Timing
	// Repeating shutdown is safe: a restart already scheduled answers 1115, and the host
	// restarts once either way.
	res, err := hr.run(ctx, shutdownCmd(t.RebootDelay.D(), t.RebootReason, hr.r.ID))
	release()
	switch {
	case err != nil && !resumable(err):
		return err
	case err == nil && res.ExitCode != 0 && res.ExitCode != shutdownInProgress:
		return fail(StepReboot, "shutdown exited %d: %s", res.ExitCode, outputTail(res, 300))
	}
	hr.close(ctx)
	clock := hr.e.clock()
	start := clock.Now()
	deadline := start.Add(t.Reboot.D())
	var lastAnswer, downSince time.Time
	for {
		if err := hr.sleep(ctx, t.Poll.D()); err != nil {
			return err
		}
		f, err := hr.pollProbe(ctx, "boot")
		now := clock.Now()
		switch {
		case err == nil && f.BootTime != nil && f.BootTime.After(*before):
			hr.learn(f)
			_, _ = hr.run(ctx, fmt.Sprintf(`echo rebooted=%s>>"%s"`, hr.r.Plan.Digest[:12], markerPath))
			hr.notes = append(hr.notes, fmt.Sprintf("Restarted: booted at %s (before: %s).", f.BootTime.Format(time.RFC3339), before.Format(time.RFC3339)))
			return nil
		case err == nil:
			lastAnswer = now
		case ctx.Err() != nil:
			return err
		default:
			hr.close(ctx)
			if downSince.IsZero() {
				downSince = now
			}
		}
		if !now.Before(deadline) {
			last := "never answered after the restart command"
			if !downSince.IsZero() {
				last = fmt.Sprintf("down since %s", downSince.Format(time.RFC3339))
			}
			if !lastAnswer.IsZero() && lastAnswer.After(downSince) {
				last = fmt.Sprintf("last answered at %s, still on the old boot", lastAnswer.Format(time.RFC3339))
			}
			return fail(StepReboot, "the host did not come back within %s of the restart (%s)", t.Reboot.D(), last)
		}
	}
}

// shutdownInProgress is shutdown's exit code when a shutdown is already scheduled
// (ERROR_SHUTDOWN_IN_PROGRESS, docs/facts.md §5.6).
const shutdownInProgress = 1115

// w3svcRunning is sc's state 4 (RUNNING).
const w3svcRunning = 4

// pools starts W3SVC if it is stopped and every auto-start pool that is not started, through
// IIS 6's WMI provider, and waits until they are started.
func (hr *hostRun) pools(ctx context.Context) error {
	hr.restarted = hr.hostNow()
	f, err := hr.pollProbe(ctx, "w3svc", "apppools")
	if err != nil {
		return err
	}
	if !f.W3SVC.Installed {
		return fail(StepPools, "W3SVC is not installed")
	}
	if f.W3SVC.State != w3svcRunning {
		// net start answers 2 when the service is already started (a repeated start): the
		// service's state decides.
		res, err := hr.run(ctx, w3svcStartCmd)
		if err != nil {
			return err
		}
		if f, err = hr.pollProbe(ctx, "w3svc", "apppools"); err != nil {
			return err
		}
		if f.W3SVC.State != w3svcRunning {
			return fail(StepPools, "W3SVC did not start (net start exited %d): %s", res.ExitCode, outputTail(res, 300))
		}
	}
	for _, p := range f.Pools {
		if !p.AutoStart || p.State == 2 {
			continue
		}
		if !safeName(p.Name) {
			return fail(StepPools, "pool %q has characters that cannot be passed safely on a command line; start it by hand", p.Name)
		}
		res, err := hr.runOK(ctx, poolStartCmd(p.Name))
		if err != nil {
			return err
		}
		if v := wmicReturnValue(res.Stdout); v != 0 {
			return fail(StepPools, "starting pool %s failed: ReturnValue %d", p.Name, v)
		}
	}
	clock := hr.e.clock()
	deadline := clock.Now().Add(hr.r.Plan.Options.Timing.PoolStart.D())
	for {
		f, err := hr.pollProbe(ctx, "apppools")
		if err != nil {
			return err
		}
		stopped := stoppedPools(f)
		if len(stopped) == 0 {
			return nil
		}
		if !clock.Now().Before(deadline) {
			return fail(StepPools, "auto-start pools not started after %s: %s", hr.r.Plan.Options.Timing.PoolStart.D(), strings.Join(stopped, ", "))
		}
		if err := hr.sleep(ctx, min(hr.r.Plan.Options.Timing.Poll.D(), deadline.Sub(clock.Now()))); err != nil {
			return err
		}
	}
}

// stoppedPools names the auto-start pools that are not started (AppPoolState 2).
func stoppedPools(f *checks.Facts) []string {
	var out []string
	for _, p := range f.Pools {
		if p.AutoStart && p.State != 2 {
			out = append(out, fmt.Sprintf("%s (AppPoolState %d)", p.Name, p.State))
		}
	}
	return out
}

var returnValueRe = regexp.MustCompile(`ReturnValue\s*=\s*(-?\d+)`)

// wmicReturnValue reads a wmic method call's ReturnValue (0 when absent).
func wmicReturnValue(out []byte) int {
	if m := returnValueRe.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	return 0
}

// verify warms every site up, watches the pools and the W3SVC crash events through the soak
// window, and probes the host again: the core files must be at the baseline now.
func (hr *hostRun) verify(ctx context.Context) error {
	// Crashes count from the moment the pools were started, so a pool that died at once counts.
	restart := hr.restarted
	sites, err := hr.sites(ctx)
	if err != nil {
		return err
	}
	for _, s := range sites {
		status, err := hr.warmUp(ctx, s)
		if err != nil {
			return fail(StepVerify, "warm-up of site %s (%s): %v", s.name, s.url(hr.h.Target.Host), err)
		}
		if status == http.StatusServiceUnavailable {
			return fail(StepVerify, "site %s (%s) answers 503: its pool is not serving", s.name, s.url(hr.h.Target.Host))
		}
		hr.notes = append(hr.notes, fmt.Sprintf("Warm-up: site %s answered %d.", s.name, status))
	}
	clock := hr.e.clock()
	t := hr.r.Plan.Options.Timing
	end := clock.Now().Add(t.Soak.D())
	for {
		f, err := hr.pollProbe(ctx, "apppools", "events")
		if err != nil {
			return err
		}
		if stopped := stoppedPools(f); len(stopped) > 0 {
			return hr.crashed(restart, f, fmt.Sprintf("auto-start pools stopped during the soak: %s", strings.Join(stopped, ", ")))
		}
		if crashes := eventsSince(f, restart); len(crashes) > 0 {
			return hr.crashed(restart, f, "new W3SVC crash events during the soak")
		}
		left := end.Sub(clock.Now())
		if left <= 0 {
			break
		}
		if err := hr.sleep(ctx, min(t.Poll.D(), left)); err != nil {
			return err
		}
	}
	res, err := hr.run(ctx, checks.ProbeCommand())
	if err != nil {
		return err
	}
	facts, err := checks.ParseFacts(res.Stdout)
	if err != nil {
		return fail(StepVerify, "the final probe's output: %v", err)
	}
	hr.facts = facts
	finding := Diagnose(facts, hr.e.Playbooks)
	if len(finding.BelowBaseline) > 0 {
		var files []string
		for _, f := range finding.BelowBaseline {
			files = append(files, f.Name+" "+f.Version)
		}
		return fail(StepVerify, "core IIS files are still below the baseline %s: %s", finding.BelowBaseline[0].Baseline, strings.Join(files, ", "))
	}
	hr.notes = append(hr.notes, fmt.Sprintf("After the fix: %s.", finding.Verdict))
	return nil
}

// crashed fails verify with the events since the restart as evidence.
func (hr *hostRun) crashed(restart time.Time, f *checks.Facts, why string) error {
	se := fail(StepVerify, "%s", why)
	for _, ev := range eventsSince(f, restart) {
		se.evidence = append(se.evidence, fmt.Sprintf("W3SVC %d at %s: pool %s, exit code %s", ev.Code, ev.Time.Format(time.RFC3339), ev.Pool, orNone(ev.ExitCode)))
	}
	return se
}

// eventsSince returns the 1009/1002 events logged after t.
func eventsSince(f *checks.Facts, t time.Time) []checks.Event {
	var out []checks.Event
	for _, ev := range f.Events {
		if ev.Time.After(t) {
			out = append(out, ev)
		}
	}
	return out
}

// site is one IIS web site and one of its bindings.
type site struct {
	name string // W3SVC/1 (ServerComment)
	port int
	host string // host header, "" = any
}

func (s site) url(addr string) string {
	h := addr
	if s.host != "" {
		h = s.host
	}
	return "http://" + net.JoinHostPort(h, strconv.Itoa(s.port)) + "/"
}

// sites reads the started sites' bindings from the metabase through WMI.
func (hr *hostRun) sites(ctx context.Context) ([]site, error) {
	res, err := hr.runOK(ctx, sitesCmd)
	if err != nil {
		return nil, err
	}
	return parseSites(res.Stdout), nil
}

var (
	quotedRe   = regexp.MustCompile(`"([^"]*)"`)
	bindPortRe = regexp.MustCompile(`Port\s*=\s*"?(\d+)`)
	bindHostRe = regexp.MustCompile(`Hostname\s*=\s*"([^"]*)"`)
)

// propLine is the start of a property in wmic /format:list output (Name=Value); a line that
// does not start so continues the previous value (an embedded instance spans lines).
var propLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// parseSites reads wmic /format:list instances of IIsWebServerSetting. ServerBindings is taken
// in either form wmic may print it: the metabase strings "IP:Port:Host", or ServerBinding
// instances with Hostname, IP and Port (docs/facts.md §4.1).
func parseSites(out []byte) []site {
	var sites []site
	var name, comment, bindings, last string
	auto := true
	flush := func() {
		if name == "" {
			return
		}
		label := name
		if comment != "" {
			label = fmt.Sprintf("%s (%s)", name, comment)
		}
		if auto {
			sites = append(sites, bindingsOf(label, bindings)...)
		}
		name, comment, bindings, auto = "", "", "", true
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		m := propLine.FindStringSubmatch(line)
		if m == nil {
			if last == "ServerBindings" {
				bindings += "\n" + line
			}
			continue
		}
		last = m[1]
		v := strings.TrimSpace(m[2])
		switch m[1] {
		case "Name":
			flush()
			name = v
		case "ServerComment":
			comment = v
		case "ServerAutoStart":
			auto = !strings.EqualFold(v, "FALSE")
		case "ServerBindings":
			bindings = v
		}
	}
	flush()
	return sites
}

func bindingsOf(name, v string) []site {
	var out []site
	if strings.Contains(v, "ServerBinding") {
		for _, inst := range strings.Split(v, "instance of")[1:] {
			if m := bindPortRe.FindStringSubmatch(inst); m != nil {
				s := site{name: name}
				s.port, _ = strconv.Atoi(m[1])
				if h := bindHostRe.FindStringSubmatch(inst); h != nil {
					s.host = h[1]
				}
				out = append(out, s)
			}
		}
		return out
	}
	for _, m := range quotedRe.FindAllStringSubmatch(v, -1) {
		parts := strings.Split(m[1], ":")
		if len(parts) != 3 {
			continue
		}
		if port, err := strconv.Atoi(parts[1]); err == nil && port > 0 && port < 65536 {
			out = append(out, site{name: name, port: port, host: parts[2]})
		}
	}
	return out
}

// warmUpTimeout bounds one warm-up request (real time: it is network, not the host's clock).
const warmUpTimeout = 30 * time.Second

// warmUp requests a site once and returns the HTTP status: from this machine to the host's
// address (the site's host header set), or with --warmup local from the host itself.
func (hr *hostRun) warmUp(ctx context.Context, s site) (int, error) {
	if hr.r.Plan.Options.Warmup == "local" {
		script := hr.work + `\warmup.vbs`
		if _, err := hr.runInputOK(ctx, writeFileCmd(script), warmupScript); err != nil {
			return 0, err
		}
		res, err := hr.runOK(ctx, fmt.Sprintf(`cscript //nologo "%s" %d "%s"`, script, s.port, s.host))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	}
	rctx, cancel := context.WithTimeout(ctx, warmUpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+net.JoinHostPort(hr.h.Target.Host, strconv.Itoa(s.port))+"/", nil)
	if err != nil {
		return 0, err
	}
	if s.host != "" {
		req.Host = s.host
	}
	req.Header.Set("User-Agent", "iisremedy warm-up")
	resp, err := hr.e.httpClient().Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
