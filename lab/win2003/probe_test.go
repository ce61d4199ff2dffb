package win2003_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
)

// exec runs one command line on h and returns stdout, stderr and the exit code.
func exec(t *testing.T, h *win2003.Host, cmdline string, stdin []byte) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	var in *bytes.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	var rc int
	if in != nil {
		rc = h.Exec(context.Background(), cmdline, in, &out, &errb)
	} else {
		rc = h.Exec(context.Background(), cmdline, nil, &out, &errb)
	}
	return out.String(), errb.String(), rc
}

// wantRC is each section's exit code on a host of the scenario (0 when absent).
func wantRC(scenario string) map[string]int {
	switch scenario {
	case "no-iis":
		return map[string]int{"iis": 1, "w3svc": 1060, "apppools": int(int32(-2147217394))}
	case "sp1":
		return map[string]int{"hotfixes": 1} // updates of an SP1 host register under ...\SP2
	case "no-powershell":
		return map[string]int{"powershell": 1} // the PowerShellEngine key is missing
	}
	return nil
}

// allPlaybooks are the embedded playbooks: a manifest's verdict is what diagnosing with all of
// them gives (the kb973917 host is affected under kb973917's playbook).
func allPlaybooks(t *testing.T) []*playbooks.Playbook {
	var out []*playbooks.Playbook
	for _, name := range playbooks.Embedded() {
		pb, err := playbooks.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pb)
	}
	return out
}

// TestProbeBothFormsEveryScenario runs probe v1 as the one-line WinRM command and as the .cmd
// batch file redirected to a file, on every scenario: all 13 sections, the right exit codes, and
// the verdict the scenario promises.
func TestProbeBothFormsEveryScenario(t *testing.T) {
	for _, name := range win2003.Scenarios() {
		t.Run(name, func(t *testing.T) {
			clock := win2003.NewManualClock(win2003.DefaultStart)
			h, err := win2003.NewScenario(name, win2003.Options{Seed: 7, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := win2003.ScenarioVerdict(name)
			if h.Verdict() != want {
				t.Fatalf("Verdict() = %s, want %s", h.Verdict(), want)
			}
			// one-line form, as sent over WinRM
			// the command's exit code is the last section's (powershell)
			last := wantRC(name)["powershell"]
			out, _, rc := exec(t, h, checks.ProbeCommand(), nil)
			if rc != last {
				t.Errorf("probe command exit code %d, want %d", rc, last)
			}
			checkCapture(t, name, "command", []byte(out))

			// batch form: written to the host, run with > file, read back with type
			exec(t, h, `mkdir C:\iisremedy`, nil)
			if _, e, rc := exec(t, h, `findstr "^" > C:\iisremedy\probe.cmd`, []byte(checks.ProbeScript())); rc != 0 {
				t.Fatalf("staging probe.cmd: rc=%d %s", rc, e)
			}
			if _, e, rc := exec(t, h, `C:\iisremedy\probe.cmd > C:\iisremedy\probe.txt`, nil); rc != last {
				t.Errorf("probe.cmd: rc=%d stderr=%q", rc, e)
			}
			capture, _, _ := exec(t, h, `type C:\iisremedy\probe.txt`, nil)
			if !strings.Contains(capture, "\xff\xfe") && !strings.Contains(capture, "Please wait while WMIC") && !strings.Contains(capture, "Espere mientras") {
				t.Errorf("batch capture has no UTF-16LE wmic section")
			}
			checkCapture(t, name, "batch", []byte(capture))
		})
	}
}

func checkCapture(t *testing.T, scenario, form string, data []byte) {
	t.Helper()
	c, err := checks.ParseCapture(data)
	if err != nil {
		t.Fatalf("%s: ParseCapture: %v", form, err)
	}
	rcs := wantRC(scenario)
	for _, sec := range checks.ProbeSections() {
		s := c.Section(sec)
		if s == nil || !s.Complete || !s.RCKnown {
			t.Errorf("%s: section %s missing or incomplete: %+v", form, sec, s)
			continue
		}
		if s.RC != rcs[sec] {
			t.Errorf("%s: section %s rc=%d, want %d", form, sec, s.RC, rcs[sec])
		}
	}
	if len(c.Problems) > 0 {
		t.Errorf("%s: capture problems: %v", form, c.Problems)
	}
	f, err := checks.ParseFacts(data)
	if err != nil {
		t.Fatalf("%s: ParseFacts: %v", form, err)
	}
	fd := checks.DiagnoseAll(f, allPlaybooks(t))
	want, _ := win2003.ScenarioVerdict(scenario)
	if fd.Verdict != want {
		t.Errorf("%s: diagnosis %s, want %s; evidence:\n%s", form, fd.Verdict, want, strings.Join(fd.Evidence, "\n"))
	}
}
