package remediate_test

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
)

// remediateFleet plans and remediates every host of a virtual-time fleet whose installers sit
// in a folder, as iisremedy run does, and returns the fleet and the results.
func remediateFleet(t *testing.T, cfg lab.Config, opts remediate.Options) (*lab.Fleet, []remediate.HostResult, error) {
	t.Helper()
	return remediateFleetWith(t, cfg, opts, nil)
}

// remediateFleetWith is remediateFleet with the engine adjusted by set (nil = as is).
func remediateFleetWith(t *testing.T, cfg lab.Config, opts remediate.Options, set func(*remediate.Engine)) (*lab.Fleet, []remediate.HostResult, error) {
	t.Helper()
	cfg.VirtualTime = true
	if cfg.InstallersDir == "" {
		cfg.InstallersDir = t.TempDir()
	}
	f, hosts := startFleet(t, cfg)
	e := engine(f, labPassword)
	e.Parallel = 8
	if set != nil {
		set(e)
	}
	pb := playbooks.Default()
	in, err := remediate.LoadInstallers(cfg.InstallersDir, pb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Stage == "" {
		opts.Stage = remediate.StagePush
	}
	if opts.Stage == remediate.StageShare {
		opts.Share = f.Share()
	}
	if opts.Warmup == "" {
		opts.Warmup = "remote"
	}
	opts.InstallerDir = cfg.InstallersDir
	opts.Timing = remediate.TimingFrom(pb.Steps)
	findings := e.Detect(context.Background(), hosts)
	plan := remediate.NewPlan(findings, opts, in, nil, "iisremedy test", e.Clock.Now(), filepath.Join(t.TempDir(), "hosts.txt"))
	run := &remediate.Run{ID: "t1", Plan: plan, Installers: in}
	if opts.Stage == remediate.StagePull {
		srv, err := remediate.StartPullServer("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		run.Pull = srv
	}
	res, err := e.Remediate(context.Background(), run)
	return f, res, err
}

// manifestOutcome is the engine's outcome the lab's manifest expects.
func manifestOutcome(o string) remediate.Outcome {
	switch o {
	case "failed":
		return remediate.RemediationFailed
	default:
		return remediate.Outcome(o)
	}
}

func TestRemediateMixMatchesManifest(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	hosts := 24
	if testing.Short() {
		hosts = 8 // CI's race run: the same paths, concurrently, on fewer scenarios
	}
	for _, stage := range []string{remediate.StagePush, remediate.StagePull, remediate.StageShare} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			f, res, err := remediateFleet(t, lab.Config{Hosts: hosts, Scenario: "mix", Seed: 5, InstallerSize: 96 << 10},
				remediate.Options{Stage: stage})
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstManifest(t, f, res, false)
		})
	}
}

func checkAgainstManifest(t *testing.T, f *lab.Fleet, res []remediate.HostResult, atRisk bool) {
	t.Helper()
	m := f.Manifest()
	if len(res) != len(m.Hosts) {
		t.Fatalf("%d results for %d hosts", len(res), len(m.Hosts))
	}
	for i, want := range m.Hosts {
		got := res[i]
		o := want.Outcome
		if atRisk && want.OutcomeWithAtRisk != "" {
			o = want.OutcomeWithAtRisk
		}
		if got.Outcome != manifestOutcome(o) || (got.Outcome == remediate.RemediationFailed && string(got.Step) != want.FailedStep) {
			t.Errorf("%s (%s): %s at %q, want %s at %q (%s); evidence:\n  %s", want.Host, want.Scenario,
				got.Outcome, got.Step, o, want.FailedStep, want.Reason, strings.Join(got.Evidence, "\n  "))
		}
	}
}

// TestRemediateEndToEnd checks more than the outcomes, on a push run of the mix: what a
// remediated host looks like afterwards, that hosts outside the plan were only read, and the
// evidence of a failed install.
func TestRemediateEndToEnd(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	var commands []remediate.CommandRecord
	f, res, err := remediateFleetWith(t, lab.Config{Hosts: 16, Scenario: "mix", Seed: 1, InstallerSize: 64 << 10},
		remediate.Options{Stage: remediate.StagePush}, func(e *remediate.Engine) {
			e.Commands = func(c remediate.CommandRecord) { commands = append(commands, c) }
		})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstManifest(t, f, res, false)
	if len(commands) == 0 {
		t.Fatal("no command transcript")
	}
	var remediated []remediate.Host
	seen := map[string]bool{}
	for i, h := range f.Hosts() {
		r := res[i]
		seen[h.Scenario] = true
		wrote := 0
		for _, c := range h.Model.Commands() {
			if c.Wrote {
				wrote++
			}
		}
		runs := h.Model.InstallerRuns()
		switch r.Outcome {
		case remediate.NotPlanned:
			if wrote > 0 || len(runs) > 0 {
				t.Errorf("%s (%s, not planned): %d writing commands, %d installer runs", h.Addr, h.Scenario, wrote, len(runs))
			}
		case remediate.Remediated:
			remediated = append(remediated, r.Host)
			if len(runs) != 1 || runs[0].User != "SYSTEM" || runs[0].InShell || runs[0].ExitCode != 0 && runs[0].ExitCode != 3010 {
				t.Errorf("%s (%s): installer runs %+v, want one as SYSTEM outside the shell", h.Addr, h.Scenario, runs)
			}
			for _, site := range h.Sites {
				if code := get(t, site); code != 200 {
					t.Errorf("%s (%s): site %s answers %d after remediation", h.Addr, h.Scenario, site, code)
				}
			}
		}
		if h.Scenario == "installer-fails" && !strings.Contains(strings.Join(r.Evidence, "\n"), "svcpack.log") {
			t.Errorf("%s: the failed install's evidence has no svcpack.log lines: %q", h.Addr, r.Evidence)
		}
	}
	for _, s := range []string{"affected", "mismatch", "other-cause", "healthy", "installer-fails", "never-returns", "no-powershell", "pending-reboot"} {
		if !seen[s] {
			t.Errorf("the fleet has no %s host; choose another seed", s)
		}
	}

	// The remediated hosts' files are at the baseline now: probed again, they are healthy.
	again := engine(f, labPassword).Detect(context.Background(), remediated)
	for _, hf := range again {
		if hf.Verdict != playbooks.Healthy {
			t.Errorf("%s after remediation: %s %q", hf.Host.Entry, hf.Verdict, hf.Evidence)
		}
	}
}

// get requests a lab site ("ip:port" or "ip:port host-name") over HTTP and returns the status.
func get(t *testing.T, site string) int {
	t.Helper()
	addr, host, _ := strings.Cut(site, " ")
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", site, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRemediateX64Spanish: the host needs the x64 Spanish installer, and its task's start date
// day first, as its locale writes dates.
func TestRemediateX64Spanish(t *testing.T) {
	f, res, err := remediateFleet(t, lab.Config{Hosts: 1, Scenario: "x64-spanish", InstallerSize: 32 << 10}, remediate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstManifest(t, f, res, false)
	h := f.Hosts()[0]
	const want = "WindowsServer2003.WindowsXP-KB914961-SP2-x64-ESN.exe"
	if runs := h.Model.InstallerRuns(); len(runs) != 1 || runs[0].Image != want {
		t.Errorf("installer runs %+v, want one of %s", runs, want)
	}
	now := f.Clock().Now()
	dayFirst := regexp.MustCompile(`schtasks /create .* /sd (\d\d)/(\d\d)/(\d{4}) `)
	found := false
	for _, c := range h.Model.Commands() {
		m := dayFirst.FindStringSubmatch(c.CommandLine)
		if m == nil {
			continue
		}
		found = true
		if m[3] != strconv.Itoa(now.Year()) || m[1] == m[2] {
			continue // a date whose day and month are equal says nothing
		}
		if d, _ := strconv.Atoi(m[1]); d <= 12 && m[2] > "12" {
			t.Errorf("task date %s/%s/%s is month first", m[1], m[2], m[3])
		}
	}
	if !found {
		t.Error("no schtasks /create with a start date in the host's command log")
	}
}

// TestApplyRefusesDrift: a host whose facts changed between plan and apply (a hotfix installed
// meanwhile) is refused, named fact and all, and nothing is written to it.
func TestApplyRefusesDrift(t *testing.T) {
	dir := t.TempDir()
	f, hosts := startFleet(t, lab.Config{Hosts: 2, Scenario: "affected", VirtualTime: true, InstallersDir: dir, InstallerSize: 32 << 10})
	e := engine(f, labPassword)
	pb := playbooks.Default()
	in, err := remediate.LoadInstallers(dir, pb, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := remediate.Options{Stage: remediate.StagePush, Warmup: "remote", InstallerDir: dir, Timing: remediate.TimingFrom(pb.Steps)}
	plan := remediate.NewPlan(e.Detect(context.Background(), hosts), opts, in, nil, "iisremedy test", e.Clock.Now(), "hosts.txt")

	drifted := f.Hosts()[1].Model
	var out strings.Builder
	if code := drifted.Exec(context.Background(), `reg add "HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\KB2124261" /v Description /d "Security Update" /f`, nil, &out, &out); code != 0 {
		t.Fatalf("reg add: %d %s", code, out.String())
	}
	before := len(drifted.Commands())
	res, err := e.Remediate(context.Background(), &remediate.Run{ID: "t2", Plan: plan, Installers: in})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != remediate.Remediated {
		t.Errorf("untouched host: %s %q", res[0].Outcome, res[0].Evidence)
	}
	if res[1].Outcome != remediate.RefusedDrift || !strings.Contains(strings.Join(res[1].Evidence, " "), "KB2124261") {
		t.Errorf("drifted host: %s %q, want refused naming KB2124261", res[1].Outcome, res[1].Evidence)
	}
	for _, c := range drifted.Commands()[before:] {
		if c.Wrote {
			t.Errorf("the refused host received a writing command: %s", c.CommandLine)
		}
	}
}

// TestRemediateOutlivesIdleShells: a host whose WinRM deletes idle shells sooner than the install
// is looked at again still gets remediated: the engine opens a new shell.
func TestRemediateOutlivesIdleShells(t *testing.T) {
	f, res, err := remediateFleet(t, lab.Config{Hosts: 1, Scenario: "affected", InstallerSize: 32 << 10, IdleTimeout: 20 * time.Second}, remediate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstManifest(t, f, res, false)
}
