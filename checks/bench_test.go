package checks

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
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

// hostileCaptures are captures of 16 MiB that push one bound each, built around a real one.
func hostileCaptures() map[string][]byte {
	base := affectedHost().capture()
	const size = 16 << 20
	fill := func(section string, line func(i int) string) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < size; i++ {
			b.WriteString(line(i))
		}
		return withBody(base, section, b.Bytes())
	}
	var sections bytes.Buffer
	for i := 0; sections.Len() < size; i++ {
		fmt.Fprintf(&sections, "##iisremedy-probe v1 begin s%d##\r\nx\r\n##iisremedy-probe v1 end s%d rc=0##\r\n", i, i)
	}
	return map[string][]byte{
		"events": fill(sectionEvents, func(i int) string {
			return fmt.Sprintf("\r\r\nEventCode=1009\r\r\nInsertionStrings={\"DefaultAppPool\",\"%d\",\"ffffffff\"}\r\r\nTimeGenerated=20100615%06d.000000-000\r\r\n", i, i%240000)
		}),
		"bad-events": fill(sectionEvents, func(i int) string { return fmt.Sprintf("\r\r\nEventCode=x%d\r\r\n", i) }),
		"files": fill(sectionInetsrv, func(i int) string {
			return fmt.Sprintf("\r\r\nName=c:\\windows\\system32\\inetsrv\\file%d.dll\r\r\nVersion=6.0.3790.3959\r\r\n", i)
		}),
		"pools": fill(sectionAppPools, func(i int) string {
			return fmt.Sprintf("\r\r\nAppPoolAutoStart=TRUE\r\r\nAppPoolState=2\r\r\nName=W3SVC/AppPools/Pool%d\r\r\n", i)
		}),
		"hotfixes": fill(sectionHotfixes, func(i int) string {
			return fmt.Sprintf("HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\\KB%07d\r\n", i)
		}),
		"properties": fill(sectionEvents, func(i int) string { return fmt.Sprintf("P%d=x\r\r\n", i) }),
		"long-array": withBody(base, sectionEvents, []byte("\r\r\nEventCode=1009\r\r\nInsertionStrings={"+strings.Repeat(`"a",`, size/4)+"\"b\"}\r\r\n")),
		"sections":   sections.Bytes(),
	}
}

// BenchmarkParseHostileCapture parses captures that push the bounds of ParseFacts. B/op
// (allocated while parsing) bounds the peak heap the parse adds; retained-B is what the
// facts keep once the capture is gone.
func BenchmarkParseHostileCapture(b *testing.B) {
	for name, data := range hostileCaptures() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseFacts(data); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, _ := ParseFacts(data)
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(f)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "retained-B")
		})
	}
}
