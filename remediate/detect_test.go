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
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
)

const labPassword = "Detect-Passw0rd"

func startFleet(tb testing.TB, cfg lab.Config) (*lab.Fleet, []remediate.InventoryHost) {
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
	return f, inv.Hosts
}

func dialer(password string) remediate.Dialer {
	return func(ctx context.Context, h remediate.InventoryHost) (remediate.Session, error) {
		s, err := remote.Dial(ctx, remote.Target{Host: h.Host, Port: h.Port, User: "Administrator", Password: password},
			remote.WithSleep(func(context.Context, time.Duration) error { return nil }))
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func TestDetectVerdictsAndFailures(t *testing.T) {
	f, hosts := startFleet(t, lab.Config{Hosts: 14, Scenario: "mix", Seed: 11})
	var done int
	d := &remediate.Detector{Dial: dialer(labPassword), Parallel: 4, HostDone: func(remediate.HostFinding) { done++ }}
	got := d.Detect(context.Background(), hosts)
	if done != len(hosts) {
		t.Errorf("HostDone called %d times, want %d", done, len(hosts))
	}
	for i, want := range f.Manifest().Hosts {
		if got[i].Host.Entry != want.Host || got[i].Verdict != want.Verdict {
			t.Errorf("%s (%s): got %s, want %s; evidence %q", want.Host, want.Scenario, got[i].Verdict, want.Verdict, got[i].Evidence)
		}
	}

	wrong := (&remediate.Detector{Dial: dialer("not-the-password")}).Detect(context.Background(), hosts[:1])
	if wrong[0].Verdict != playbooks.AuthFailed || wrong[0].Err == nil {
		t.Errorf("wrong password: %s, %v", wrong[0].Verdict, wrong[0].Err)
	}

	f.Close()
	gone := (&remediate.Detector{Dial: dialer(labPassword)}).Detect(context.Background(), hosts[:1])
	if gone[0].Verdict != playbooks.Unreachable {
		t.Errorf("stopped host: %s, %v", gone[0].Verdict, gone[0].Err)
	}
}

// TestDetectFlakyHost: dropped connections and HTTP 500s on the way are retried, since the probe
// only reads; the verdict is the one the host deserves.
func TestDetectFlakyHost(t *testing.T) {
	f, hosts := startFleet(t, lab.Config{Hosts: 6, Scenario: "flaky", Seed: 5})
	got := (&remediate.Detector{Dial: dialer(labPassword), Parallel: 6, RetryDelay: time.Millisecond}).Detect(context.Background(), hosts)
	for i, want := range f.Manifest().Hosts {
		if got[i].Verdict != want.Verdict {
			t.Errorf("%s: got %s (%v), want %s", want.Host, got[i].Verdict, got[i].Err, want.Verdict)
		}
	}
}

func TestDetectCancelled(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 3, Scenario: "healthy"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reported := 0
	d := &remediate.Detector{Dial: dialer(labPassword), HostDone: func(remediate.HostFinding) { reported++ }}
	for _, hf := range d.Detect(ctx, hosts) {
		if hf.Err == nil || hf.Verdict == playbooks.Healthy {
			t.Errorf("%s after cancel: %s, %v", hf.Host.Entry, hf.Verdict, hf.Err)
		}
	}
	if reported != len(hosts) {
		t.Errorf("HostDone called %d times after a cancellation, want once per host (%d)", reported, len(hosts))
	}
}

// TestDiagnoseMostSevereAcrossPlaybooks: a host broken by KB973917 is at-risk under kb982666
// and affected under kb973917; with every playbook it is affected.
func TestDiagnoseMostSevereAcrossPlaybooks(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 1, Scenario: "kb973917"})
	hf := (&remediate.Detector{Dial: dialer(labPassword)}).Detect(context.Background(), hosts)[0]
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
	d := &remediate.Detector{Dial: dialer(labPassword), Parallel: 100, RetryDelay: 10 * time.Millisecond}
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

// rewritingSession runs another command line than the probe on a real lab host, and bounds it.
type rewritingSession struct {
	*remote.Session
	cmdline string
	timeout time.Duration
}

func (s rewritingSession) Run(ctx context.Context, cmdline string) (remote.Result, error) {
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if s.cmdline != "" {
		cmdline = s.cmdline
	}
	return s.Session.Run(ctx, cmdline)
}

func rewritingDialer(cmdline string, timeout time.Duration) remediate.Dialer {
	return func(ctx context.Context, h remediate.InventoryHost) (remediate.Session, error) {
		s, err := remote.Dial(ctx, remote.Target{Host: h.Host, Port: h.Port, User: "Administrator", Password: labPassword})
		if err != nil {
			return nil, err
		}
		return rewritingSession{Session: s, cmdline: cmdline, timeout: timeout}, nil
	}
}

// TestDetectProbeFailures: output that is not a probe capture, and a host that answers but too
// slowly, are probe-failed (not unreachable), with the reason in the evidence.
func TestDetectProbeFailures(t *testing.T) {
	_, hosts := startFleet(t, lab.Config{Hosts: 1, Scenario: "healthy", Latency: 40 * time.Millisecond})

	garbage := (&remediate.Detector{Dial: rewritingDialer(`echo not a capture & exit /b 3`, 0)}).Detect(context.Background(), hosts)[0]
	if garbage.Verdict != playbooks.ProbeFailed || !errors.Is(garbage.Err, checks.ErrNotCapture) {
		t.Errorf("garbage output: %s, %v", garbage.Verdict, garbage.Err)
	}
	if len(garbage.Evidence) != 1 || !strings.Contains(garbage.Evidence[0], "exit code 3") {
		t.Errorf("evidence %q does not give the exit code", garbage.Evidence)
	}

	slow := (&remediate.Detector{Dial: rewritingDialer("", 60*time.Millisecond)}).Detect(context.Background(), hosts)[0]
	if slow.Verdict != playbooks.ProbeFailed || !errors.Is(slow.Err, remote.ErrTimeout) {
		t.Errorf("slow host: %s, %v", slow.Verdict, slow.Err)
	}
}
