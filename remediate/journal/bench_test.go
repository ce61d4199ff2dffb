package journal

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkJournalWrites writes what one host's step costs the journal: an AddStep and an
// AddCommand with 2 KB of output, from one writer and from 50 at once (hosts of a run). It
// reports step events written per second.
//
//	go test -run '^$' -bench BenchmarkJournalWrites ./remediate/journal
func BenchmarkJournalWrites(b *testing.B) {
	output := []byte(fmt.Sprintf("%-2047s\n", "IIS6 application pool DefaultAppPool started"))
	for _, writers := range []int{1, 50} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			j := openTemp(b, Options{Redact: []string{"s3cret-password"}})
			if err := j.StartRun(Run{ID: "bench", Command: "run", Started: t0}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				n := b.N / writers
				if w < b.N%writers {
					n++
				}
				host := fmt.Sprintf("web%02d", w)
				wg.Go(func() {
					for i := range n {
						step := fmt.Sprintf("step%d", i)
						if err := j.AddStep(StepEvent{RunID: "bench", Host: host, Step: step, State: StepDone, At: t0}); err != nil {
							b.Error(err)
							return
						}
						err := j.AddCommand(Command{RunID: "bench", Host: host, Step: step, At: t0,
							CommandLine: "cscript //nologo C:\\WINDOWS\\system32\\iisapp.vbs", Stdout: output})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "steps/s")
		})
	}
}
