package remediate_test

import (
	"runtime"
	"sync"
	"time"
)

// heapPeak samples the heap in use every few milliseconds until the returned function is
// called, which returns the highest figure seen, in MB. It measures the whole test process:
// the lab's hosts run in it too.
func heapPeak() (stop func() float64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		return float64(peak) / (1 << 20)
	}
}
