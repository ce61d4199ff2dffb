package checks

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// repeatLines renders n lines of line(i).
func repeatLines(n int, line func(i int) string) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(line(i))
	}
	return b.Bytes()
}

// problemsOf lists the problems of one section.
func problemsOf(f *Facts, section string) []string {
	var out []string
	for _, p := range f.Problems {
		if p.Section == section {
			out = append(out, p.Msg)
		}
	}
	return out
}

func hasProblem(f *Facts, section, substr string) bool {
	for _, m := range problemsOf(f, section) {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// TestFactsBounds: each bound keeps at most its documented number and says what it left out.
func TestFactsBounds(t *testing.T) {
	t.Parallel()
	base := affectedHost().capture()
	cases := []struct {
		name, section string
		body          []byte
		check         func(f *Facts) bool
		problem       string
	}{
		{"events keep the newest", sectionEvents, repeatLines(maxEvents+5, func(i int) string {
			return fmt.Sprintf("\r\r\nEventCode=1009\r\r\nInsertionStrings={\"P%d\",\"1\",\"ffffffff\"}\r\r\nTimeGenerated=2010061508%02d%02d.000000-000\r\r\n", i, i/60%60, i%60)
		}), func(f *Facts) bool {
			return len(f.Events) == maxEvents && f.Events[0].Pool == fmt.Sprintf("P%d", maxEvents+4) && f.Events[maxEvents-1].Pool == "P5"
		}, "5 older events past the newest 1000 ignored"},
		{"files", sectionInetsrv, repeatLines(maxFiles+1, func(i int) string {
			return fmt.Sprintf("\r\r\nName=c:\\w\\f%d.dll\r\r\nVersion=6.0.3790.3959\r\r\n", i)
		}), func(f *Facts) bool { return len(f.Files) == maxFiles }, "1 files past the first 4096 ignored"},
		{"pools", sectionAppPools, repeatLines(maxPools+1, func(i int) string {
			return fmt.Sprintf("\r\r\nAppPoolAutoStart=TRUE\r\r\nAppPoolState=2\r\r\nName=W3SVC/AppPools/P%d\r\r\n", i)
		}), func(f *Facts) bool { return len(f.Pools) == maxPools }, "1 pools past the first 2048 ignored"},
		{"hotfixes", sectionHotfixes, repeatLines(maxHotfixes+1, func(i int) string {
			return fmt.Sprintf("HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\\KB%d\r\n", i)
		}), func(f *Facts) bool { return len(f.Hotfixes) == maxHotfixes }, "1 registry lines past 4096 keys"},
		{"insertion strings", sectionEvents, []byte("\r\r\nEventCode=1009\r\r\nInsertionStrings={" + strings.Repeat(`"a",`, 40) + "\"b\"}\r\r\n"),
			func(f *Facts) bool { return len(f.Events) == 1 && len(f.Events[0].Inserts) == maxInserts },
			"insertion strings past the first 16 ignored"},
		{"long line", sectionEvents, []byte("\r\r\nEventCode=1009\r\r\nInsertionStrings={\"" + strings.Repeat("a", maxLine) + "\"}\r\r\n"),
			func(f *Facts) bool { return len(f.Events) == 1 && len(f.Events[0].Pool) == maxValue },
			"1 lines longer than 16384 bytes cut"},
		{"long value", sectionAppPools, []byte("\r\r\nAppPoolAutoStart=TRUE\r\r\nAppPoolState=2\r\r\nName=W3SVC/AppPools/" + strings.Repeat("p", 1000) + "\r\r\n"),
			func(f *Facts) bool { return len(f.Pools) == 1 && len(f.Pools[0].Name) == maxValue },
			"value of 1000 bytes cut to 512"},
		{"problems listed", sectionEvents, repeatLines(maxSectionProblems+7, func(i int) string {
			return fmt.Sprintf("\r\r\nEventCode=x%d\r\r\n", i)
		}), func(f *Facts) bool { return len(problemsOf(f, sectionEvents)) == maxSectionProblems+1 }, "7 more problems not listed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFacts(withBody(base, c.section, c.body))
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(f) {
				t.Errorf("bound not kept: %d events, %d files, %d pools, %d hotfixes", len(f.Events), len(f.Files), len(f.Pools), len(f.Hotfixes))
			}
			if !hasProblem(f, c.section, c.problem) {
				t.Errorf("no problem %q in %q", c.problem, problemsOf(f, c.section))
			}
		})
	}
}

// TestCaptureBounds: sections and capture problems past their bounds are counted, not kept.
func TestCaptureBounds(t *testing.T) {
	t.Parallel()
	extra := repeatLines(maxSections+5, func(i int) string {
		return fmt.Sprintf("%sbegin s%d##\r\nx\r\n%send s%d rc=0##\r\n", markerV1, i, markerV1, i)
	})
	strays := repeatLines(maxCaptureProblems+3, func(i int) string { return fmt.Sprintf("%send stray%d rc=0##\r\n", markerV1, i) })
	c, err := ParseCapture(append(append(affectedHost().capture(), extra...), strays...))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sections) != maxSections || len(c.Problems) != maxCaptureProblems+2 {
		t.Fatalf("%d sections, %d problems", len(c.Sections), len(c.Problems))
	}
	ignored := fmt.Sprintf("ignored %d sections past the first %d", len(ProbeSections())+5, maxSections)
	if tail := c.Problems[maxCaptureProblems:]; tail[0] != ignored || tail[1] != "3 more problems not listed" {
		t.Fatalf("last problems %q", tail)
	}
}

// TestFactsDetached: kept values are copies, so the capture's text can be freed.
func TestFactsDetached(t *testing.T) {
	t.Parallel()
	c, err := ParseCapture(affectedHost().capture())
	if err != nil {
		t.Fatal(err)
	}
	f := c.Facts()
	for _, s := range c.Sections {
		lo := uintptr(unsafe.Pointer(unsafe.StringData(s.Text)))
		for _, v := range []string{f.Hostname, f.OS.Version, f.Events[0].Pool, f.Events[0].Inserts[0], f.Pools[0].Name, f.Hotfixes[0]} {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(v))); p >= lo && p < lo+uintptr(len(s.Text)) {
				t.Fatalf("%q points into section %s", v, s.Name)
			}
		}
	}
}
