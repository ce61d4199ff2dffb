package win2003_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

func TestMixReproducibleAndComplete(t *testing.T) {
	a, b := win2003.Mix(200, 42), win2003.Mix(200, 42)
	if !slices.Equal(a, b) {
		t.Fatal("Mix is not reproducible")
	}
	if slices.Equal(a, win2003.Mix(200, 43)) {
		t.Error("Mix ignores the seed")
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range win2003.MixScenarios() {
		if count[s] == 0 {
			t.Errorf("scenario %s missing from a mix of 200", s)
		}
	}
	if len(win2003.Mix(3, 1)) != 3 || win2003.Mix(0, 1) != nil {
		t.Error("Mix length")
	}
}

func TestScenarioListAndVerdicts(t *testing.T) {
	required := []string{"affected", "mismatch", "at-risk", "other-cause", "healthy", "sp1", "no-iis", "x64",
		"spanish", "winnt-root", "installer-fails", "never-returns", "flaky"}
	for _, s := range required {
		if _, ok := win2003.ScenarioVerdict(s); !ok {
			t.Errorf("scenario %s missing", s)
		}
	}
	if _, err := win2003.NewScenario("nope", win2003.Options{}); err == nil {
		t.Error("unknown scenario accepted")
	}
	h, _ := win2003.NewScenario("flaky", win2003.Options{Seed: 1})
	if sp := h.Spec(); sp.DropRate == 0 || sp.Fail500Rate == 0 {
		t.Errorf("flaky rates: %+v", sp)
	}
}

// BenchmarkMixFleet builds 200 mixed hosts and reports the heap bytes each idle host keeps.
func BenchmarkMixFleet(b *testing.B) {
	names := win2003.Mix(200, 1)
	clock := win2003.NewClock(win2003.DefaultStart, 60)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		hosts := make([]*win2003.Host, len(names))
		for i, n := range names {
			h, err := win2003.NewScenario(n, win2003.Options{Seed: int64(i), Clock: clock, ComputerName: fmt.Sprintf("WEB%03d", i)})
			if err != nil {
				b.Fatal(err)
			}
			hosts[i] = h
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(hosts)), "bytes/host")
		runtime.KeepAlive(hosts)
	}
}
