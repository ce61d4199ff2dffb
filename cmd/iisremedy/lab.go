package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
	"github.com/iisremedy/iisremedy/remote"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// labRunOptions are the flags of `lab`.
type labRunOptions struct {
	Connect    *connectOptions
	Fleet      lab.Config
	Output     string
	FirstAddr  string
	DetectOnly bool
	Stage      string
	Include    []string
	Journal    string
	Waves      bool
}

func newLabCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &labRunOptions{Connect: global.connect(), Fleet: lab.Config{MaxEnvelopeKB: 150}}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Rehearse the whole remediation on a simulated fleet of Windows Server 2003 + IIS 6 hosts",
		Long: `Start a simulated fleet of Windows Server 2003 + IIS 6 hosts on loopback addresses
(127.0.10.1, 127.0.10.2, …, each on a free port unless --port is given) and run the whole flow
against it over real WinRM (NTLM with message encryption), as 'iisremedy run' does: probe and
diagnose every host, plan, stage the SP2 installer, install it, restart, start the pools and
watch them through the soak. Then compare every host's verdict and outcome with what the lab
knows to be right (its manifest). --detect-only stops after the diagnosis. --waves rolls the
fix out as 'iisremedy waves run' does, with a waves file of the lab's own: a canary, then half
the fleet, then the rest, each inside a maintenance window that opens half an hour (of host
time) after the start, with a pause after the canary.

The fleet's simulated time runs as fast as the hosts answer: hours of installs, restarts and
soaks pass in seconds, the same on a busy machine as on an idle one. --time-scale N runs it at
N simulated seconds per real second instead. The installers are small files of the lab's own,
written to a temporary folder; the journal too is temporary unless --journal is given. The
hosts' password is $IISREMEDY_PASSWORD when set (to look for it afterwards), else a random one.

Exit status 0 when every host matches the manifest, 1 otherwise, 2 when the lab's addresses
cannot be bound, 3 when drained by Ctrl-C.`,
		Example: `  iisremedy lab
  iisremedy lab --hosts 200 --stage pull --include at-risk
  iisremedy lab --waves
  iisremedy lab --hosts 5 --scenario spanish -o json
  iisremedy lab --detect-only --hosts 1000 --parallel 100
  iisremedy lab --auth basic --https --tls-profile server2003`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("time-scale") {
				opts.Fleet.VirtualTime = true
			}
			return labRun(cmd.Context(), ios, global, opts)
		},
	}
	f := cmd.Flags()
	opts.Connect.addFlags(f, false)
	addFleetFlags(f, &opts.Fleet, &opts.FirstAddr, 20)
	f.BoolVar(&opts.Fleet.HTTPS, "https", false, "serve HTTPS (a pinned certificate per host) instead of HTTP")
	f.StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	f.BoolVar(&opts.DetectOnly, "detect-only", false, "only probe and diagnose, as 'iisremedy detect' does")
	f.BoolVar(&opts.Waves, "waves", false, "roll the fix out in waves, as 'iisremedy waves run' does: a canary, half the fleet, the rest, in a window that opens half an hour of host time later")
	f.StringVar(&opts.Stage, "stage", remediate.StagePush, "how installers reach the hosts: push, pull (from a server on 127.0.0.1) or share (the fleet's share)")
	f.StringSliceVar(&opts.Include, "include", nil, "also remediate hosts with this verdict: at-risk")
	f.StringVar(&opts.Journal, "journal", "", "keep the run's journal in `FILE` (default: a temporary file, removed)")
	f.Int64Var(&opts.Fleet.InstallerSize, "installer-size", 256<<10, "size of each lab installer in `BYTES`")
	completeOutput(cmd)
	completeScenario(cmd)
	cmd.AddCommand(newLabServeCmd(ios, global))
	return cmd
}

// addFleetFlags adds the flags that shape a lab fleet, shared by lab and lab serve.
func addFleetFlags(f *pflag.FlagSet, c *lab.Config, firstAddr *string, hosts int) {
	f.IntVar(&c.Hosts, "hosts", hosts, "number of hosts")
	f.StringVar(&c.Scenario, "scenario", "mix", "scenario of every host, or mix")
	f.Int64Var(&c.Seed, "seed", 1, "seed of the mix and of per-host details")
	f.StringVar(&c.TLSProfile, "tls-profile", "modern", "TLS the hosts offer with --https: modern, or server2003 (TLS 1.0, 3DES/RC4, SHA-1 certificate)")
	f.DurationVar(&c.Latency, "latency", 0, "latency added to every WinRM reply")
	f.Float64Var(&c.TimeScale, "time-scale", 60, "simulated seconds per real second")
	f.StringVar(firstAddr, "first-addr", "127.0.10.1", "loopback address of the first host; the others follow it")
	f.IntVar(&c.Port, "port", 0, "port of every host; 0 picks a free port for each (default: lab serve 5985, or 5986 with --https; lab a free port)")
}

// fleetPort turns --port into lab.Config.Port: 0 given explicitly is a free port per host
// (-1), left out it is the lab's default (serve: the WinRM ports) or a free port (lab).
func fleetPort(c *lab.Config, given, freeByDefault bool) {
	if c.Port == 0 && (given || freeByDefault) {
		c.Port = -1
	}
}

// checkFleet validates the fleet flags; firstAddr is parsed into c.
func checkFleet(c *lab.Config, firstAddr string) error {
	if c.Hosts < 1 || c.Hosts > 10000 {
		return usageErrorf("--hosts %d: want 1 to 10000", c.Hosts)
	}
	if c.MaxEnvelopeKB < 1 {
		return usageErrorf("--max-envelope-kb %d: want a positive size", c.MaxEnvelopeKB)
	}
	if c.Latency < 0 {
		return usageErrorf("--latency %s: want a positive duration", c.Latency)
	}
	if c.TimeScale <= 0 {
		return usageErrorf("--time-scale %g: want a positive factor", c.TimeScale)
	}
	switch c.TLSProfile {
	case "modern", "server2003":
	default:
		return usageErrorf("--tls-profile %q: want modern or server2003", c.TLSProfile)
	}
	a, err := netip.ParseAddr(firstAddr)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return usageErrorf("--first-addr %q: want an IPv4 loopback address (127.x.y.z)", firstAddr)
	}
	c.FirstAddr = a
	if c.Port < 0 || c.Port > 65535 {
		return usageErrorf("--port %d: want 0 (a free port) to 65535", c.Port)
	}
	return checkScenario(c.Scenario)
}

// startFleet starts the fleet; an address another process holds is bad input, with the way out.
func startFleet(ctx context.Context, cfg lab.Config) (*lab.Fleet, error) {
	fleet, err := lab.Start(ctx, cfg)
	var le *lab.ListenError
	if errors.As(err, &le) {
		return nil, usageErrorf("cannot listen on %s (%v): another lab serve may be running; pick other addresses with --first-addr (for example 127.0.20.1) or another --port", le.Addr, errors.Unwrap(le.Err))
	}
	return fleet, err
}

func labRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *labRunOptions) error {
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	if err := opts.Connect.validate(); err != nil {
		return err
	}
	if err := checkFleet(&opts.Fleet, opts.FirstAddr); err != nil {
		return err
	}
	if opts.Connect.Auth == remote.AuthBasic && !opts.Fleet.HTTPS && !opts.Connect.AllowUnencrypted {
		return usageErrorf("lab --auth basic: Basic over plain HTTP sends the password readable; add --https, or --allow-unencrypted to allow it")
	}
	rem := remediationFlags{Stage: opts.Stage, Include: opts.Include, Warmup: "remote", ServeAddr: "127.0.0.1:0"}
	if opts.Fleet.InstallerSize < 1 {
		return usageErrorf("--installer-size %d: want a size in bytes", opts.Fleet.InstallerSize)
	}
	// The fleet lives only as long as this command: a random password that nobody sees will do,
	// unless $IISREMEDY_PASSWORD (--password-env) gives one to look for afterwards.
	password := opts.Connect.getenv(opts.Connect.PasswordEnv)
	if password == "" {
		password = rand.Text()
	}
	cfg := opts.Fleet
	fleetPort(&cfg, true, true) // free ports unless --port says, so a running lab serve does not get in the way
	cfg.Auth = []string{opts.Connect.Auth}
	cfg.AllowUnencrypted = opts.Connect.AllowUnencrypted
	cfg.User = opts.Connect.User
	cfg.Password = password
	if opts.Waves && opts.DetectOnly {
		return usageErrorf("lab: --waves and --detect-only do not go together: waves remediate")
	}
	tempJournal := false
	if !opts.DetectOnly {
		tmp, err := os.MkdirTemp("", "iisremedy-lab-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		cfg.InstallersDir = filepath.Join(tmp, "installers")
		rem.Installers = cfg.InstallersDir
		if opts.Journal == "" {
			opts.Journal, tempJournal = filepath.Join(tmp, "journal.db"), true
		}
	}
	fleet, err := startFleet(ctx, cfg)
	if err != nil {
		return err
	}
	defer fleet.Close()
	rem.Share = fleet.Share()
	if !opts.DetectOnly {
		if err := rem.validate(); err != nil {
			return err
		}
	}

	// The fleet's inventory goes through the same parser as an admin's file.
	var inventory bytes.Buffer
	if err := fleet.WriteInventory(&inventory); err != nil {
		return err
	}
	inv, err := remediate.ParseInventory("lab inventory", &inventory)
	if err != nil {
		return err
	}
	hosts, err := resolveTargets(ios, global.Quiet, inv, opts.Connect.defaults())
	if err != nil {
		return err
	}
	if !global.Quiet {
		fmt.Fprintf(ios.ErrOut, "lab: %s up; probing over WinRM (%s)\n", plural(len(hosts), "host"), opts.Connect.Auth)
	}
	clock := lab.EngineClock{C: fleet.Clock()}
	labGlobal := &globalOptions{Quiet: global.Quiet, Debug: global.Debug, getenv: global.getenv, clock: clock}
	e := newEngine(labGlobal, ios, opts.Connect, password, nil)
	start, simStart := time.Now(), clock.Now()
	if opts.Waves {
		return labWaves(ctx, ios, labGlobal, e, fleet, hosts, rem, opts, password)
	}
	findings := runDetect(ctx, ios, global, e, hosts)
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.DetectOnly {
		elapsed := time.Since(start)
		if err := writeFindings(ios.Out, opts.Output, findings); err != nil {
			return err
		}
		return compareWithManifest(ios, fleet.Manifest(), findings, elapsed)
	}

	def := playbooks.Default()
	installers, err := loadInstallers(rem.Installers, def)
	if err != nil {
		return err
	}
	plan := remediate.NewPlan(findings, rem.options(def), installers, nil, "iisremedy "+buildVersion(), clock.Now(), "lab")
	flags := applyFlags{Journal: opts.Journal, Output: opts.Output, ServeAddr: rem.ServeAddr}
	results, err := execute(ctx, ios, global, e, execution{plan: plan, installers: installers, password: password, flags: flags, command: "lab", tempJournal: tempJournal})
	if err != nil && !errors.Is(err, errNeedsAttention) {
		return err
	}
	verdicts := make(map[string]playbooks.Verdict, len(findings))
	for _, f := range findings {
		verdicts[f.Host.Entry] = f.Verdict
	}
	return compareOutcomes(ios, fleet.Manifest(), verdicts, results, plan.Options.IncludeAtRisk, time.Since(start), clock.Now().Sub(simStart))
}

// compareOutcomes reports every host whose verdict or remediation outcome differs from the
// lab's manifest.
func compareOutcomes(ios *ioStreams, m lab.Manifest, verdicts map[string]playbooks.Verdict, results []remediate.HostResult, atRisk bool, elapsed, simulated time.Duration) error {
	want := make(map[string]lab.ManifestHost, len(m.Hosts))
	for _, h := range m.Hosts {
		want[h.Host] = h
	}
	wrong := 0
	if len(results) != len(m.Hosts) {
		wrong++
		fmt.Fprintf(ios.ErrOut, "lab: %d results for %s\n", len(results), plural(len(m.Hosts), "host"))
	}
	for _, r := range results {
		w := want[r.Host.Entry]
		outcome, step := w.Outcome, w.FailedStep
		if atRisk && w.OutcomeWithAtRisk != "" {
			outcome = w.OutcomeWithAtRisk
		}
		if outcome == "failed" {
			outcome = string(remediate.RemediationFailed)
		} else {
			step = ""
		}
		got := string(r.Outcome)
		if r.Outcome != remediate.RemediationFailed {
			r.Step = ""
		}
		switch {
		case verdicts[r.Host.Entry] != w.Verdict:
			wrong++
			fmt.Fprintf(ios.ErrOut, "lab: %s (%s): verdict %s, want %s\n", r.Host.Entry, w.Scenario, verdicts[r.Host.Entry], w.Verdict)
		case got != outcome || string(r.Step) != step:
			wrong++
			fmt.Fprintf(ios.ErrOut, "lab: %s (%s): %s, want %s\n", r.Host.Entry, w.Scenario, atStep(got, string(r.Step)), atStep(outcome, step))
		}
	}
	fmt.Fprintf(ios.ErrOut, "lab: %d of %d hosts match the manifest (verdict and outcome); %s of host time in %s\n",
		len(results)-wrong, len(results), simulated.Round(time.Second), elapsed.Round(time.Millisecond))
	if wrong > 0 {
		return errNeedsAttention
	}
	return nil
}

func atStep(outcome, step string) string {
	if step == "" {
		return outcome
	}
	return outcome + " at " + step
}

// compareWithManifest reports every host whose verdict differs from the lab's expectation.
func compareWithManifest(ios *ioStreams, m lab.Manifest, findings []remediate.HostFinding, elapsed time.Duration) error {
	want := make(map[string]lab.ManifestHost, len(m.Hosts))
	for _, h := range m.Hosts {
		want[h.Host] = h
	}
	wrong := 0
	for _, f := range findings {
		w := want[f.Host.Entry]
		if f.Verdict != w.Verdict {
			wrong++
			fmt.Fprintf(ios.ErrOut, "lab: %s (%s): verdict %s, want %s\n", f.Host.Entry, w.Scenario, f.Verdict, w.Verdict)
		}
	}
	fmt.Fprintf(ios.ErrOut, "lab: %d of %d verdicts match the manifest; probed in %s (%.0f hosts/s)\n",
		len(findings)-wrong, len(findings), elapsed.Round(time.Millisecond), float64(len(findings))/max(elapsed.Seconds(), 1e-9))
	if wrong > 0 {
		return errNeedsAttention
	}
	return nil
}

// labServeOptions are the flags of `lab serve`.
type labServeOptions struct {
	Fleet            lab.Config
	Auth             []string
	AllowUnencrypted bool
	PasswordEnv      string
	Inventory        string
	Manifest         string
	FirstAddr        string
	Background       bool
	PIDFile          string
	child            bool // this process is the background server a --background parent started
}

func newLabServeCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &labServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve lab hosts over WinRM until interrupted",
		Long: `Serve lab hosts over WinRM on loopback addresses 127.0.10.1, 127.0.10.2, … (port 5985,
or 5986 with --https) until interrupted. The inventory of the hosts is printed on standard
output and, with --inventory, written to a file once every host listens; --manifest writes
each host's scenario and the verdict a correct diagnosis gives. The login is Administrator with
the password from the environment variable named by --password-env.

With --background the command returns as soon as the hosts listen and the files are written,
leaving the hosts served by a process of their own (its PID in --pid-file): the next command of
a script finds them ready.`,
		Example: `  export IISREMEDY_PASSWORD=anything
  iisremedy lab serve --background --pid-file lab.pid --hosts 200 --inventory hosts.txt --manifest manifest.json
  iisremedy detect -i hosts.txt -o json
  kill "$(cat lab.pid)"`,
		Args:        noArgs,
		Annotations: map[string]string{untilSignal: "yes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return labServeRun(cmd, ios, global, opts)
		},
	}
	f := cmd.Flags()
	addFleetFlags(f, &opts.Fleet, &opts.FirstAddr, 10)
	f.BoolVar(&opts.Fleet.HTTPS, "https", false, "serve HTTPS on port 5986 instead of HTTP on 5985")
	f.StringSliceVar(&opts.Auth, "auth", []string{"negotiate"}, "authentication schemes offered: negotiate (ntlm), basic")
	f.BoolVar(&opts.AllowUnencrypted, "allow-unencrypted", false, "accept Basic over plain HTTP, as a host with AllowUnencrypted=true does")
	f.StringVar(&opts.PasswordEnv, "password-env", "IISREMEDY_PASSWORD", "name of the environment variable holding the hosts' password")
	f.IntVar(&opts.Fleet.MaxEnvelopeKB, "max-envelope-kb", 150, "MaxEnvelopeSizekb of the hosts' WinRM service")
	f.StringVar(&opts.Inventory, "inventory", "", "write the inventory to `FILE`")
	f.StringVar(&opts.Manifest, "manifest", "", "write the manifest (scenario, expected verdict and remediation outcome per host) to `FILE`")
	f.StringVar(&opts.Fleet.InstallersDir, "installers", "", "write the SP2 installers the hosts need, and SHA256SUMS, to `DIR`; the hosts' share "+lab.DefaultShare+" serves it")
	f.Int64Var(&opts.Fleet.InstallerSize, "installer-size", 0, "size of each lab installer in `BYTES` (0 = 1 MiB + 4321; any size, 400 MiB included)")
	f.BoolVar(&opts.Background, "background", false, "return once the hosts listen, serving them from a process of their own")
	f.StringVar(&opts.PIDFile, "pid-file", "", "with --background, write the serving process's PID to `FILE`")
	f.BoolVar(&opts.child, backgroundChildFlag, false, "")
	_ = f.MarkHidden(backgroundChildFlag)
	completeScenario(cmd)
	return cmd
}

func (o *labServeOptions) validate() error {
	if err := checkFleet(&o.Fleet, o.FirstAddr); err != nil {
		return err
	}
	for i, a := range o.Auth {
		switch n := remediate.NormalizeAuth(a); n {
		case remote.AuthNegotiate, remote.AuthBasic:
			o.Auth[i] = n
		default:
			return usageErrorf("--auth %q: want negotiate (or ntlm) or basic", a)
		}
	}
	if o.PIDFile != "" && !o.Background {
		return usageErrorf("--pid-file: only with --background")
	}
	if o.Fleet.InstallerSize < 0 {
		return usageErrorf("--installer-size %d: want a size in bytes, or 0 for the default", o.Fleet.InstallerSize)
	}
	return nil
}

func labServeRun(cmd *cobra.Command, ios *ioStreams, global *globalOptions, opts *labServeOptions) error {
	ctx := cmd.Context()
	if err := opts.validate(); err != nil {
		return err
	}
	password := global.getenv(opts.PasswordEnv)
	if password == "" {
		return usageErrorf("the lab hosts' password comes from $%s, which is empty: set it (any value) and run again", opts.PasswordEnv)
	}
	if opts.Background {
		return startBackground(ctx, cmd, ios, opts.PIDFile)
	}
	cfg := opts.Fleet
	fleetPort(&cfg, cmd.Flags().Changed("port"), false)
	cfg.Auth = opts.Auth
	cfg.AllowUnencrypted = opts.AllowUnencrypted
	cfg.User = "Administrator"
	cfg.Password = password
	start := time.Now()
	fleet, err := startFleet(ctx, cfg)
	if err != nil {
		return err
	}
	defer fleet.Close()

	if err := writeFileAtomic(opts.Inventory, fleet.WriteInventory); err != nil {
		return err
	}
	if err := writeFileAtomic(opts.Manifest, fleet.WriteManifest); err != nil {
		return err
	}
	if err := fleet.WriteInventory(ios.Out); err != nil {
		return err
	}
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https (" + cfg.TLSProfile + ")"
	}
	fmt.Fprintf(ios.ErrOut, "lab: %s up in %s, %s, auth %s; interrupt to stop\n",
		plural(len(fleet.Hosts()), "host"), time.Since(start).Round(time.Millisecond), scheme, strings.Join(cfg.Auth, ","))
	if opts.child {
		detachOutput(ios)
	}
	<-ctx.Done()
	return nil
}

// checkScenario accepts mix or a known scenario name.
func checkScenario(name string) error {
	if name == "mix" {
		return nil
	}
	for _, s := range lab.Scenarios() {
		if s == name {
			return nil
		}
	}
	return usageErrorf("--scenario %q: want mix or one of %s", name, strings.Join(lab.Scenarios(), ", "))
}

// writeFileAtomic writes a file through write, under a temporary name renamed into place, so
// that a script waiting for the file never reads half of it; an empty path writes nothing.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// labWaves rolls the fix out over the fleet with a waves file of the lab's own, written beside
// the installers: a canary (the first host the manifest expects remediated) that halts the
// rollout if it fails, half the fleet, the rest (no failure threshold: a mixed fleet fails some
// hosts on purpose); each wave's window opens half an hour of host time after now.
func labWaves(ctx context.Context, ios *ioStreams, global *globalOptions, e *remediate.Engine, fleet *lab.Fleet, hosts []remediate.Host,
	rem remediationFlags, opts *labRunOptions, password string) error {
	dir := filepath.Dir(rem.Installers)
	var inventory bytes.Buffer
	if err := fleet.WriteInventory(&inventory); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), inventory.Bytes(), 0o600); err != nil {
		return err
	}
	m := fleet.Manifest()
	canary := ""
	for _, h := range m.Hosts {
		if h.Outcome == string(remediate.Remediated) {
			canary = h.Host
			break
		}
	}
	if canary == "" {
		return usageErrorf("lab --waves: no host of this fleet is to be remediated; pick another --scenario or more --hosts")
	}
	now := global.engineClock().Now().UTC()
	window := fmt.Sprintf("{zone: UTC, from: %q, to: %q}", now.Add(30*time.Minute).Format("2006-01-02 15:04"), now.Add(7*24*time.Hour).Format("2006-01-02 15:04"))
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "inventory: hosts.txt\ninstallers: %s\nstage: %s\nstage_ahead: true\ninclude_at_risk: %t\n",
		filepath.Base(rem.Installers), rem.Stage, len(rem.Include) > 0)
	if rem.Stage == remediate.StageShare {
		fmt.Fprintf(&yaml, "share: '%s'\n", rem.Share)
	}
	fmt.Fprintf(&yaml, `waves:
  - name: canary
    hosts: [%q]
    parallel: 1
    max_failures: 1
    window: %s
    after: pause 30m
  - name: half
    size: 50%%
    window: %s
  - name: rest
    size: rest
    window: %s
`, canary, window, window, window)
	path := filepath.Join(dir, "waves.yaml")
	if err := os.WriteFile(path, []byte(yaml.String()), 0o600); err != nil {
		return err
	}
	w, _, err := loadWaves(path, now)
	if err != nil {
		return err
	}
	def := playbooks.Default()
	installers, err := loadInstallers(rem.Installers, def)
	if err != nil {
		return err
	}
	j, err := openJournal(opts.Journal, password)
	if err != nil {
		return err
	}
	defer j.Close()
	runID := journal.NewRunID(now)
	ro := &remediate.Rollout{Waves: w, Hosts: hosts, Engine: e, Journal: j, Installers: installers, Options: rem.options(def),
		Tool: "iisremedy " + buildVersion(), RunID: runID, Drain: ctx.Done(), Holder: journal.LockHolder{Host: "lab", PID: os.Getpid(), RunID: runID}}
	start := time.Now()
	results, err := rollout(ctx, ios, global, ro, applyFlags{Journal: opts.Journal, Output: opts.Output, ServeAddr: rem.ServeAddr}, "lab --waves")
	if err != nil && !errors.Is(err, errNeedsAttention) {
		return err
	}
	verdicts := make(map[string]playbooks.Verdict, len(results))
	for _, r := range results {
		verdicts[r.Host.Entry] = r.Verdict
	}
	return compareOutcomes(ios, m, verdicts, results, len(rem.Include) > 0, time.Since(start), global.engineClock().Now().Sub(now))
}
