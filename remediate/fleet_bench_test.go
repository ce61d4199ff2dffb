package remediate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
)

// BenchmarkRemediateFleet remediates a mixed virtual-time fleet as `iisremedy lab` does (push,
// 20 hosts at once) and sets the fleet's simulated time against its critical path: one host's
// stage + install + reboot + pools + verify, times the rounds that --parallel needs for the
// hosts to remediate. Reported: wall-s (real seconds per fleet), sim-min (the fleet's simulated
// minutes), path-min (one host's simulated chain, the median of the remediated hosts), ideal-min
// (path × rounds), sim/ideal (1 is perfect packing), peak-heap-MB (runner and lab together).
func BenchmarkRemediateFleet(b *testing.B) {
	for _, n := range []int{20, 200} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var wall, sim, path, ideal, heap float64
			for b.Loop() {
				r := remediateBench(b, n)
				wall += r.wall.Seconds()
				sim += r.sim.Minutes()
				path += r.path.Minutes()
				ideal += r.ideal.Minutes()
				heap = max(heap, r.heapMB)
			}
			k := float64(b.N)
			b.ReportMetric(wall/k, "wall-s")
			b.ReportMetric(sim/k, "sim-min")
			b.ReportMetric(path/k, "path-min")
			b.ReportMetric(ideal/k, "ideal-min")
			b.ReportMetric(sim/ideal, "sim/ideal")
			b.ReportMetric(heap, "peak-heap-MB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type fleetFigures struct {
	wall, sim, path, ideal time.Duration
	heapMB                 float64
}

func remediateBench(b *testing.B, hosts int) fleetFigures {
	b.StopTimer()
	dir := b.TempDir()
	f, targets := startFleet(b, lab.Config{Hosts: hosts, Scenario: "mix", Seed: 1, VirtualTime: true, InstallersDir: dir, InstallerSize: 256 << 10})
	defer f.Close()
	e := engine(f, labPassword)
	e.Parallel = 20
	pb := playbooks.Default()
	in, err := remediate.LoadInstallers(dir, pb, nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	first, last := map[string]time.Time{}, map[string]time.Time{}
	b.StartTimer()
	stop := heapPeak()
	start, simStart := time.Now(), e.Clock.Now()
	findings := e.Detect(context.Background(), targets)
	opts := remediate.Options{Stage: remediate.StagePush, Warmup: "remote", InstallerDir: dir, Timing: remediate.TimingFrom(pb.Steps)}
	plan := remediate.NewPlan(findings, opts, in, nil, "bench", e.Clock.Now(), filepath.Join(dir, "hosts.txt"))
	e.Events = func(ev remediate.HostStep) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[ev.Host]; !ok && ev.Step == remediate.StepStage {
			first[ev.Host] = ev.At
		}
		if ev.Step == remediate.StepVerify && ev.State == remediate.StepDone {
			last[ev.Host] = ev.At
		}
	}
	res, err := e.Remediate(context.Background(), &remediate.Run{ID: "bench", Plan: plan, Installers: in})
	if err != nil {
		b.Fatal(err)
	}
	fig := fleetFigures{wall: time.Since(start), sim: e.Clock.Now().Sub(simStart), heapMB: stop()}
	b.StopTimer()
	var paths []time.Duration
	planned := 0
	for _, r := range res {
		if r.Outcome != remediate.NotPlanned {
			planned++
		}
		if r.Outcome == remediate.Remediated {
			paths = append(paths, last[r.Host.Entry].Sub(first[r.Host.Entry]))
		}
	}
	if len(paths) == 0 {
		b.Fatal("no host remediated")
	}
	slices.Sort(paths)
	fig.path = paths[len(paths)/2]
	rounds := (planned + e.Parallel - 1) / e.Parallel
	fig.ideal = time.Duration(rounds) * fig.path
	b.StartTimer()
	return fig
}
