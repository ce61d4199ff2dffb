package checks

import (
	"testing"

	"github.com/iisremedy/iisremedy/playbooks"
)

// BenchmarkParseFullCapture parses a full probe capture (file form: UTF-16LE wmic
// sections), establishes its facts and diagnoses them.
func BenchmarkParseFullCapture(b *testing.B) {
	h := affectedHost()
	h.fileForm = true
	for i := 0; i < 200; i++ { // a long System log
		h.events = append(h.events, fakeEvent{1009, `{"DefaultAppPool","1234","ffffffff"}`, "20100615085501.000000-000"})
	}
	data := h.capture()
	pb := playbooks.Default()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := ParseFacts(data)
		if err != nil {
			b.Fatal(err)
		}
		if fd := Diagnose(f, pb); fd.Verdict != playbooks.Affected {
			b.Fatal(fd.Verdict)
		}
	}
}
