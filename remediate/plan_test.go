package remediate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
)

// captureFinding diagnoses one of checks' capture fixtures as detection would.
func captureFinding(t *testing.T, name, entry string) HostFinding {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "checks", "testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	facts, err := checks.ParseFacts(data)
	if err != nil {
		t.Fatal(err)
	}
	h := Host{InventoryHost: InventoryHost{Host: entry, Entry: entry, Port: 5985}}
	h.Target.Host, h.Target.Port, h.Target.User = entry, 5985, "Administrator"
	return HostFinding{Host: h, Finding: Diagnose(facts, nil), Facts: facts}
}

func testPlan(t *testing.T, includeAtRisk bool) *Plan {
	t.Helper()
	image := "MZ the lab's SP2"
	dir := installerDir(t, map[string]string{x86ENU: image, SumsFile: sha256Hex(image) + "  " + x86ENU + "\n"})
	in, err := LoadInstallers(dir, playbooks.Default(), &HashCache{})
	if err != nil {
		t.Fatal(err)
	}
	findings := []HostFinding{
		captureFinding(t, "affected-winrm.txt", "web01"),
		captureFinding(t, "healthy-file-banner.txt", "web02"),
		captureFinding(t, "at-risk-german-later-reg.txt", "web03"),
	}
	opts := Options{IncludeAtRisk: includeAtRisk, Stage: StagePush, Warmup: "remote", InstallerDir: dir, Timing: TimingFrom(playbooks.Default().Steps)}
	return NewPlan(findings, opts, in, nil, "iisremedy test", time.Date(2010, 6, 21, 9, 0, 0, 0, time.UTC), "hosts.txt")
}

// TestNewPlanDecides: affected and mismatch hosts are remediated with their installer and exact
// steps, healthy ones are left alone, at-risk ones only when included, and a host whose
// installer is not in the directory is blocked, not guessed.
func TestNewPlanDecides(t *testing.T) {
	p := testPlan(t, false)
	byHost := map[string]PlanHost{}
	for _, h := range p.Hosts {
		byHost[h.Host] = h
	}
	web01 := byHost["web01"]
	if web01.Verdict != playbooks.Affected || web01.Action != ActionRemediate || web01.Installer == nil || web01.Installer.File != x86ENU {
		t.Fatalf("affected host: %+v", web01)
	}
	var steps []string
	for _, s := range web01.Steps {
		steps = append(steps, string(s.Step))
	}
	if strings.Join(steps, ",") != "stage,install,reboot,pools,verify" || !strings.Contains(strings.Join(web01.Steps[2].Commands, "\n"), "shutdown /r /t 30 /d p:2:16") {
		t.Errorf("steps %v: %+v", steps, web01.Steps)
	}
	if h := byHost["web02"]; h.Action != ActionNone || h.Installer != nil || len(h.Steps) != 0 {
		t.Errorf("healthy host: %+v", h)
	}
	if h := byHost["web03"]; h.Verdict != playbooks.AtRisk || h.Action != ActionNone || !strings.Contains(h.Reason, "--include at-risk") {
		t.Errorf("at-risk host: %+v", h)
	}
	// Included, the German at-risk host needs an x86 DEU installer the directory lacks.
	if h := testPlan(t, true).Hosts[2]; h.Action != ActionBlocked || !strings.Contains(h.Reason, "WindowsServer2003-KB914961-SP2-x86-DEU.exe") {
		t.Errorf("included at-risk host without its installer: %+v", h)
	}
	if p.Remediated() != 1 || len(p.Digest) != 64 {
		t.Errorf("remediated %d, digest %q", p.Remediated(), p.Digest)
	}
}

// TestReadPlan: a written plan reads back with the same digest; bad plans are refused with the
// file, the line where known, and what is wrong.
func TestReadPlan(t *testing.T) {
	p := testPlan(t, false)
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	back, err := ReadPlan("plan.json", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest != p.Digest || back.Hosts[0].Installer.SHA256 != p.Hosts[0].Installer.SHA256 {
		t.Error("round trip changed the plan")
	}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"not json", "{\n  \"version\": 1,\n  oops\n}", "plan.json:3: not valid JSON"},
		{"empty", "", "plan.json:1: not valid JSON"},
		{"not a plan", `{"hosts": []}`, "plan.json: version: missing"},
		{"other version", strings.Replace(good, `"version": 1`, `"version": 2`, 1), "plan.json: version: 2, this iisremedy reads version 1"},
		{"edited", strings.Replace(good, `"verdict": "healthy"`, `"verdict": "affected"`, 1), "plan.json: digest: the plan does not match its digest"},
		{"unknown field", strings.Replace(good, `"version": 1,`, `"version": 1, "approved": true,`, 1), `plan.json: unknown field "approved"`},
		{"wrong type", strings.Replace(good, `"include_at_risk": false`, `"include_at_risk": "no"`, 1), "plan.json:"},
		{"bad duration", strings.Replace(good, `"soak": "10m0s"`, `"soak": "ten minutes"`, 1), "plan.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPlan("plan.json", strings.NewReader(tt.in))
			var pe *PlanError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestDriftNamesTheFact: apply refuses a host whose facts changed, saying which.
func TestDriftNamesTheFact(t *testing.T) {
	p := testPlan(t, false)
	f := captureFinding(t, "affected-winrm.txt", "web01").Facts
	if d := driftOf(p.Hosts[0], f); d != "" {
		t.Errorf("same facts drift: %s", d)
	}
	f.Files["iisutil.dll"] = "6.0.3790.3959"
	if d := driftOf(p.Hosts[0], f); d != "file iisutil.dll: 6.0.3790.3959, the plan saw 6.0.3790.1830" {
		t.Errorf("drift %q", d)
	}
	f.Hotfixes = append(f.Hotfixes, "KB999999")
	if d := driftOf(p.Hosts[0], f); !strings.HasPrefix(d, "file iisutil.dll") {
		t.Errorf("drift %q names another fact first", d)
	}
}
