package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemediationBadInputExitsTwo: every bad plan, installer directory, flag or waves file is
// refused with one message naming the problem (file and line where there is one), exit status 2,
// before any host is touched: the inventories here name hosts that do not exist.
func TestRemediationBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inv := write("hosts.txt", "web01.invalid\n")
	sp2 := filepath.Dir(write("sp2/README.txt", "the installers go here\n"))
	two := filepath.Dir(write("two/WindowsServer2003-KB914961-SP2-x86-ENU.exe", "a"))
	write("two/windowsserver2003-kb914961-sp2-x86-enu_"+strings.Repeat("0", 40)+".exe", "a")
	unlisted := filepath.Dir(write("unlisted/WindowsServer2003-KB914961-SP2-x86-DEU.exe", "MZ"))
	notJSON := write("plan-bad.json", "{\n  \"version\": 1,\n  nope\n}\n")
	oldPlan := write("plan-old.json", `{"version": 0, "hosts": []}`)
	waves := write("waves.yaml", "inventory: hosts.txt\ninstallers: sp2\nwaves:\n  - name: canary\n    groups: [nosuch]\n    max_failures: 150%\n")
	env := map[string]string{"IISREMEDY_PASSWORD": "pw"}
	journal := filepath.Join(dir, "journal.db")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"plan without out", []string{"plan", "-i", inv, "--installers", sp2}, "plan: give the plan file to write with --out"},
		{"no installers", []string{"plan", "-i", inv, "--out", "p.json"}, "give the directory of the SP2 installer files with --installers DIR"},
		{"missing installers dir", []string{"run", "-i", inv, "--installers", filepath.Join(dir, "nope")}, "nope: not a directory"},
		{"unknown method", []string{"stage", "-i", inv, "--installers", sp2, "--stage", "carrier-pigeon"}, `--stage "carrier-pigeon": want push, pull or share`},
		{"pull without address", []string{"stage", "-i", inv, "--installers", sp2, "--stage", "pull"}, "--stage pull: give --serve-addr"},
		{"share without UNC", []string{"stage", "-i", inv, "--installers", sp2, "--stage", "share", "--share", "C:\\sp2"}, `--share "C:\\sp2": --stage share needs a UNC folder`},
		{"bad rate", []string{"stage", "-i", inv, "--installers", sp2, "--bwlimit", "fast"}, `--bwlimit "fast": want bytes per second like 500k`},
		{"bad include", []string{"run", "-i", inv, "--installers", sp2, "--include", "healthy"}, `--include "healthy": only at-risk can be included`},
		{"bad work dir", []string{"run", "-i", inv, "--installers", sp2, "--work-dir", `C:\Program Files\x`}, "--work-dir"},
		{"bad max failures", []string{"run", "-i", inv, "--installers", sp2, "--max-failures", "lots"}, `--max-failures "lots": want a count like 3 or a share like 10%`},
		{"two candidates", []string{"stage", "-i", inv, "--installers", two}, "two files for x86 ENU"},
		{"no hash for a package", []string{"stage", "-i", inv, "--installers", unlisted}, "x86-DEU.exe: the catalogue has no hash for this package"},
		{"plan not json", []string{"apply", notJSON, "--journal", journal}, notJSON + ":3: not valid JSON"},
		{"plan of another version", []string{"apply", oldPlan, "--journal", journal}, oldPlan + ": version: 0, this iisremedy reads version 1 plans"},
		{"missing plan", []string{"apply", filepath.Join(dir, "none.json")}, "none.json"},
		{"apply without plan", []string{"apply"}, "iisremedy apply: give the plan file written by iisremedy plan"},
		{"waves file", []string{"waves", "plan", waves}, waves + ":6: waves[0].max_failures: \"150%\""},
		{"waves without file", []string{"waves", "run"}, "iisremedy waves run: give the waves file"},
		{"approve unknown wave", []string{"waves", "approve", write("ok.yaml", "inventory: hosts.txt\ninstallers: sp2\nwaves:\n  - name: a\n    size: rest\n"), "b", "--journal", journal}, "no wave named b"},
		{"report of no run", []string{"report", "20990101", "--journal", journal}, `run "20990101"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, env, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q on bad input", stdout)
			}
		})
	}
}
