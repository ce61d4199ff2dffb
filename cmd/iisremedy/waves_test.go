package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
)

// labInstallers writes stand-in installer files for every package the lab's hosts can need,
// with a SHA256SUMS naming them, and returns the directory.
func labInstallers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var sums strings.Builder
	for _, name := range []string{
		"WindowsServer2003-KB914961-SP2-x86-ENU.exe", "WindowsServer2003-KB914961-SP2-x86-ESN.exe",
		"WindowsServer2003.WindowsXP-KB914961-SP2-x64-ENU.exe", "WindowsServer2003.WindowsXP-KB914961-SP2-x64-ESN.exe",
	} {
		content := "MZ stand-in for " + name
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	labAddrRe = regexp.MustCompile(`127\.0\.10\.(\d+):\d+`)
	digestRe  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
)

// TestWavesPlanMarkdownGolden: the change board's document of a rollout over a mixed lab fleet
// — who goes in which wave, when each window opens in its zone and the operator's, each host's
// action — against a golden file. Ports, paths and digests, which change from run to run, are
// replaced by placeholders first.
func TestWavesPlanMarkdownGolden(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 8, Scenario: "mix", Seed: 4})
	var inv bytes.Buffer
	if err := f.WriteInventory(&inv); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lines := strings.Split(strings.TrimSpace(inv.String()), "\n")
	grouped := "[canary]\n" + lines[0] + "\n[farm]\n" + strings.Join(lines[1:5], "\n") + "\n[rest]\n" + strings.Join(lines[5:], "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), []byte(grouped), 0o600); err != nil {
		t.Fatal(err)
	}
	waves := filepath.Join(dir, "rollout.yaml")
	if err := os.WriteFile(waves, []byte(`inventory: hosts.txt
installers: `+labInstallers(t)+`
timezone: Europe/Berlin
stage_ahead: true
waves:
  - name: canary
    groups: [canary]
    parallel: 1
    max_failures: 1
    window: {days: [sat], start: "22:00", end: "04:00"}
    after: approve
  - name: farm
    groups: [farm]
    max_failures: 25%
    window: {days: daily, start: "21:00", end: "05:00"}
    after: pause 2h
  - name: rest
    size: rest
    window: {zone: America/New_York, from: "2026-12-20 22:00", to: "2026-12-21 04:00"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	global := &globalOptions{Quiet: true, getenv: func(string) string { return "Lab-Passw0rd" }}
	opts := &wavesOptions{Connect: global.connect(), now: func() time.Time { return time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) }}
	opts.Connect.User, opts.Connect.PasswordEnv, opts.Connect.Auth = "Administrator", "IISREMEDY_PASSWORD", "negotiate"
	opts.Connect.Parallel, opts.Connect.ProbeTimeout, opts.Apply.Output = 8, time.Minute, "markdown"
	ios, _, out, errOut := testStreams()
	if err := wavesPlanRun(context.Background(), ios, global, opts, waves); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	got := labAddrRe.ReplaceAllString(out.String(), "lab-host-$1")
	got = strings.ReplaceAll(got, dir, "DIR")
	got = digestRe.ReplaceAllString(got, "<digest>")
	golden := filepath.Join("testdata", "waves-plan.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("waves plan differs from %s (check, then go test -update):\n%s", golden, got)
	}
}
