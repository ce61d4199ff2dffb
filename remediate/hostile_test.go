package remediate_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/hostile"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
)

// neverEnding are the behaviours that would keep a probe going forever: the request deadline
// ends a body that trickles, the probe timeout the commands that never finish.
var neverEnding = []string{hostile.TrickleBody, hostile.TimedOutForever, hostile.RunningForever}

// hostileRun is a fleet of good lab hosts and one hostile host per behaviour and auth, probed
// in one run on a manual clock.
type hostileRun struct {
	good    []remediate.Host
	hostile map[string]string // host entry -> behaviour/auth
	hosts   []remediate.Host
	fleet   *lab.Fleet
}

func startHostileRun(tb testing.TB, auths ...string) *hostileRun {
	f, good := startFleet(tb, lab.Config{Hosts: 2, Scenario: "affected"})
	r := &hostileRun{good: good, hostile: map[string]string{}, fleet: f}
	r.hosts = append(r.hosts, good...)
	for _, auth := range auths {
		for _, b := range hostile.Behaviours() {
			srv := hostile.Start(tb, b, auth)
			entry := fmt.Sprintf("%s:%d", srv.Host(), srv.Port())
			// A body that trickles forever holds its worker in a read, where no clock moves:
			// the client's own request deadline (real time) ends it, shortened here.
			t := remote.Target{Host: srv.Host(), Port: srv.Port(), User: hostile.User, Auth: auth, AllowUnencrypted: auth == "basic",
				OperationTimeout: time.Second, ResponseGrace: time.Second}
			r.hosts = append(r.hosts, remediate.Host{InventoryHost: remediate.InventoryHost{Host: srv.Host(), Entry: entry, Port: srv.Port()}, Target: t})
			r.hostile[entry] = b + "/" + auth
		}
	}
	return r
}

// dialer logs in with the lab's password on the good hosts and the hostile one on the others;
// the client's waits are on the test's clock.
func (r *hostileRun) dialer(clock remediate.Clock) remediate.Dialer {
	good := remediate.WinRMDialer(labPassword, remote.WithSleep(clock.Sleep))
	bad := remediate.WinRMDialer(hostile.Password, remote.WithSleep(clock.Sleep), remote.WithRetry(1, 0))
	return func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
		if _, ok := r.hostile[h.Entry]; ok {
			return bad(ctx, h)
		}
		return good(ctx, h)
	}
}

// detect probes every host on virtual time: the clock moves only while every worker waits on
// it (retry backoffs, the client's Receive backoff), so the never-ending hosts meet the probe
// timeout without a real wait, and no other host is hurried by it.
func (r *hostileRun) detect(tb testing.TB) []remediate.HostFinding {
	c := win2003.NewManualClock(win2003.DefaultStart)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go c.Drive(ctx)
	clock := lab.EngineClock{C: c}
	e := &remediate.Engine{Dial: r.dialer(clock), Clock: clock, Parallel: len(r.hosts), ProbeTimeout: 5 * time.Minute}
	return e.Detect(ctx, r.hosts)
}

// TestHostileHostsCostOnlyThemselves: in one run with a hostile host per behaviour, over NTLM
// and Basic, every hostile host ends with a verdict and a reason (the endless ones at the
// probe timeout, on the run's clock), and the good hosts of the same run are diagnosed right.
func TestHostileHostsCostOnlyThemselves(t *testing.T) {
	t.Parallel() // a fleet of its own on a clock of its own
	auths := []string{"negotiate", "basic"}
	if testing.Short() {
		auths = auths[:1] // CI's race run: the transport of our own, where the goroutines meet
	}
	r := startHostileRun(t, auths...)
	got := r.detect(t)
	for _, f := range got {
		b, bad := r.hostile[f.Host.Entry]
		if !bad {
			if f.Verdict != playbooks.Affected {
				t.Errorf("good host %s: %s (%v)", f.Host.Entry, f.Verdict, f.Err)
			}
			continue
		}
		switch {
		case f.Err == nil || len(f.Evidence) == 0:
			t.Errorf("%s (%s): no reason: %+v", f.Host.Entry, b, f.Finding)
		case f.Verdict != playbooks.ProbeFailed && f.Verdict != playbooks.Unreachable && f.Verdict != playbooks.AuthFailed:
			t.Errorf("%s (%s): verdict %s", f.Host.Entry, b, f.Verdict)
		case len(f.Evidence[0]) > 1000:
			t.Errorf("%s (%s): a reason of %d bytes", f.Host.Entry, b, len(f.Evidence[0]))
		case slices.Contains(neverEnding[1:], strings.Split(b, "/")[0]) && !strings.Contains(f.Evidence[0], "probe timed out after 5m0s"):
			t.Errorf("%s (%s): %q, want the probe timeout", f.Host.Entry, b, f.Evidence[0])
		}
	}
}

// BenchmarkHostileFleetMemory probes a fleet of every hostile behaviour on both auths, all at
// once, beside two good hosts, and reports the peak heap of the whole process (the hostile
// servers run in it too): it stays within --parallel times the per-host bounds, whatever the
// hosts send.
func BenchmarkHostileFleetMemory(b *testing.B) {
	r := startHostileRun(b, "negotiate", "basic")
	stop := heapPeak()
	for b.Loop() {
		r.detect(b)
	}
	b.ReportMetric(stop(), "peak-heap-MB")
	b.ReportMetric(float64(len(r.hosts)), "hosts")
}
