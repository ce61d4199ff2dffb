package remediate_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
)

const labPassword = "Detect-Passw0rd"

// startFleet runs a lab fleet on free loopback ports and resolves its inventory's targets as a
// command would. A virtual-time fleet's clock is returned for the engine (else nil).
func startFleet(tb testing.TB, cfg lab.Config) (*lab.Fleet, []remediate.Host) {
	tb.Helper()
	cfg.Port = -1
	cfg.Password = labPassword
	f, err := lab.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	var b bytes.Buffer
	if err := f.WriteInventory(&b); err != nil {
		tb.Fatal(err)
	}
	inv, err := remediate.ParseInventory("fleet", &b)
	if err != nil {
		tb.Fatal(err)
	}
	hosts, err := remediate.ResolveTargets(inv, remediate.TargetDefaults{User: "Administrator"})
	if err != nil {
		tb.Fatal(err)
	}
	return f, hosts
}

// engine returns an engine on the fleet's virtual clock: retries and timeouts wait on simulated
// time, which moves only while every worker waits.
func engine(f *lab.Fleet, password string) *remediate.Engine {
	clock := lab.EngineClock{C: f.Clock()}
	return &remediate.Engine{Dial: remediate.WinRMDialer(password, remote.WithSleep(clock.Sleep)), Clock: clock}
}

func TestDetectVerdictsAndFailures(t *testing.T) {
	f, hosts := startFleet(t, lab.Config{Hosts: 14, Scenario: "mix", Seed: 11, VirtualTime: true})
	var events []remediate.HostStep
	e := engine(f, labPassword)
	e.Parallel = 4
	e.Events = func(ev remediate.HostStep) { events = append(events, ev) }
	got := e.Detect(context.Background(), hosts)
	if len(events) != 2*len(hosts) {
		t.Errorf("%d events, want a start and an end per host (%d)", len(events), 2*len(hosts))
	}
	for i, want := range f.Manifest().Hosts {
		if got[i].Host.Entry != want.Host || got[i].Verdict != want.Verdict {
			t.Errorf("%s (%s): got %s, want %s; evidence %q", want.Host, want.Scenario, got[i].Verdict, want.Verdict, got[i].Evidence)
		}
	}

	wrong := engine(f, "not-the-password").Detect(context.Background(), hosts[:1])
	if wrong[0].Verdict != playbooks.AuthFailed || wrong[0].Err == nil {
		t.Errorf("wrong password: %s, %v", wrong[0].Verdict, wrong[0].Err)
	}

	f.Close()
	gone := engine(f, labPassword).Detect(context.Background(), hosts[:1])
	if gone[0].Verdict != playbooks.Unreachable {
		t.Errorf("stopped host: %s, %v", gone[0].Verdict, gone[0].Err)
	}
}

// TestDetectFlakyHost: dropped connections and HTTP 500s on the way are retried, since the probe
// only reads; the verdict is the one the host deserves.
func TestDetectFlakyHost(t *testing.T) {
	f, hosts := startFleet(t, lab.Config{Hosts: 6, Scenario: "flaky", Seed: 5, VirtualTime: true})
	e := engine(f, labPassword)
	e.Parallel = 6
	got := e.Detect(context.Background(), hosts)
	for i, want := range f.Manifest().Hosts {
		if got[i].Verdict != want.Verdict {
			t.Errorf("%s: got %s (%v), want %s", want.Host, got[i].Verdict, got[i].Err, want.Verdict)
		}
	}
}

// TestDetectInterruptedSkips: after an interrupt, the hosts probed to the end keep their
// verdict; the others are skipped, saying why, never probe-failed.
func TestDetectInterruptedSkips(t *testing.T) {
	f, hosts := startFleet(t, lab.Config{Hosts: 4, Scenario: "healthy", VirtualTime: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := engine(f, labPassword)
	e.Parallel = 1
	skipped := 0
	e.Events = func(ev remediate.HostStep) {
		if ev.State == remediate.StepDone && ev.Host == hosts[0].Entry {
			cancel() // Ctrl-C once the first host is diagnosed
		}
		if ev.State == remediate.StepSkipped {
			skipped++
		}
	}
	got := e.Detect(ctx, hosts)
	if got[0].Verdict != playbooks.Healthy {
		t.Errorf("%s, probed before the interrupt: %s (%v)", got[0].Host.Entry, got[0].Verdict, got[0].Err)
	}
	for _, hf := range got[1:] {
		if hf.Verdict != playbooks.Skipped || !errors.Is(hf.Err, context.Canceled) || len(hf.Evidence) != 1 || !strings.Contains(hf.Evidence[0], "interrupted") {
			t.Errorf("%s after the interrupt: %s, %v, %q", hf.Host.Entry, hf.Verdict, hf.Err, hf.Evidence)
		}
	}
	if skipped != len(hosts)-1 {
		t.Errorf("%d skipped events, want %d", skipped, len(hosts)-1)
	}
}

// hangingSession answers the probe only when its context ends, as a host whose probe never
// finishes; started is closed when the probe command is sent.
type hangingSession struct {
	remediate.Session
	started chan struct{}
}

func (s hangingSession) Run(ctx context.Context, cmdline string) (remote.Result, error) {
	close(s.started)
	<-ctx.Done()
	return remote.Result{}, ctx.Err()
}

// TestDetectProbeTimeout: a host whose probe never finishes ends probe-failed when the probe
// timeout passes on the engine's clock, naming it; the other host of the run is diagnosed.
// The clock is advanced by hand once the hung probe has started: nothing races the machine.
func TestDetectProbeTimeout(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 2, Scenario: "affected"})
	clock := lab.EngineClock{C: win2003.NewManualClock(win2003.DefaultStart)}
	started := make(chan struct{})
	firstDone := make(chan struct{})
	real := remediate.WinRMDialer(labPassword)
	e := &remediate.Engine{Clock: clock, Parallel: 2, ProbeTimeout: 7 * time.Minute,
		Events: func(ev remediate.HostStep) {
			if ev.Host == hosts[0].Entry && ev.State == remediate.StepDone {
				close(firstDone)
			}
		},
		Dial: func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
			s, err := real(ctx, h)
			if err != nil || h.Entry != hosts[1].Entry {
				return s, err
			}
			return hangingSession{Session: s, started: started}, nil
		}}
	done := make(chan []remediate.HostFinding)
	go func() { done <- e.Detect(context.Background(), hosts) }()
	<-started
	<-firstDone
	clock.C.Advance(7 * time.Minute)
	got := <-done
	if got[0].Verdict != playbooks.Affected {
		t.Errorf("%s: %s (%v), want affected", got[0].Host.Entry, got[0].Verdict, got[0].Err)
	}
	if got[1].Verdict != playbooks.ProbeFailed || !strings.Contains(got[1].Err.Error(), "probe timed out after 7m0s") {
		t.Errorf("%s: %s (%v), want probe-failed: probe timed out after 7m0s", got[1].Host.Entry, got[1].Verdict, got[1].Err)
	}
}

// TestDiagnoseMostSevereAcrossPlaybooks: a host broken by KB973917 is at-risk under kb982666
// and affected under kb973917; with every playbook it is affected.
func TestDiagnoseMostSevereAcrossPlaybooks(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 1, Scenario: "kb973917"})
	hf := (&remediate.Engine{Dial: remediate.WinRMDialer(labPassword)}).Detect(context.Background(), hosts)[0]
	if hf.Err != nil {
		t.Fatal(hf.Err)
	}
	only982666 := remediate.Diagnose(hf.Facts, []*playbooks.Playbook{playbooks.Default()})
	if only982666.Verdict != playbooks.AtRisk {
		t.Errorf("under kb982666 alone: %s, want at-risk", only982666.Verdict)
	}
	all := remediate.Diagnose(hf.Facts, nil)
	if all.Verdict != playbooks.Affected || all.Playbook != "kb973917" {
		t.Errorf("under every playbook: %s by %q, want affected by kb973917", all.Verdict, all.Playbook)
	}
}

// BenchmarkDetect probes 500 lab hosts with 50 ms of latency per WinRM reply, 100 at a time,
// over NTLM with message encryption, and reports hosts per second and HTTP requests per host
// (all, and after the NTLM handshake's 401s).
func BenchmarkDetect(b *testing.B) {
	f, hosts := startFleet(b, lab.Config{Hosts: 500, Scenario: "mix", Seed: 1, Latency: 50 * time.Millisecond})
	d := &remediate.Engine{Dial: remediate.WinRMDialer(labPassword), Parallel: 100}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for _, hf := range d.Detect(context.Background(), hosts) {
			if hf.Err != nil && hf.Verdict != playbooks.AuthFailed {
				b.Fatalf("%s: %v", hf.Host.Entry, hf.Err)
			}
		}
	}
	elapsed := time.Since(start)
	var requests, unauthorized int64
	for _, h := range f.Hosts() {
		st := h.Server.Stats()
		requests += st.Requests
		unauthorized += st.Unauthorized
	}
	probes := float64(b.N * len(hosts))
	b.ReportMetric(probes/elapsed.Seconds(), "hosts/s")
	b.ReportMetric(float64(requests)/probes, "req/host")
	b.ReportMetric(float64(requests-unauthorized)/probes, "req/host-after-handshake")
}

// rewritingSession runs another command line than the probe on a real lab host.
type rewritingSession struct {
	*remote.Session
	cmdline string
}

func (s rewritingSession) Run(ctx context.Context, cmdline string) (remote.Result, error) {
	if s.cmdline != "" {
		cmdline = s.cmdline
	}
	return s.Session.Run(ctx, cmdline)
}

func rewritingDialer(cmdline string) remediate.Dialer {
	return func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
		t := h.Target
		t.Password = labPassword
		s, err := remote.Dial(ctx, t)
		if err != nil {
			return nil, err
		}
		return rewritingSession{Session: s, cmdline: cmdline}, nil
	}
}

// TestDetectProbeFailures: output that is not a probe capture is probe-failed (not
// unreachable), with the exit code and the reason in the evidence.
func TestDetectProbeFailures(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 1, Scenario: "healthy"})
	garbage := (&remediate.Engine{Dial: rewritingDialer(`echo not a capture & exit /b 3`)}).Detect(context.Background(), hosts)[0]
	if garbage.Verdict != playbooks.ProbeFailed || !errors.Is(garbage.Err, checks.ErrNotCapture) {
		t.Errorf("garbage output: %s, %v", garbage.Verdict, garbage.Err)
	}
	if len(garbage.Evidence) != 1 || !strings.Contains(garbage.Evidence[0], "exit code 3") {
		t.Errorf("evidence %q does not give the exit code", garbage.Evidence)
	}
}

// panickingSession trips a bug while probing.
type panickingSession struct{ remediate.Session }

func (panickingSession) Run(context.Context, string) (remote.Result, error) {
	panic("index out of range")
}

// TestDetectPanicCostsOneHost: a panic while working on one host ends that host probe-failed
// with an internal error; the other hosts of the run are diagnosed.
func TestDetectPanicCostsOneHost(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 3, Scenario: "healthy"})
	real := remediate.WinRMDialer(labPassword)
	e := &remediate.Engine{Parallel: 3, Dial: func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
		s, err := real(ctx, h)
		if err != nil || h.Entry != hosts[1].Entry {
			return s, err
		}
		return panickingSession{s}, nil
	}}
	got := e.Detect(context.Background(), hosts)
	if got[1].Verdict != playbooks.ProbeFailed || !strings.Contains(got[1].Err.Error(), "internal error") {
		t.Errorf("panicking host: %s, %v", got[1].Verdict, got[1].Err)
	}
	if got[0].Verdict != playbooks.Healthy || got[2].Verdict != playbooks.Healthy {
		t.Errorf("other hosts: %s, %s", got[0].Verdict, got[2].Verdict)
	}
}
