package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
	"github.com/spf13/cobra"

	_ "time/tzdata" // maintenance windows name IANA zones; a control machine may lack the zone files
)

// wavesOptions are the flags of the waves commands.
type wavesOptions struct {
	Connect *connectOptions
	Apply   applyFlags
	Rem     remediationFlags
	Wave    string
	// now is the time the commands read windows at; tests fix it.
	now func() time.Time
}

func newWavesCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "waves",
		Short: "Roll a remediation out in scheduled waves: canary, batches, maintenance windows, thresholds",
		Long: `A waves file names the inventory and the waves in order: each wave's hosts (by name, by
inventory group, or a size: 5, 10% or rest), its parallelism, its failure threshold (a count or
a share, halting the rollout), its maintenance window (weekly days and hours, or two dates, in an
IANA time zone; no install or restart starts outside it) and what follows it (pause 2h, approve).
See the README for the format.`,
		Example: `  iisremedy waves plan rollout.yaml -o markdown > rollout.md
  iisremedy waves run rollout.yaml
  iisremedy waves run rollout.yaml --wave canary      # from cron: one wave, then exit
  iisremedy waves status rollout.yaml
  iisremedy waves approve rollout.yaml canary`,
	}
	cmd.AddCommand(newWavesPlanCmd(ios, global), newWavesRunCmd(ios, global), newWavesStatusCmd(ios, global), newWavesApproveCmd(ios, global))
	return cmd
}

func newWavesPlanCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &wavesOptions{Connect: global.connect(), now: global.engineClock().Now}
	cmd := &cobra.Command{
		Use:   "plan WAVES.yaml",
		Short: "Dry run: probe the hosts and show who goes in which wave, when each window opens, the steps",
		Example: `  iisremedy waves plan rollout.yaml
  iisremedy waves plan rollout.yaml -o markdown > rollout.md`,
		Args: oneArg("the waves file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return wavesPlanRun(cmd.Context(), ios, global, opts, args[0])
		},
	}
	opts.Connect.addFlags(cmd.Flags(), true)
	cmd.Flags().StringVarP(&opts.Apply.Output, "output", "o", "table", "output format: table, json or markdown")
	completeOutput(cmd)
	return cmd
}

func newWavesRunCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &wavesOptions{Connect: global.connect(), now: global.engineClock().Now}
	cmd := &cobra.Command{
		Use:   "run WAVES.yaml",
		Short: "Run the rollout: each wave in its window, resuming where the journal says it stopped",
		Long: `Run the waves in order. A wave waits for its window to open (a countdown on a terminal),
and for the approval or pause the wave before it asks; hosts are probed when their wave starts,
planned as 'iisremedy plan' would, and remediated. A wave past its failure threshold halts the
rollout with the reason recorded. A window that closes mid-wave lets running steps finish and
starts no new install or restart; the next window picks up where it stopped. One runner holds a
waves file at a time (a second one is refused, naming the first); a dead runner's lock is taken
over. With --wave only that wave runs, for a cron job or a timer.

Exit status 0 when every wave (or the one asked) is done, 1 when a host failed, 2 for bad input
or a waves file another runner holds, 3 when the rollout halted or was drained, 130 when stopped.`,
		Example: `  iisremedy waves run rollout.yaml
  iisremedy waves run rollout.yaml --wave batch-1 -q`,
		Args: oneArg("the waves file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return wavesRunRun(cmd.Context(), ios, global, opts, args[0])
		},
	}
	f := cmd.Flags()
	opts.Connect.addFlags(f, true)
	opts.Apply.addFlags(f, true)
	f.StringVar(&opts.Wave, "wave", "", "run only the wave of this `NAME`, then exit")
	completeOutput(cmd)
	return cmd
}

func newWavesStatusCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:     "status WAVES.yaml",
		Short:   "Where a rollout stands, from the journal: per wave done, failed, pending, the next window",
		Example: `  iisremedy waves status rollout.yaml`,
		Args:    oneArg("the waves file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, _, err := loadWaves(args[0], global.engineClock().Now())
			if err != nil {
				return err
			}
			j, err := openJournal(path)
			if err != nil {
				return err
			}
			defer j.Close()
			return writeWavesStatus(ios.Out, j, w, global.engineClock().Now())
		},
	}
	cmd.Flags().StringVar(&path, "journal", "", "journal `FILE` (default: journal.db in the user's state directory)")
	return cmd
}

func newWavesApproveCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:     "approve WAVES.yaml WAVE",
		Short:   "Let the rollout go on after a wave that waits for approval",
		Example: `  iisremedy waves approve rollout.yaml canary`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("%s: give the waves file and the name of the wave to approve", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			w, _, err := loadWaves(args[0], global.engineClock().Now())
			if err != nil {
				return err
			}
			found := false
			for _, wv := range w.Waves {
				found = found || wv.Name == args[1]
			}
			if !found {
				return usageErrorf("%s: no wave named %s", args[0], args[1])
			}
			j, err := openJournal(path)
			if err != nil {
				return err
			}
			defer j.Close()
			if err := j.Approve(remediate.LockName(args[0]), args[1], approver(), global.engineClock().Now()); err != nil {
				return err
			}
			_, err = fmt.Fprintf(ios.Out, "approved wave %s of %s\n", args[1], args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&path, "journal", "", "journal `FILE` (default: journal.db in the user's state directory)")
	return cmd
}

// approver names who approved: the local user on this machine.
func approver() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// loadWaves reads a waves file; any problem is bad input.
func loadWaves(path string, now time.Time) (*remediate.Waves, *remediate.Inventory, error) {
	w, inv, err := remediate.LoadWaves(path, now)
	return w, inv, asUsage(err)
}

// wavesSetup is what plan and run share: the file, the hosts, the installers, the engine.
type wavesSetup struct {
	waves      *remediate.Waves
	hosts      []remediate.Host
	installers *remediate.Installers
	options    remediate.Options
	password   string
	engine     *remediate.Engine
}

func setupWaves(ctx context.Context, ios *ioStreams, global *globalOptions, opts *wavesOptions, path string) (*wavesSetup, error) {
	if err := opts.Connect.validate(); err != nil {
		return nil, err
	}
	w, inv, err := loadWaves(path, opts.now())
	if err != nil {
		return nil, err
	}
	if w.Installers == "" {
		return nil, usageErrorf("%s: installers: missing: give the directory of the SP2 installers", path)
	}
	opts.Rem = remediationFlags{Installers: w.Installers, Stage: orDefault(w.Stage, remediate.StagePush), Share: w.Share,
		ServeAddr: opts.Apply.ServeAddr, BWLimit: opts.Apply.BWLimit, Warmup: "remote"}
	if w.IncludeAtRisk {
		opts.Rem.Include = []string{string(playbooks.AtRisk)}
	}
	if err := opts.Rem.validate(); err != nil {
		return nil, err
	}
	def := playbooks.Default()
	installers, err := loadInstallers(w.Installers, def)
	if err != nil {
		return nil, err
	}
	hosts, err := resolveTargets(ios, global.Quiet, inv, opts.Connect.defaults())
	if err != nil {
		return nil, err
	}
	password, err := opts.Connect.password(ctx, ios)
	if err != nil {
		return nil, err
	}
	return &wavesSetup{waves: w, hosts: hosts, installers: installers, options: opts.Rem.options(def), password: password,
		engine: newEngine(global, ios, opts.Connect, password, nil)}, nil
}

func wavesPlanRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *wavesOptions, path string) error {
	if err := checkOutput(opts.Apply.Output); err != nil {
		return err
	}
	s, err := setupWaves(ctx, ios, global, opts, path)
	if err != nil {
		return err
	}
	var members []remediate.Host
	for _, wv := range s.waves.Waves {
		for _, e := range wv.Members {
			for _, h := range s.hosts {
				if h.Entry == e {
					members = append(members, h)
				}
			}
		}
	}
	findings := runDetect(ctx, ios, global, s.engine, members)
	if err := ctx.Err(); err != nil {
		return err
	}
	plan := remediate.NewPlan(findings, s.options, s.installers, nil, "iisremedy "+buildVersion(), opts.now(), s.waves.File)
	return writeWavesPlan(ios.Out, opts.Apply.Output, s.waves, plan, opts.now())
}

// writeWavesPlan shows who goes in which wave, when each window opens (in its zone and the
// operator's), and what each host's plan is.
func writeWavesPlan(w io.Writer, format string, waves *remediate.Waves, plan *remediate.Plan, now time.Time) error {
	byHost := map[string]remediate.PlanHost{}
	for _, h := range plan.Hosts {
		byHost[h.Host] = h
	}
	if format == "json" {
		type wavePlan struct {
			Name        string               `json:"name"`
			Window      string               `json:"window,omitempty"`
			Opens       *time.Time           `json:"opens,omitempty"`
			Parallel    int                  `json:"parallel,omitempty"`
			MaxFailures string               `json:"max_failures,omitempty"`
			Pause       string               `json:"pause,omitempty"`
			Approve     bool                 `json:"approve,omitempty"`
			Hosts       []remediate.PlanHost `json:"hosts"`
		}
		out := struct {
			Waves      string     `json:"waves"`
			PlanDigest string     `json:"plan_digest"`
			List       []wavePlan `json:"wave_list"`
		}{Waves: waves.File, PlanDigest: plan.Digest}
		for _, wv := range waves.Waves {
			wp := wavePlan{Name: wv.Name, Parallel: wv.Parallel, MaxFailures: wv.MaxFailures, Approve: wv.Approve, Hosts: []remediate.PlanHost{}}
			if wv.Pause > 0 {
				wp.Pause = wv.Pause.String()
			}
			if wv.Window != nil {
				wp.Window = wv.Window.String()
				if o, _, ok := wv.Window.Next(now); ok {
					wp.Opens = &o
				}
			}
			for _, e := range wv.Members {
				wp.Hosts = append(wp.Hosts, byHost[e])
			}
			out.List = append(out.List, wp)
		}
		return writeJSON(w, out)
	}
	var b strings.Builder
	md := format == "markdown"
	if md {
		fmt.Fprintf(&b, "# iisremedy rollout plan: %s\n\n- Plan digest (SHA-256): `%s`\n- Inventory %s; installers staged by %s",
			markdownText(waves.File), plan.Digest, markdownText(waves.Inventory), plan.Options.Stage)
		if waves.StageAhead {
			b.WriteString(", ahead of each window")
		}
		fmt.Fprintf(&b, "\n- %s to remediate in %s\n", plural(plan.Remediated(), "host"), plural(len(waves.Waves), "wave"))
	}
	for i, wv := range waves.Waves {
		if md {
			fmt.Fprintf(&b, "\n## Wave %d: %s\n\n", i+1, markdownText(wv.Name))
		} else {
			fmt.Fprintf(&b, "wave %d: %s\n", i+1, wv.Name)
		}
		for _, line := range waveFacts(wv, now) {
			if md {
				fmt.Fprintf(&b, "- %s\n", markdownText(line))
			} else {
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
		if md {
			b.WriteString("\n| host | verdict | action | installer |\n|---|---|---|---|\n")
		} else {
			b.WriteString("\n")
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		if !md {
			fmt.Fprintln(tw, "  HOST\tVERDICT\tACTION\tINSTALLER")
		}
		for _, e := range wv.Members {
			h := byHost[e]
			inst := "-"
			if h.Installer != nil {
				inst = h.Installer.File
			}
			if md {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", markdownText(e), markdownText(string(h.Verdict)), h.Action, markdownText(inst))
			} else {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", printable(e), printable(string(h.Verdict)), h.Action, inst)
			}
		}
		_ = tw.Flush()
		if !md {
			b.WriteString("\n")
		}
	}
	if md {
		b.WriteString("\n## Steps of each remediated host\n\nstage → install (a SYSTEM task runs the installer) → reboot → pools → verify (warm-up, soak); `iisremedy plan` shows each host's exact commands.\n")
	} else {
		fmt.Fprintf(&b, "plan digest %s\n", plan.Digest)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// waveFacts are a wave's settings and its next window, in the window's zone and the operator's.
func waveFacts(wv *remediate.Wave, now time.Time) []string {
	var out []string
	if wv.Window == nil {
		out = append(out, "window: any time")
	} else {
		out = append(out, "window: "+wv.Window.String())
		if o, c, ok := wv.Window.Next(now); ok {
			state := "opens"
			if !o.After(now) {
				state = "open now, since"
			}
			out = append(out, fmt.Sprintf("%s %s until %s (your time: %s)", state,
				o.Format("Mon 2006-01-02 15:04 MST"), c.Format("15:04 MST"), o.In(now.Location()).Format("Mon 2006-01-02 15:04 MST")))
		}
	}
	if wv.Parallel > 0 {
		out = append(out, fmt.Sprintf("parallel: %d", wv.Parallel))
	}
	if wv.MaxFailures != "" {
		if strings.HasSuffix(wv.MaxFailures, "%") {
			out = append(out, "the rollout halts once "+wv.MaxFailures+" of the wave's hosts have failed")
		} else {
			n, _ := strconv.Atoi(wv.MaxFailures)
			out = append(out, "the rollout halts once "+plural(n, "host")+" of the wave failed")
		}
	}
	if wv.Pause > 0 {
		out = append(out, "then a pause of "+wv.Pause.String())
	}
	if wv.Approve {
		out = append(out, "then waits for: iisremedy waves approve FILE "+wv.Name)
	}
	return out
}

func wavesRunRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *wavesOptions, path string) error {
	if err := opts.Apply.validate(); err != nil {
		return err
	}
	s, err := setupWaves(ctx, ios, global, opts, path)
	if err != nil {
		return err
	}
	if opts.Wave != "" {
		found := false
		for _, wv := range s.waves.Waves {
			found = found || wv.Name == opts.Wave
		}
		if !found {
			return usageErrorf("--wave %s: no wave of that name in %s", opts.Wave, path)
		}
	}
	j, err := openJournal(opts.Apply.Journal, s.password)
	if err != nil {
		return err
	}
	defer j.Close()
	runID := journal.NewRunID(global.engineClock().Now())
	host, _ := os.Hostname()
	ro := &remediate.Rollout{Waves: s.waves, Hosts: s.hosts, Engine: s.engine, Journal: j, Installers: s.installers,
		Options: s.options, Tool: "iisremedy " + buildVersion(), RunID: runID, Only: opts.Wave, Drain: ctx.Done(),
		Holder: journal.LockHolder{Host: host, PID: os.Getpid(), RunID: runID}}
	_, err = rollout(ctx, ios, global, ro, opts.Apply, "waves run")
	return err
}

// rollout runs a Rollout with the journal, progress and the exit status of the outcome, and
// returns each host's latest result.
func rollout(ctx context.Context, ios *ioStreams, global *globalOptions, ro *remediate.Rollout, flags applyFlags, command string) ([]remediate.HostResult, error) {
	j := ro.Journal
	if err := j.StartRun(journal.Run{ID: ro.RunID, Command: command, Inventory: remediate.LockName(ro.Waves.File)}); err != nil {
		return nil, err
	}
	limit := remediate.NewRateLimit(flags.rate)
	ro.Engine.StageLimit = limit
	if ro.Options.Stage == remediate.StagePull {
		if flags.ServeAddr == "" {
			return nil, usageErrorf("stage: pull: give --serve-addr host:port, an address of this machine the hosts can reach")
		}
		pull, err := remediate.StartPullServer(flags.ServeAddr, limit)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		defer pull.Close()
		ro.Pull = pull
	}
	rec := &recorder{j: j, ios: ios, runID: ro.RunID, clock: global.engineClock()}
	verdicts := map[string]string{}
	ro.Engine.Events = func(ev remediate.HostStep) {
		rec.step(ev, playbooks.Verdict(verdicts[ev.Host]))
		if !global.Quiet && !ios.IsStderrTTY() {
			line := fmt.Sprintf("%s: %s %s", printable(ev.Host), ev.Step, ev.State)
			if ev.Detail != "" {
				line += ": " + printable(ev.Detail)
			}
			fmt.Fprintln(ios.ErrOut, line)
		}
	}
	ro.Engine.Commands = rec.command
	ro.Engine.HostDone = rec.result
	// Each host's latest result: a wave staging ahead of its window reports its hosts staged,
	// and again once the window has come.
	var all []remediate.HostResult
	at := map[string]int{}
	ro.Results = func(wave string, results []remediate.HostResult) {
		for _, r := range results {
			if i, ok := at[r.Host.Entry]; ok {
				all[i] = r
				continue
			}
			at[r.Host.Entry] = len(all)
			all = append(all, r)
		}
	}
	countdown := &countdown{ios: ios, clock: ro.Engine.Clock}
	defer countdown.stop()
	ro.Notify = func(ev remediate.RolloutEvent) {
		countdown.stop()
		if global.Quiet {
			return
		}
		fmt.Fprintln(ios.ErrOut, rolloutLine(ev))
		if ev.What == "waiting-window" && ios.IsStderrTTY() {
			countdown.start(ev.Wave, ev.Until)
		}
	}
	hard := hardStop(ctx)
	err := ro.Run(hard)
	var locked *journal.LockedError
	status := runStatus(all, err, hard)
	switch {
	case errors.As(err, &locked):
		status = journal.StatusAborted
	case errors.Is(err, remediate.ErrHalted):
		status = journal.StatusAborted
	case err != nil && hard.Err() == nil && !errors.Is(err, remediate.ErrStopped):
		status = journal.StatusFailed
	}
	rec.check(j.EndRun(ro.RunID, status, global.engineClock().Now()))
	if len(all) > 0 {
		if werr := writeResults(ios.Out, flags.Output, ro.RunID, "", all); werr != nil {
			return all, werr
		}
	}
	switch {
	case errors.As(err, &locked):
		return all, usageErrorf("%v; a second runner stops here", err)
	case hard.Err() != nil:
		return all, hard.Err()
	case errors.Is(err, remediate.ErrHalted), errors.Is(err, remediate.ErrStopped):
		fmt.Fprintf(ios.ErrOut, "%s: %v\n", command, err)
		return all, errAborted
	case err != nil:
		return all, err
	case status == journal.StatusFailed:
		return all, errNeedsAttention
	}
	return all, nil
}

// rolloutLine says what a rollout waits for or did, times in the window's zone and the
// operator's.
func rolloutLine(ev remediate.RolloutEvent) string {
	switch ev.What {
	case "waiting-window":
		return fmt.Sprintf("waves: %s waits for its window %s to open at %s (your time %s)", ev.Wave, ev.Window,
			ev.Until.Format("2006-01-02 15:04 MST"), ev.Until.Local().Format("2006-01-02 15:04 MST"))
	case "staging-ahead":
		return fmt.Sprintf("waves: %s stages its installers ahead of its window (opens %s)", ev.Wave, ev.Until.Format("2006-01-02 15:04 MST"))
	case "waiting-approval":
		return fmt.Sprintf("waves: the rollout waits after %s for approval; %s", ev.Wave, ev.Detail)
	case "pause":
		return fmt.Sprintf("waves: pause after %s until %s", ev.Wave, ev.Until.Local().Format("2006-01-02 15:04 MST"))
	}
	s := fmt.Sprintf("waves: %s %s", ev.Wave, ev.What)
	if ev.Detail != "" {
		s += ": " + ev.Detail
	}
	return s
}

// countdown redraws "opens in 1h02m03s" once a second on a terminal while a wave waits.
type countdown struct {
	ios   *ioStreams
	clock remediate.Clock // the engine's (nil = the wall clock)
	done  chan struct{}
	ended chan struct{}
}

func (c *countdown) start(wave string, until time.Time) {
	now := time.Now
	if c.clock != nil {
		now = c.clock.Now
	}
	c.done, c.ended = make(chan struct{}), make(chan struct{})
	go func(done, ended chan struct{}) {
		defer close(ended)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			fmt.Fprintf(c.ios.ErrOut, "\r\x1b[2K%s: window opens in %s", wave, until.Sub(now()).Round(time.Second))
			select {
			case <-t.C:
			case <-done:
				fmt.Fprint(c.ios.ErrOut, "\r\x1b[2K")
				return
			}
		}
	}(c.done, c.ended)
}

func (c *countdown) stop() {
	if c.done != nil {
		close(c.done)
		<-c.ended
		c.done = nil
	}
}

// writeWavesStatus shows each wave's state from the journal and its next window.
func writeWavesStatus(w io.Writer, j *journal.Journal, waves *remediate.Waves, now time.Time) error {
	name := remediate.LockName(waves.File)
	states, err := j.Waves(name)
	if err != nil {
		return err
	}
	state := map[string]journal.WaveState{}
	for _, s := range states {
		state[s.Wave] = s
	}
	outcome := map[string]string{}
	runs, err := j.Runs(10000)
	if err != nil {
		return err
	}
	for i := len(runs) - 1; i >= 0; i-- { // oldest first: the newest outcome wins
		if runs[i].Inventory != name {
			continue
		}
		hosts, err := j.Hosts(runs[i].ID)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if h.Outcome != "" {
				outcome[h.Host] = h.Outcome
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tSTATUS\tDONE\tFAILED\tPENDING\tNEXT WINDOW")
	for _, wv := range waves.Waves {
		var done, failed, pending int
		for _, e := range wv.Members {
			switch outcome[e] {
			case string(remediate.Remediated), string(remediate.NotPlanned):
				done++
			case string(remediate.RemediationFailed), string(remediate.RefusedDrift):
				failed++
			default:
				pending++
			}
		}
		st := orDefault(state[wv.Name].Status, journal.WavePending)
		if r := state[wv.Name].Reason; r != "" {
			st += " (" + r + ")"
		}
		next := "any time"
		if wv.Window != nil {
			next = "never again"
			if o, _, ok := wv.Window.Next(now); ok {
				next = fmt.Sprintf("%s (your time %s)", o.Format("2006-01-02 15:04 MST"), o.In(now.Location()).Format("15:04 MST"))
				if !o.After(now) {
					next = "open now"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", wv.Name, st, done, failed, pending, next)
	}
	return tw.Flush()
}
