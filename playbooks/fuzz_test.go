package playbooks

import (
	"errors"
	"strings"
	"testing"
)

// Seeds: testdata/fuzz/<FuzzName>/ (the embedded playbooks, the bad ones, broken YAML).

func FuzzLoadPlaybook(f *testing.F) {
	src, _ := EmbeddedSource("kb982666")
	f.Add(src)
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := Load("fuzz.yaml", data)
		if (pb == nil) == (err == nil) {
			t.Fatalf("pb %v, err %v", pb, err)
		}
		if err != nil {
			// Every problem names the file (and, but for whole-file problems, its line).
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("err %T %v is not Errors", err, err)
			}
			for _, e := range es {
				if e.File != "fuzz.yaml" || e.Line < 0 || e.Msg == "" || !strings.HasPrefix(e.Error(), "fuzz.yaml") {
					t.Fatalf("problem %+v", e)
				}
			}
			return
		}
		if pb.Name == "" || len(pb.Baseline.CoreFiles) == 0 || len(pb.Installer.Packages) == 0 {
			t.Fatalf("valid playbook without required parts: %+v", pb)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	f.Add("6.0.3790.3959")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err == nil && v.String() != s {
			// Leading zeros ("06.0.3790.3959") parse; the canonical form must parse back equal.
			w, err := ParseVersion(v.String())
			if err != nil || w != v {
				t.Fatalf("%q -> %v does not round-trip", s, v)
			}
		}
	})
}
