package checks

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/captures/*.txt and *.golden")

// goldenCaptures are the capture files under testdata/captures, built from fakeHost in the
// formats of docs/facts.md §5 and checks/testdata/samples/. They are inputs for diagnose tests elsewhere too.
var goldenCaptures = map[string]func() *fakeHost{
	"affected-winrm": affectedHost,
	"affected-file-utf16": func() *fakeHost {
		h := affectedHost()
		h.fileForm = true
		return h
	},
	"healthy-file-banner": func() *fakeHost {
		h := baseHost()
		h.fileForm, h.banner = true, true
		return h
	},
	"at-risk-german-later-reg": func() *fakeHost {
		h := baseHost()
		h.files = inetsrvFiles(sp1, "")
		h.hotfixes = nil
		h.lcid, h.germanSC, h.laterReg = "0407", true, true
		return h
	},
	"cut-short": func() *fakeHost {
		h := affectedHost()
		h.cutAfter = "events"
		return h
	},
}

// TestGoldenCaptures parses each capture and compares its facts and finding with the
// golden JSON; go test -update rewrites both from fakeHost.
func TestGoldenCaptures(t *testing.T) {
	t.Parallel()
	for name, build := range goldenCaptures {
		txt := filepath.Join("testdata", "captures", name+".txt")
		golden := strings.TrimSuffix(txt, ".txt") + ".golden"
		if *update {
			if err := os.MkdirAll(filepath.Dir(txt), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(txt, build().capture(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(txt)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		f, err := ParseFacts(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := json.MarshalIndent(struct {
			Facts   *Facts  `json:"facts"`
			Finding Finding `json:"finding"`
		}{f, DiagnoseAll(f, allPlaybooks(t))}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: facts/finding differ from %s (go test -update after checking):\n%s", name, golden, got)
		}
	}
}
