package checks

import (
	"encoding/json"
	"testing"

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
		_ = lines(text)
	})
}

func FuzzParseRegQuery(f *testing.F) {
	f.Add("! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\X\r\n    A\tREG_SZ\tb\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		q := ParseRegQuery(text)
		for _, k := range q.Keys {
			for _, v := range k.Values {
				if !isRegType(v.Type) {
					t.Fatalf("type %q", v.Type)
				}
				v.Uint()
				v.Strings()
			}
		}
	})
}

func FuzzParseWMICList(f *testing.F) {
	f.Add("\r\r\n\r\r\nName=c:\\windows\\system32\\inetsrv\\w3core.dll\r\r\nVersion=6.0.3790.4693\r\r\n\r\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		l := ParseWMICList(text)
		for _, in := range l.Instances {
			if len(in) == 0 {
				t.Fatal("empty instance")
			}
		}
	})
}

func FuzzParseWMIArray(f *testing.F) {
	f.Add(`{"DefaultAppPool","1234","ffffffff"}`)
	f.Fuzz(func(t *testing.T, s string) {
		_ = ParseWMIArray(s)
	})
}

func FuzzParseSCQuery(f *testing.F) {
	f.Add("SERVICE_NAME: w3svc\r\n        TYPE               : 20  WIN32_SHARE_PROCESS\r\n        STATE              : 4  RUNNING\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		st, ok := ParseSCQuery(text)
		if ok && (st.State < 1 || st.State > 7) {
			t.Fatalf("state %d", st.State)
		}
	})
}

func FuzzParseWMIDatetime(f *testing.F) {
	f.Add("20011224113047.000000-480")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseWMIDatetime(s)
		if err == nil && tm.IsZero() {
			t.Fatal("zero time without error")
		}
	})
}
