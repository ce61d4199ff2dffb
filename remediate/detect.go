package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remote"
	"golang.org/x/sync/errgroup"
)

// Session is what the engine needs of a WinRM shell on one host; *remote.Session has it.
type Session interface {
	Run(ctx context.Context, cmdline string) (remote.Result, error)
	Close(ctx context.Context) error
}

// Dialer opens a session to one inventory host.
type Dialer func(ctx context.Context, h InventoryHost) (Session, error)

// HostFinding is what detection established about one host. Err is set when the facts could not
// be established; the Verdict then says how (unreachable, auth-failed, probe-failed).
type HostFinding struct {
	Host InventoryHost
	checks.Finding
	Facts *checks.Facts
	Err   error
}

// Detector probes hosts and diagnoses them under playbooks. It changes nothing on the hosts.
type Detector struct {
	Dial      Dialer
	Playbooks []*playbooks.Playbook // nil = every embedded playbook
	Parallel  int                   // hosts probed at once (0 = 20)
	// RetryDelay is the wait before the second probe of a host whose connection failed on the
	// way; it doubles for each further attempt (0 = 250 ms).
	RetryDelay time.Duration
	// HostDone, when set, is called once for every host as it finishes or is skipped after a
	// cancellation; calls are serialised.
	HostDone func(HostFinding)
	// Logger receives the probes that are tried again (nil = none).
	Logger *slog.Logger
}

// Detect probes every host, at most Parallel at once, and returns one finding per host in
// inventory order. A host's failure is part of its finding, never a reason to stop the others.
// When ctx is cancelled, hosts not started yet get probe-failed with the context's error.
func (d *Detector) Detect(ctx context.Context, hosts []InventoryHost) []HostFinding {
	results := make([]HostFinding, len(hosts))
	limit := d.Parallel
	if limit <= 0 {
		limit = 20
	}
	var g errgroup.Group
	g.SetLimit(limit)
	var mu sync.Mutex // serialises HostDone so callers may draw without locking
	done := func(hf HostFinding) {
		if d.HostDone != nil {
			mu.Lock()
			d.HostDone(hf)
			mu.Unlock()
		}
	}
	for i, h := range hosts {
		if err := ctx.Err(); err != nil {
			results[i] = failed(h, err)
			done(results[i])
			continue
		}
		g.Go(func() error {
			results[i] = d.detectOne(ctx, h)
			done(results[i])
			return nil
		})
	}
	_ = g.Wait()
	return results
}

// probeAttempts is how often a host is probed when the connection fails on the way: the probe
// only reads, so running it again is safe, and a dropped connection or a one-off HTTP 500 should
// not cost an admin a verdict.
const probeAttempts = 5

func (d *Detector) detectOne(ctx context.Context, h InventoryHost) HostFinding {
	delay := d.RetryDelay
	if delay <= 0 {
		delay = 250 * time.Millisecond
	}
	var hf HostFinding
	for attempt := 1; ; attempt++ {
		hf = d.probe(ctx, h)
		if hf.Err == nil || !worthRetrying(hf.Err) || attempt == probeAttempts {
			break
		}
		if d.Logger != nil {
			d.Logger.Debug("probing again", "host", h.Entry, "attempt", attempt+1, "after", delay, "err", hf.Err)
		}
		if !wait(ctx, delay) {
			break
		}
		delay *= 2
	}
	return hf
}

// wait waits for d, or reports false when ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// worthRetrying is true for failures of a connection that had reached the host (a reset, an early
// EOF) and for faults and garbled replies of one request. A refused or unanswered connection,
// wrong credentials, TLS mismatches, timeouts and quotas would only fail again, or slowly.
func worthRetrying(err error) bool {
	var re *remote.Error
	if !errors.As(err, &re) {
		return false
	}
	switch re.Class {
	case remote.ClassFault, remote.ClassProtocol:
		return true
	case remote.ClassUnreachable:
		return re.Temporary()
	}
	return false
}

func (d *Detector) probe(ctx context.Context, h InventoryHost) HostFinding {
	s, err := d.Dial(ctx, h)
	if err != nil {
		return failed(h, err)
	}
	res, err := s.Run(ctx, checks.ProbeCommand())
	// The shell is closed even when ctx is done, since an orphaned shell counts against the
	// host's MaxShellsPerUser quota of 5; but a hung host must not hold up the run.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	_ = s.Close(closeCtx)
	cancel()
	if err != nil {
		return failed(h, err)
	}
	facts, err := checks.ParseFacts(res.Stdout)
	if err != nil {
		return failed(h, fmt.Errorf("probe output (exit code %d, stderr %q): %w", res.ExitCode, head(res.Stderr, 200), err))
	}
	return HostFinding{Host: h, Finding: Diagnose(facts, d.Playbooks), Facts: facts}
}

// Diagnose diagnoses facts under each playbook (nil = every embedded one) and returns the most
// severe finding (checks.DiagnoseAll): a host broken by KB973917 is at-risk under kb982666 but
// affected under kb973917, and must be reported affected.
func Diagnose(facts *checks.Facts, pbs []*playbooks.Playbook) checks.Finding {
	if len(pbs) == 0 {
		pbs = embeddedPlaybooks()
	}
	return checks.DiagnoseAll(facts, pbs)
}

// embeddedPlaybooks returns the embedded playbooks, parsed once, the default first so that its
// finding wins among equals.
var embeddedPlaybooks = sync.OnceValue(func() []*playbooks.Playbook {
	def := playbooks.Default()
	pbs := []*playbooks.Playbook{def}
	for _, name := range playbooks.Embedded() {
		if pb, err := playbooks.Get(name); err == nil && pb.Name != def.Name {
			pbs = append(pbs, pb)
		}
	}
	return pbs
})

// closeTimeout bounds deleting a host's shell after its probe.
const closeTimeout = 10 * time.Second

// head returns at most n bytes of b, for quoting host output in evidence.
func head(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// failed turns an error into the finding of a host whose facts could not be established.
func failed(h InventoryHost, err error) HostFinding {
	v := playbooks.ProbeFailed
	switch {
	case errors.Is(err, remote.ErrAuth):
		v = playbooks.AuthFailed
	case errors.Is(err, remote.ErrUnreachable), errors.Is(err, remote.ErrTLS):
		// A timeout is not here: the host answered (an unanswered connection is unreachable)
		// and the probe was too slow, so its facts could not be established.
		v = playbooks.Unreachable
	}
	return HostFinding{Host: h, Finding: checks.Finding{Verdict: v, Evidence: []string{err.Error()}}, Err: err}
}
