package checks

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
)

// allPlaybooks loads every embedded playbook.
func allPlaybooks(t testing.TB) []*playbooks.Playbook {
	t.Helper()
	var pbs []*playbooks.Playbook
	for _, n := range playbooks.Embedded() {
		pb, err := playbooks.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		pbs = append(pbs, pb)
	}
	return pbs
}

// TestLabScenarios runs ProbeCommand through the lab's Windows Server 2003 model (its
// cmd.exe, reg, sc and wmic) and checks that the diagnosis is the one each scenario
// records: the probe, the lab's outputs and the parsers agree.
func TestLabScenarios(t *testing.T) {
	t.Parallel()
	pbs := allPlaybooks(t)
	for _, sc := range win2003.Scenarios() {
		for seed := int64(1); seed <= 3; seed++ {
			h, err := win2003.NewScenario(sc, win2003.Options{Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			h.Exec(context.Background(), ProbeCommand(), nil, &out, &errb)
			f, err := ParseFacts(out.Bytes())
			if err != nil {
				t.Fatalf("%s/%d: %v", sc, seed, err)
			}
			fd := DiagnoseAll(f, pbs)
			if fd.Verdict != h.Verdict() {
				t.Errorf("%s/%d: verdict %s, want %s\nevidence:\n  %s\nproblems: %v", sc, seed, fd.Verdict, h.Verdict(),
					strings.Join(fd.Evidence, "\n  "), f.Problems)
			}
		}
	}
}

// TestLabFileCapture runs ProbeScript on a lab host as an admin would (probe.cmd >
// probe.txt), so wmic writes UTF-16LE into the ANSI capture (after its first-run banner on
// a fresh host), and parses what type prints of the file.
func TestLabFileCapture(t *testing.T) {
	t.Parallel()
	for _, fresh := range []bool{false, true} {
		spec, err := win2003.ScenarioSpec("spanish", 2)
		if err != nil {
			t.Fatal(err)
		}
		spec.WMICInstalled = !fresh
		h, err := win2003.New(spec, win2003.Options{Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		run := func(cmd string, stdin []byte) []byte {
			var out, errb bytes.Buffer
			if rc := h.Exec(context.Background(), cmd, bytes.NewReader(stdin), &out, &errb); rc != 0 {
				t.Fatalf("%s: rc %d, stderr %q", cmd, rc, errb.String())
			}
			return out.Bytes()
		}
		run(`findstr "^" > C:\probe.cmd`, []byte(ProbeScript()))
		run(`C:\probe.cmd > C:\probe.txt`, nil)
		c, err := ParseCapture(run(`type C:\probe.txt`, nil))
		if err != nil {
			t.Fatal(err)
		}
		wantEnc := "utf-16le"
		if fresh {
			wantEnc = "ansi+utf-16le"
		}
		if got := c.Section(sectionInetsrv).Encoding; got != wantEnc {
			t.Errorf("fresh=%v: inetsrv encoding %s, want %s", fresh, got, wantEnc)
		}
		if got := c.Section(sectionEvents).Encoding; got != "utf-16le" {
			t.Errorf("fresh=%v: events encoding %s", fresh, got)
		}
		f := c.Facts()
		if fd := DiagnoseAll(f, allPlaybooks(t)); fd.Verdict != h.Verdict() || len(f.Problems) != 0 {
			t.Errorf("fresh=%v: verdict %s, want %s; problems %v", fresh, fd.Verdict, h.Verdict(), f.Problems)
		}
	}
}
