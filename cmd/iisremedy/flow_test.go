package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
)

// runCLIOn runs the CLI in this process with the engine on a lab fleet's virtual clock.
func runCLIOn(t *testing.T, f *lab.Fleet, env map[string]string, args ...string) (code exitCode, stdout, stderr string) {
	t.Helper()
	ios, _, out, errOut := testStreams()
	code = runWith(context.Background(), args, ios, func(k string) string { return env[k] }, lab.EngineClock{C: f.Clock()})
	return code, out.String(), errOut.String()
}

// TestPlanApplyReportOnLab goes through the commands an admin runs, against a virtual-time
// fleet: plan (reviewed as Markdown), apply, apply again (nothing done twice), history and
// report; an edited plan is refused without touching a host; and the password is in none of
// what they wrote, nor in any command line a host received.
func TestPlanApplyReportOnLab(t *testing.T) {
	t.Parallel() // a fleet of its own
	const secret = "Grep-Me-7f3a9c-Secret"
	dir := t.TempDir()
	sp2 := filepath.Join(dir, "sp2")
	f := listenFleet(t, lab.Config{Hosts: 14, Scenario: "mix", Seed: 21, VirtualTime: true, InstallersDir: sp2, InstallerSize: 48 << 10, Password: secret})
	inv := fleetInventory(t, f)
	env := map[string]string{"IISREMEDY_PASSWORD": secret}
	plan, journal := filepath.Join(dir, "plan.json"), filepath.Join(dir, "journal.db")
	var transcript strings.Builder
	run := func(want exitCode, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLIOn(t, f, env, args...)
		transcript.WriteString(stdout + stderr)
		if code != want {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		return stdout
	}

	md := run(exitOK, "plan", "-i", inv, "--installers", sp2, "--out", plan, "-o", "markdown", "--debug")
	if !strings.Contains(md, "SHA-256") && !strings.Contains(md, "sha256") {
		t.Errorf("the plan's Markdown shows no digest:\n%s", md)
	}
	writes := func() int {
		n := 0
		for _, h := range f.Hosts() {
			for _, c := range h.Model.Commands() {
				if c.Wrote {
					n++
				}
			}
		}
		return n
	}
	if n := writes(); n != 0 {
		t.Fatalf("plan wrote %d commands to the hosts", n)
	}

	// A plan edited after review no longer matches its digest.
	data, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(dir, "edited.json")
	if err := os.WriteFile(edited, bytes.Replace(data, []byte(`"action": "remediate"`), []byte(`"action": "skip"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLIOn(t, f, env, "apply", edited, "--journal", journal)
	if code != exitUsage || !strings.Contains(stderr, "digest") {
		t.Errorf("edited plan: exit %d, %s", code, stderr)
	}
	if n := writes(); n != 0 {
		t.Fatalf("a refused plan wrote %d commands to the hosts", n)
	}

	out := run(exitAttention, "apply", plan, "--journal", journal, "-o", "json", "--debug", "--parallel", "6")
	var applied struct {
		Run   string `json:"run"`
		Hosts []struct {
			Host    string            `json:"host"`
			Outcome remediate.Outcome `json:"outcome"`
			Step    remediate.Step    `json:"step"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &applied); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, out)
	}
	m := f.Manifest()
	for i, h := range applied.Hosts {
		want := m.Hosts[i]
		o := want.Outcome
		if o == "failed" {
			o = string(remediate.RemediationFailed)
		}
		if h.Host != want.Host || string(h.Outcome) != o {
			t.Errorf("%s (%s): %s at %s, want %s", h.Host, want.Scenario, h.Outcome, h.Step, o)
		}
	}
	runs := map[string]int{}
	for _, h := range f.Hosts() {
		runs[h.Addr] = len(h.Model.InstallerRuns())
	}

	// Applying the same plan again resumes: the remediated hosts are left alone.
	run(exitAttention, "apply", plan, "--journal", journal)
	for i, h := range f.Hosts() {
		if applied.Hosts[i].Outcome == remediate.Remediated && len(h.Model.InstallerRuns()) != runs[h.Addr] {
			t.Errorf("%s: the second apply ran the installer again", h.Addr)
		}
	}
	if hist := run(exitOK, "history", "--journal", journal); !strings.Contains(hist, applied.Run) {
		t.Errorf("history does not list run %s:\n%s", applied.Run, hist)
	}
	report := run(exitOK, "report", applied.Run, "--journal", journal, "-o", "markdown")
	if !strings.Contains(report, "remediated") {
		t.Errorf("report:\n%s", report)
	}

	// The password is nowhere: not in what was printed or logged, the plan, the journal (WAL
	// included), nor any command line a host received.
	files := []string{plan}
	matches, _ := filepath.Glob(journal + "*")
	files = append(files, matches...)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the password is in %s", p)
		}
	}
	if strings.Contains(transcript.String(), secret) {
		t.Error("the password is in the output or the log")
	}
	for _, h := range f.Hosts() {
		for _, c := range h.Model.Commands() {
			if strings.Contains(c.CommandLine, secret) {
				t.Errorf("%s received the password on a command line: %s", h.Addr, c.CommandLine)
			}
		}
	}
}

// TestLabWholeFlow runs the README's main job and greps every byte it leaves for the password.
func TestLabWholeFlow(t *testing.T) {
	t.Parallel() // a fleet of its own
	const secret = "Lab-Grep-5d1e-Secret"
	journal := filepath.Join(t.TempDir(), "journal.db")
	hosts, seed := "16", "3"
	if testing.Short() {
		hosts, seed = "8", "17" // CI's race run: a smaller mix that still has a host that never returns
	}
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": secret},
		"lab", "--hosts", hosts, "--seed", seed, "--journal", journal, "--debug", "-o", "markdown")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, hosts+" of "+hosts+" hosts match the manifest (verdict and outcome)") {
		t.Errorf("stderr %q", stderr)
	}
	if !strings.Contains(stdout, "| remediated |") || !strings.Contains(stdout, "| remediation-failed | reboot |") {
		t.Errorf("stdout:\n%s", stdout)
	}
	matches, _ := filepath.Glob(journal + "*")
	if len(matches) == 0 {
		t.Fatal("no journal kept with --journal")
	}
	for _, p := range matches {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the password is in %s", p)
		}
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Error("the password is in the output or the log")
	}
}

func TestLabDetectOnly(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "lab", "--hosts", "16", "--seed", "3", "--detect-only")
	if code != exitOK || !strings.Contains(stderr, "16 of 16 verdicts match the manifest") || !strings.HasPrefix(stdout, "HOST ") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestLabWaves: lab --waves rolls the fix out in a canary and two waves: no install before the
// window opens half an hour in, the canary's install alone first, the others at least the
// 30-minute pause after it, and every outcome as the manifest says.
func TestLabWaves(t *testing.T) {
	t.Parallel() // a fleet of its own
	path := filepath.Join(t.TempDir(), "journal.db")
	code, _, stderr := runCLI(t, nil, "lab", "--waves", "--hosts", "12", "--seed", "3", "--journal", path)
	if code != exitOK || !strings.Contains(stderr, "12 of 12 hosts match the manifest") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, line := range []string{"waves: canary waits for its window", "waves: pause after canary", "waves: half done", "waves: rest done"} {
		if !strings.Contains(stderr, line) {
			t.Errorf("no %q in:\n%s", line, stderr)
		}
	}
	j, run := openOnlyRun(t, path)
	hosts, err := j.Hosts(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var installs []time.Time
	for _, h := range hosts {
		steps, err := j.Steps(run.ID, h.Host)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.Step == string(remediate.StepInstall) && s.State == string(remediate.StepStarted) {
				installs = append(installs, s.At)
				break
			}
		}
	}
	slices.SortFunc(installs, time.Time.Compare)
	opens := win2003.DefaultStart.Add(30 * time.Minute)
	if len(installs) < 2 || installs[0].Before(opens) || installs[1].Sub(installs[0]) < 30*time.Minute {
		t.Errorf("installs started at %v; want none before %v, the canary's 30 minutes or more before the next", installs, opens)
	}
}

// openOnlyRun opens the journal at path, which must hold exactly one run, and returns both; the
// journal is closed when the test ends.
func openOnlyRun(t *testing.T, path string) (*journal.Journal, journal.Run) {
	t.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	runs, err := j.Runs(2)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want exactly one", runs, err)
	}
	return j, runs[0]
}
