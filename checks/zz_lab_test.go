package checks

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

func TestZZLab(t *testing.T) {
	for _, sc := range win2003.Scenarios() {
		for seed := int64(1); seed <= 4; seed++ {
			h, err := win2003.NewScenario(sc, win2003.Options{Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			rc := h.Exec(context.Background(), ProbeCommand(), nil, &out, &errb)
			f, err := ParseFacts(out.Bytes())
			if err != nil {
				t.Errorf("%s/%d: rc %d err %v\n%s", sc, seed, rc, err, out.String())
				continue
			}
			fd := Diagnose(f, nil)
			want := h.Verdict()
			mark := "ok"
			if fd.Verdict != want {
				mark = "MISMATCH"
			}
			fmt.Printf("%-18s seed %d: got %-14s want %-14s %s problems=%v\n", sc, seed, fd.Verdict, want, mark, f.Problems)
			if fd.Verdict != want && seed == 1 {
				fmt.Println("  evidence:", fd.Evidence, "\n  notes:", fd.Notes)
			}
			if sc == "spanish" && seed == 1 {
				fmt.Printf("%q\n", out.String())
				fmt.Printf("stderr %q\n", errb.String())
			}
		}
	}
}
