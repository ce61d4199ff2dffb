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
		for _, l := range lines(text) {
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
		for _, in := range parseWMICList(text) {
			if len(in) == 0 {
				t.Fatal("empty instance")
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
		_ = parseWMIArray(s)
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
		tm, err := parseWMIDatetime(s)
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
