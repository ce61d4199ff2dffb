package remediate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Seeds: testdata/fuzz/FuzzParseInventory/.

func FuzzParseInventory(f *testing.F) {
	f.Add([]byte("web01\n[wave1]\n[::1]:5985 https=true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory("fuzz", bytes.NewReader(data))
		if (inv == nil) == (err == nil) {
			t.Fatalf("inv %v, err %v", inv, err)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n\n") {
				t.Fatal("empty error line")
			}
			// Every problem names the file and a line that exists (0: the whole file).
			var es InventoryErrors
			if !errors.As(err, &es) {
				return // a read error, not a problem of the text
			}
			for _, e := range es {
				if e.File != "fuzz" || e.Line < 0 || e.Line > bytes.Count(data, []byte("\n"))+1 || e.Msg == "" {
					t.Fatalf("problem %+v", e)
				}
			}
			return
		}
		for _, h := range inv.Hosts {
			if h.Host == "" || h.Port < 1 || h.Port > 65535 || h.Line < 1 {
				t.Fatalf("bad host %+v", h)
			}
		}
	})
}
