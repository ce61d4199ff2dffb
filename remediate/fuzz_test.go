package remediate

import (
	"bytes"
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
			return
		}
		for _, h := range inv.Hosts {
			if h.Host == "" || h.Port < 1 || h.Port > 65535 || h.Line < 1 {
				t.Fatalf("bad host %+v", h)
			}
		}
	})
}
