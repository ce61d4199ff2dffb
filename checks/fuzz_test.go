package checks

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iisremedy/iisremedy/playbooks"
)

// The seed corpora are under testdata/fuzz/<FuzzName>/: real-format captures and section
// outputs (ANSI, UTF-16LE, banner, cut short, localized) and garbage.

var knownVerdicts = map[playbooks.Verdict]bool{
	playbooks.Affected: true, playbooks.Mismatch: true, playbooks.AtRisk: true, playbooks.OtherCause: true,
	playbooks.Healthy: true, playbooks.NotApplicable: true, playbooks.ProbeFailed: true,
}

func FuzzParseCapture(f *testing.F) {
	f.Add(affectedHost().capture())
	pb := playbooks.Default()
	pbs := allPlaybooks(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCapture(data)
		if err != nil {
			if c != nil {
				t.Fatal("capture and error")
			}
			return
		}
		for _, s := range c.Sections {
			if s.Name == "" {
				t.Fatal("section without a name")
			}
		}
		facts := c.Facts()
		if len(facts.Sections) != len(ProbeSections()) {
			t.Fatalf("Sections has %d entries", len(facts.Sections))
		}
		checkBounds(t, c, facts)
		fd := Diagnose(facts, pb)
		if !knownVerdicts[fd.Verdict] || len(fd.Evidence) == 0 {
			t.Fatalf("finding %+v", fd)
		}
		checkVerdictRules(t, fd)
		checkVerdictRules(t, DiagnoseAll(facts, pbs))
		if _, err := json.Marshal(facts); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeText(f *testing.F) {
	f.Add([]byte("\xff\xfeN\x00a\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, enc := decodeText(data)
		if enc == "" {
			t.Fatal("no encoding")
		}
		if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
			t.Fatalf("decodeText(%q) = %q: not NUL-free UTF-8", data, text)
		}
		for l := range lines(text) {
			if strings.ContainsAny(l, "\n") || strings.HasSuffix(l, "\r") {
				t.Fatalf("line %q keeps a line end", l)
			}
		}
	})
}

func FuzzParseRegQuery(f *testing.F) {
	f.Add("! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\X\r\n    A\tREG_SZ\tb\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		q := parseRegQuery(text)
		for _, k := range q.Keys {
			for _, v := range k.Values {
				if !isRegType(v.Type) {
					t.Fatalf("type %q", v.Type)
				}
				v.number()
			}
		}
	})
}

func FuzzParseWMICList(f *testing.F) {
	f.Add("\r\r\n\r\r\nName=c:\\windows\\system32\\inetsrv\\w3core.dll\r\r\nVersion=6.0.3790.4693\r\r\n\r\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		for in := range wmiInstances(text) {
			if len(in) == 0 || len(in) > maxProperties {
				t.Fatalf("instance of %d properties", len(in))
			}
			for name, value := range in {
				if !isPropertyName(name) || name == "" || strings.ContainsAny(value, "\n") {
					t.Fatalf("property %q=%q", name, value)
				}
			}
		}
	})
}

func FuzzParseWMIArray(f *testing.F) {
	f.Add(`{"DefaultAppPool","1234","ffffffff"}`)
	f.Fuzz(func(t *testing.T, s string) {
		if out, more := parseWMIArray(s, maxInserts); len(out) > maxInserts || more && len(out) != maxInserts {
			t.Fatalf("%d elements, more %v", len(out), more)
		}
	})
}

func FuzzParseSCQuery(f *testing.F) {
	f.Add("SERVICE_NAME: w3svc\r\n        TYPE               : 20  WIN32_SHARE_PROCESS\r\n        STATE              : 4  RUNNING\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		state, ok := parseSCQuery(text)
		if ok != (state != 0) || state < 0 || state > 7 {
			t.Fatalf("state %d, ok %v", state, ok)
		}
	})
}

func FuzzParseWMIDatetime(f *testing.F) {
	f.Add("20011224113047.000000-480")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseWMIDatetime(s, nil)
		if err == nil && tm.IsZero() {
			t.Fatal("zero time without error")
		}
	})
}

// checkVerdictRules holds a finding to the table in docs/design.md §5.4: affected and mismatch need core
// files below the baseline and a trigger installed (never a host whose binaries match),
// affected and other-cause need crash evidence, other-cause and healthy need the binaries
// at the baseline.
func checkVerdictRules(t *testing.T, fd Finding) {
	t.Helper()
	below, trigger := len(fd.BelowBaseline) > 0, len(fd.TriggersInstalled) > 0
	var ok bool
	switch fd.Verdict {
	case playbooks.Affected:
		ok = below && trigger && fd.CrashEvidence
	case playbooks.Mismatch:
		ok = below && trigger && !fd.CrashEvidence
	case playbooks.AtRisk:
		ok = below && !trigger
	case playbooks.OtherCause:
		ok = !below && fd.CrashEvidence
	case playbooks.Healthy:
		ok = !below && !fd.CrashEvidence
	default:
		ok = true
	}
	if !ok {
		t.Fatalf("verdict %s with below=%v trigger=%v crash=%v\n%v", fd.Verdict, below, trigger, fd.CrashEvidence, fd.Evidence)
	}
}

// checkBounds holds a capture and its facts to the documented bounds.
func checkBounds(t *testing.T, c *Capture, f *Facts) {
	t.Helper()
	if len(c.Sections) > maxSections || len(c.Problems) > maxCaptureProblems+3 ||
		len(f.Problems) > len(c.Problems)+len(ProbeSections())*(maxSectionProblems+1) {
		t.Fatalf("%d sections, %d capture problems, %d problems", len(c.Sections), len(c.Problems), len(f.Problems))
	}
	if len(f.Events) > maxEvents || len(f.Files) > maxFiles || len(f.Pools) > maxPools || len(f.Hotfixes) > maxHotfixes {
		t.Fatalf("%d events, %d files, %d pools, %d hotfixes kept", len(f.Events), len(f.Files), len(f.Pools), len(f.Hotfixes))
	}
	values := []string{f.Hostname, f.OS.ProductName, f.OS.CSDVersion, f.OS.BuildLab, f.SystemRoot, f.Arch}
	for k, v := range f.Files {
		values = append(values, k, v)
	}
	for _, e := range f.Events {
		if len(e.Inserts) > maxInserts {
			t.Fatalf("%d insertion strings kept", len(e.Inserts))
		}
		values = append(values, e.Inserts...)
	}
	for _, p := range f.Pools {
		values = append(values, p.Name, p.Path)
	}
	for _, v := range append(values, f.Hotfixes...) {
		if len(v) > maxValue {
			t.Fatalf("value of %d bytes kept", len(v))
		}
	}
	for _, p := range f.Problems {
		if len(p.Msg) > 1024 {
			t.Fatalf("problem of %d bytes: %.100q", len(p.Msg), p.Msg)
		}
	}
}
