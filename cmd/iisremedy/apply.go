package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// applyFlags are the flags of the commands that change hosts: apply, run and stage.
type applyFlags struct {
	Journal     string
	MaxFailures string
	ServeAddr   string
	BWLimit     string
	Output      string

	maxCount   int
	maxPercent float64
	rate       float64
}

func (a *applyFlags) addFlags(f *pflag.FlagSet, withTransfer bool) {
	f.StringVar(&a.Journal, "journal", "", "journal `FILE` (default: journal.db in the user's state directory)")
	f.StringVar(&a.MaxFailures, "max-failures", "", "stop starting new hosts once N hosts, or P% of the planned ones, have failed (exit status 3)")
	f.StringVarP(&a.Output, "output", "o", "table", "output format: table, json or markdown")
	if withTransfer {
		f.StringVar(&a.ServeAddr, "serve-addr", "", "`host:port` of this machine that the hosts can reach, for hosts staged by pull")
		f.StringVar(&a.BWLimit, "bwlimit", "", "cap on installer bytes per second to all hosts together, like 500k or 2M (1024-based)")
	}
}

func (a *applyFlags) validate() error {
	if err := checkOutput(a.Output); err != nil {
		return err
	}
	if a.MaxFailures != "" {
		s, pct := strings.CutSuffix(a.MaxFailures, "%")
		v, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil || v <= 0 || !pct && v != float64(int(v)):
			return usageErrorf("--max-failures %q: want a count like 3 or a share like 10%%", a.MaxFailures)
		case pct && v > 100:
			return usageErrorf("--max-failures %q: a share is at most 100%%", a.MaxFailures)
		case pct:
			a.maxPercent = v
		default:
			a.maxCount = int(v)
		}
	}
	var err error
	if a.rate, err = parseRate(a.BWLimit); err != nil {
		return usageErrorf("--bwlimit %q: %v", a.BWLimit, err)
	}
	return nil
}

// openJournal opens --journal or the default file; secrets are kept out of every row.
func openJournal(path string, secrets ...string) (*journal.Journal, error) {
	if path == "" {
		p, err := journal.DefaultPath()
		if err != nil {
			return nil, fmt.Errorf("journal: %w (give one with --journal FILE)", err)
		}
		path = p
	}
	j, err := journal.Open(path, journal.Options{Redact: secrets})
	return j, asUsage(err)
}

// applyOptions are the flags of `apply`.
type applyOptions struct {
	Connect *connectOptions
	Apply   applyFlags
}

func newApplyCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &applyOptions{Connect: global.connect()}
	cmd := &cobra.Command{
		Use:   "apply PLAN.json",
		Short: "Do exactly what a reviewed plan says",
		Long: `Apply a plan written by 'iisremedy plan': probe each planned host again and refuse one whose
facts changed since (saying which), then stage the installer, install it from a scheduled task,
restart the host, start its pools and watch them through the soak window. Hosts outside the plan,
and hosts the plan leaves alone, are not touched. The digest of the plan it executed is printed.
The run is recorded in the journal; applying the same plan again resumes an interrupted run.

The first Ctrl-C drains: no new install or restart starts, running steps finish, and every host
stops at a safe point (exit status 3). A second Ctrl-C stops at once (130).

Exit status 0 when every planned host is remediated, 1 when one failed or was refused, 2 for a
bad plan (nothing touched), 3 when the run stopped early (drained, or --max-failures reached).`,
		Example: `  iisremedy apply change-4711.json
  iisremedy apply change-4711.json --parallel 5 --max-failures 10% -o markdown > applied.md`,
		Args: oneArg("the plan file written by iisremedy plan"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return applyRun(cmd.Context(), ios, global, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Connect.PasswordEnv, "password-env", "IISREMEDY_PASSWORD", "name of the environment variable holding the password (a prompt on a terminal when unset)")
	f.IntVar(&opts.Connect.Parallel, "parallel", 20, "hosts worked on at once")
	f.DurationVar(&opts.Connect.ProbeTimeout, "probe-timeout", remediate.DefaultProbeTimeout, "longest a host's probe may take")
	opts.Connect.Auth, opts.Connect.User = "negotiate", "Administrator" // each host's come from the plan
	opts.Apply.addFlags(f, true)
	completeOutput(cmd)
	return cmd
}

func applyRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *applyOptions, planPath string) error {
	if err := opts.Connect.validate(); err != nil {
		return err
	}
	if err := opts.Apply.validate(); err != nil {
		return err
	}
	plan, err := readPlanFile(planPath)
	if err != nil {
		return err
	}
	pbs, def, err := planPlaybooks(plan)
	if err != nil {
		return err
	}
	installers, err := loadInstallers(plan.Options.InstallerDir, def)
	if err != nil {
		return err
	}
	if err := checkPlanInstallers(plan, installers); err != nil {
		return err
	}
	password, err := opts.Connect.password(ctx, ios)
	if err != nil {
		return err
	}
	e := newEngine(global, ios, opts.Connect, password, pbs)
	_, err = execute(ctx, ios, global, e, execution{plan: plan, installers: installers, password: password, flags: opts.Apply, command: "apply"})
	return err
}

// planPlaybooks finds the playbooks a plan names (embedded ones by name).
func planPlaybooks(plan *remediate.Plan) ([]*playbooks.Playbook, *playbooks.Playbook, error) {
	var pbs []*playbooks.Playbook
	for _, name := range plan.Playbooks {
		pb, err := playbooks.Get(name)
		if err != nil {
			return nil, nil, usageErrorf("the plan names playbook %q, which this iisremedy does not embed", name)
		}
		pbs = append(pbs, pb)
	}
	if len(pbs) == 0 {
		return nil, playbooks.Default(), nil
	}
	return pbs, pbs[0], nil
}

// checkPlanInstallers refuses a plan whose installers are not the files the directory holds
// now: the plan was reviewed with those hashes.
func checkPlanInstallers(plan *remediate.Plan, in *remediate.Installers) error {
	for _, h := range plan.Hosts {
		if h.Action != remediate.ActionRemediate {
			continue
		}
		got, ok := in.For(h.Installer.Arch, h.Installer.Language)
		if !ok {
			return usageErrorf("%s: the plan's installer %s is not in %s any more", h.Host, h.Installer.File, plan.Options.InstallerDir)
		}
		if got.SHA256 != h.Installer.SHA256 {
			return usageErrorf("%s: %s has SHA-256 %s now, the plan was made with %s", h.Host, got.Path, got.SHA256, h.Installer.SHA256)
		}
	}
	return nil
}

// execution is one run of a plan by apply, run or stage.
type execution struct {
	plan       *remediate.Plan
	installers *remediate.Installers
	password   string
	flags      applyFlags
	command    string
	stageOnly  bool
	// tempJournal is a journal removed after the command (lab's): its path is not worth printing.
	tempJournal bool
}

// exitAborted is the exit status of a run that stopped starting hosts (drained, or past its
// failure threshold).
const exitAborted exitCode = 3

// errAborted ends a command with exit status 3; its results are printed already.
var errAborted = errors.New("the run stopped early")

// execute runs a plan against its hosts with the journal, progress and the drain of the first
// Ctrl-C, prints the results, and returns them with the error that gives the exit status.
func execute(ctx context.Context, ios *ioStreams, global *globalOptions, e *remediate.Engine, x execution) ([]remediate.HostResult, error) {
	j, err := openJournal(x.flags.Journal, x.password)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	rec := &recorder{j: j, ios: ios, clock: global.engineClock()}
	done := map[string]bool{}
	if prev, ok, err := j.LastRun(x.plan.Digest); err == nil && ok && !x.stageOnly {
		hosts, _ := j.Hosts(prev.ID)
		for _, h := range hosts {
			if h.Outcome == string(remediate.Remediated) {
				done[h.Host] = true
			}
		}
		if len(done) > 0 && !global.Quiet {
			fmt.Fprintf(ios.ErrOut, "%s: resuming the plan after run %s: %s already remediated\n", x.command, prev.ID, plural(len(done), "host"))
		}
	}
	optsJSON, _ := json.Marshal(x.plan.Options)
	rec.runID = journal.NewRunID(global.engineClock().Now())
	if err := j.StartRun(journal.Run{ID: rec.runID, Command: x.command, PlanDigest: x.plan.Digest, Inventory: x.plan.Inventory, Options: optsJSON}); err != nil {
		return nil, err
	}
	run := &remediate.Run{ID: rec.runID, Plan: x.plan, Installers: x.installers, Drain: ctx.Done(), Done: done,
		MaxFailures: x.flags.maxCount, MaxFailurePercent: x.flags.maxPercent, StageOnly: x.stageOnly}
	limit := remediate.NewRateLimit(x.flags.rate)
	e.StageLimit = limit
	if needsPull(x.plan) {
		if x.flags.ServeAddr == "" {
			return nil, usageErrorf("hosts stage by pull: give --serve-addr host:port, an address of this machine they can reach")
		}
		pull, err := remediate.StartPullServer(x.flags.ServeAddr, limit)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		defer pull.Close()
		run.Pull = pull
	}
	verdicts := map[string]playbooks.Verdict{}
	for _, h := range x.plan.Hosts {
		verdicts[h.Host] = h.Verdict
	}
	progress := newStepProgress(ios, global.Quiet, len(x.plan.Hosts), x.command)
	e.Events = func(ev remediate.HostStep) {
		rec.step(ev, verdicts[ev.Host])
		progress.event(ev)
	}
	e.Commands = rec.command
	e.Transfer = progress.transfer
	e.HostDone = func(r remediate.HostResult) {
		rec.result(r)
		progress.hostDone()
	}
	run.Drained = func() {
		if !global.Quiet {
			fmt.Fprintf(ios.ErrOut, "%s: draining: no new install or restart starts, running steps finish; interrupt again to stop now\n", x.command)
		}
	}
	hard := hardStop(ctx)
	results, runErr := e.Remediate(hard, run)
	progress.finish()
	status := runStatus(results, runErr, hard)
	rec.check(j.EndRun(rec.runID, status, global.engineClock().Now()))
	if err := writeResults(ios.Out, x.flags.Output, rec.runID, x.plan.Digest, results); err != nil {
		return results, err
	}
	if !global.Quiet {
		where := " (journal " + j.Path() + ")"
		if x.tempJournal {
			where = ""
		}
		fmt.Fprintf(ios.ErrOut, "%s: plan %s, run %s: %s%s\n", x.command, x.plan.Digest, rec.runID, status, where)
	}
	switch {
	case hard.Err() != nil:
		return results, hard.Err()
	case errors.Is(runErr, remediate.ErrStopped):
		return results, errAborted
	case status == journal.StatusFailed:
		return results, errNeedsAttention
	}
	return results, nil
}

func needsPull(p *remediate.Plan) bool {
	for _, h := range p.Hosts {
		if h.Action == remediate.ActionRemediate && h.Installer.Method == remediate.StagePull {
			return true
		}
	}
	return false
}

// runStatus is the journal status of a run that ended so.
func runStatus(results []remediate.HostResult, runErr error, hard context.Context) string {
	switch {
	case hard.Err() != nil:
		return journal.StatusInterrupted
	case errors.Is(runErr, remediate.ErrStopped):
		return journal.StatusAborted
	}
	for _, r := range results {
		if r.Outcome == remediate.RemediationFailed || r.Outcome == remediate.RefusedDrift {
			return journal.StatusFailed
		}
	}
	return journal.StatusDone
}

// recorder writes a run's steps, transcript and outcomes to the journal. A journal that cannot
// be written (a full disk) costs the record, never the hosts: the run goes on, said once.
type recorder struct {
	j     *journal.Journal
	ios   *ioStreams
	runID string
	clock remediate.Clock

	mu     sync.Mutex
	failed bool
	seen   map[string]bool
}

func (r *recorder) check(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failed {
		r.failed = true
		fmt.Fprintf(r.ios.ErrOut, "warning: the journal cannot be written, the run goes on without it: %v\n", err)
	}
}

func (r *recorder) step(ev remediate.HostStep, verdict playbooks.Verdict) {
	r.mu.Lock()
	first := !r.seen[ev.Host]
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[ev.Host] = true
	r.mu.Unlock()
	if first {
		r.check(r.j.PutHost(journal.HostState{RunID: r.runID, Host: ev.Host, VerdictBefore: string(verdict), Step: string(ev.Step), Started: ev.At}))
	}
	r.check(r.j.AddStep(journal.StepEvent{RunID: r.runID, Host: ev.Host, Step: string(ev.Step), State: string(ev.State), Detail: ev.Detail, At: ev.At}))
}

func (r *recorder) command(c remediate.CommandRecord) {
	msg := ""
	if c.Err != nil {
		msg = c.Err.Error()
	}
	r.check(r.j.AddCommand(journal.Command{RunID: r.runID, Host: c.Host, Step: string(c.Step), At: c.At,
		Duration: c.Duration, CommandLine: c.CommandLine, ExitCode: c.ExitCode, Stdout: c.Stdout, Stderr: c.Stderr, Err: msg}))
}

func (r *recorder) result(h remediate.HostResult) {
	r.check(r.j.PutHost(journal.HostState{RunID: r.runID, Host: h.Host.Entry, VerdictBefore: string(h.Verdict),
		Outcome: string(h.Outcome), Step: string(h.Step), Evidence: h.Evidence, Ended: r.clock.Now()}))
	if h.Facts != nil {
		if b, err := json.Marshal(h.Facts); err == nil {
			r.check(r.j.PutFacts(r.runID, h.Host.Entry, journal.PhaseAfter, b))
		}
	}
}

// resultReport is one host in the output of apply, run and stage.
type resultReport struct {
	Host     string            `json:"host"`
	Verdict  playbooks.Verdict `json:"verdict"`
	Outcome  remediate.Outcome `json:"outcome"`
	Step     remediate.Step    `json:"step,omitempty"`
	Evidence []string          `json:"evidence"`
}

func writeResults(w io.Writer, format, runID, digest string, results []remediate.HostResult) error {
	reports := make([]resultReport, len(results))
	for i, r := range results {
		reports[i] = resultReport{Host: r.Host.Entry, Verdict: r.Verdict, Outcome: r.Outcome, Step: r.Step, Evidence: r.Evidence}
		if reports[i].Evidence == nil {
			reports[i].Evidence = []string{}
		}
	}
	switch format {
	case "json":
		return writeJSON(w, struct {
			Run        string         `json:"run"`
			PlanDigest string         `json:"plan_digest"`
			Hosts      []resultReport `json:"hosts"`
		}{runID, digest, reports})
	case "markdown":
		var b strings.Builder
		fmt.Fprintf(&b, "# iisremedy run %s\n\nPlan digest `%s`. %s\n\n| host | verdict | outcome | step | evidence |\n|---|---|---|---|---|\n",
			runID, digest, outcomeSummary(reports))
		for _, r := range reports {
			ev := make([]string, len(r.Evidence))
			for i, e := range r.Evidence {
				ev[i] = markdownText(e)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", markdownText(r.Host), markdownText(string(r.Verdict)), r.Outcome, r.Step, strings.Join(ev, "<br>"))
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tVERDICT\tOUTCOME\tSTEP\tDETAIL")
	for _, r := range reports {
		detail := ""
		if n := len(r.Evidence); n > 0 {
			detail = r.Evidence[n-1]
		}
		step := string(r.Step)
		if step == "" {
			step = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(r.Host), printable(string(r.Verdict)), r.Outcome, step, printable(detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", outcomeSummary(reports))
	return err
}

// outcomeSummary counts hosts per outcome.
func outcomeSummary(reports []resultReport) string {
	order := []remediate.Outcome{remediate.Remediated, remediate.Staged, remediate.RemediationFailed, remediate.RefusedDrift,
		remediate.Interrupted, remediate.NotPlanned}
	counts := map[remediate.Outcome]int{}
	for _, r := range reports {
		counts[r.Outcome]++
	}
	var parts []string
	for _, o := range order {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	return fmt.Sprintf("%s: %s", plural(len(reports), "host"), strings.Join(parts, ", "))
}
