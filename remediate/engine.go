package remediate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remote"
)

// Session is what the engine needs of a WinRM shell on one host; *remote.Session has it.
type Session interface {
	Run(ctx context.Context, cmdline string) (remote.Result, error)
	RunInput(ctx context.Context, cmdline string, stdin io.Reader) (remote.Result, error)
	Close(ctx context.Context) error
}

// Dialer opens a session to one host.
type Dialer func(ctx context.Context, h Host) (Session, error)

// Step names a stage of a host's pipeline.
type Step string

// The steps, in pipeline order (DESIGN: remediate).
const (
	StepProbe   Step = "probe"
	StepStage   Step = "stage"
	StepInstall Step = "install"
	StepReboot  Step = "reboot"
	StepPools   Step = "pools"
	StepVerify  Step = "verify"
)

// StepState is where a step stands in a HostStep event.
type StepState string

// Step states.
const (
	StepStarted StepState = "started"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	StepSkipped StepState = "skipped"
)

// HostStep is one event of a host's pipeline, for progress and the journal. Detail is a
// short text: a verdict, a reason, a figure.
type HostStep struct {
	Host   string // the inventory entry
	Step   Step
	State  StepState
	Detail string
	At     time.Time // on the engine's clock
}

// HostFinding is what detection established about one host. Err is set when the facts could not
// be established; the Verdict then says how (unreachable, auth-failed, probe-failed, skipped).
type HostFinding struct {
	Host Host
	checks.Finding
	Facts *checks.Facts
	Err   error
}

// Engine works on hosts over WinRM, at most Parallel at once: today it probes and diagnoses
// them (Detect), changing nothing on the hosts.
type Engine struct {
	Dial      Dialer
	Clock     Clock                 // nil = RealClock
	Playbooks []*playbooks.Playbook // nil = every embedded playbook
	Parallel  int                   // hosts worked on at once (0 = 20)
	// ProbeTimeout bounds one host's probe: connecting, running the probe command and every
	// attempt after a dropped connection (0 = DefaultProbeTimeout). It is measured on Clock.
	ProbeTimeout time.Duration
	// Retry is the policy for running a probe, or a remote command that is safe to repeat,
	// again after the connection failed on the way (zero = 5 attempts from 250 ms, with jitter).
	Retry remote.Backoff
	// Events, when set, hears every step of every host; calls are serialised.
	Events func(HostStep)
	// HostDone, when set, hears each host's result of a remediation as soon as it is known;
	// calls are serialised with Events.
	HostDone func(HostResult)
	// Commands, when set, hears every remote command of a remediation with its output, for
	// the journal's transcript; calls are serialised with Events.
	Commands func(CommandRecord)
	// StageLimit caps the installer bytes per second sent to all hosts together (nil = none).
	StageLimit *RateLimit
	// Transfer, when set, hears how far each host's installer transfer is (installer bytes sent
	// of total); it is called often and from many goroutines.
	Transfer func(host string, sent, total int64)
	// HTTP is the client of the warm-up requests (nil = direct, no redirects followed).
	HTTP *http.Client
	// Logger receives the probes and commands that are tried again (nil = none).
	Logger *slog.Logger

	mu sync.Mutex // serialises Events, HostDone and Commands
}

// DefaultProbeTimeout bounds a host's probe when Engine.ProbeTimeout is zero: a real probe
// takes seconds, a busy host's a minute.
const DefaultProbeTimeout = 5 * time.Minute

// errProbeTimeout is the cause of a probe cut by Engine.ProbeTimeout.
var errProbeTimeout = errors.New("probe timed out")

// httpClient is the client of the verify step's warm-up requests: straight to the host (no
// proxy), no redirects followed (a redirect is an answer: the site is up).
func (e *Engine) httpClient() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (e *Engine) clock() Clock {
	if e.Clock == nil {
		return RealClock{}
	}
	return e.Clock
}

func (e *Engine) emit(host string, step Step, state StepState, detail string) {
	if e.Events == nil {
		return
	}
	ev := HostStep{Host: host, Step: step, State: state, Detail: detail, At: e.clock().Now()}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Events(ev)
}

// forEach runs work for every host, at most Parallel at once, on a pool of workers that each
// take the next host until none is left or ctx ends; hosts not started then go to skip. A
// simulated clock that can join goroutines joins every worker for its whole life.
func (e *Engine) forEach(ctx context.Context, n, parallel int, work func(ctx context.Context, i int), skip func(i int)) {
	workers := parallel
	if workers <= 0 {
		workers = e.Parallel
	}
	if workers <= 0 {
		workers = 20
	}
	workers = min(workers, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wctx, leave := ctx, func() {}
		if j, ok := e.clock().(joiner); ok {
			wctx, leave = j.Join(ctx)
		}
		wg.Go(func() {
			defer leave()
			for i := range next {
				if ctx.Err() != nil {
					skip(i)
					continue
				}
				work(wctx, i)
			}
		})
	}
	wg.Wait()
}

// Detect probes every host and returns one finding per host in inventory order. A host's
// failure is part of its finding, never a reason to stop the others. When ctx is cancelled,
// hosts not probed to the end are skipped.
func (e *Engine) Detect(ctx context.Context, hosts []Host) []HostFinding {
	return e.detect(ctx, hosts, 0)
}

// detect is Detect with parallel hosts at once (0 = Parallel).
func (e *Engine) detect(ctx context.Context, hosts []Host, parallel int) []HostFinding {
	results := make([]HostFinding, len(hosts))
	e.forEach(ctx, len(hosts), parallel,
		func(ctx context.Context, i int) {
			results[i] = guard(e, hosts[i], func() HostFinding { return e.detectOne(ctx, hosts[i]) })
		},
		func(i int) { results[i] = e.skipped(hosts[i], "the run was interrupted before its probe") })
	return results
}

// guard turns a panic while working on one host into that host's failure: a host whose output
// trips a bug costs that host, never the run.
func guard(e *Engine, h Host, work func() HostFinding) (hf HostFinding) {
	defer func() {
		if r := recover(); r != nil {
			if e.Logger != nil {
				e.Logger.Error("internal error", "host", h.Entry, "panic", r, "stack", string(debug.Stack()))
			}
			hf = failed(h, fmt.Errorf("internal error (a bug of iisremedy; --debug shows where): %v", r))
			e.emit(h.Entry, StepProbe, StepFailed, "internal error")
		}
	}()
	return work()
}

func (e *Engine) skipped(h Host, why string) HostFinding {
	e.emit(h.Entry, StepProbe, StepSkipped, why)
	return HostFinding{Host: h, Finding: checks.Finding{Verdict: playbooks.Skipped, Evidence: []string{why}}, Err: context.Canceled}
}

func (e *Engine) detectOne(ctx context.Context, h Host) HostFinding {
	e.emit(h.Entry, StepProbe, StepStarted, "")
	hf, s := e.probe(ctx, h)
	if s != nil {
		e.closeSession(ctx, s)
	}
	switch {
	case hf.Err == nil:
		e.emit(h.Entry, StepProbe, StepDone, string(hf.Verdict))
	case ctx.Err() != nil:
		return e.skipped(h, "the run was interrupted during the probe")
	default:
		e.emit(h.Entry, StepProbe, StepFailed, string(hf.Verdict)+": "+hf.Err.Error())
	}
	return hf
}

// probe connects to h and runs the probe, trying again after a connection that failed on the
// way, all within ProbeTimeout. On success it returns the open session.
func (e *Engine) probe(ctx context.Context, h Host) (HostFinding, Session) {
	timeout := e.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	pctx, cancel := withTimeout(ctx, e.clock(), timeout, errProbeTimeout)
	defer cancel()
	var hf HostFinding
	var session Session
	err := e.retry().Retry(pctx, e.clock().Sleep, func(int) error {
		hf, session = e.probeOnce(pctx, h)
		return hf.Err
	}, worthRetrying, func(attempt int, wait time.Duration, err error) {
		if e.Logger != nil {
			e.Logger.Debug("probing again", "host", h.Entry, "attempt", attempt+1, "after", wait, "err", err)
		}
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), errProbeTimeout) {
		during := ""
		var re *remote.Error
		if errors.As(err, &re) && re.Op != "" {
			during = " (during " + re.Op + ")"
		}
		hf = failed(h, fmt.Errorf("%w after %s%s", errProbeTimeout, timeout, during))
	}
	return hf, session
}

func (e *Engine) probeOnce(ctx context.Context, h Host) (HostFinding, Session) {
	s, err := e.Dial(ctx, h)
	if err != nil {
		return failed(h, err), nil
	}
	res, err := s.Run(ctx, checks.ProbeCommand())
	if err != nil {
		e.closeSession(ctx, s)
		return failed(h, err), nil
	}
	facts, err := checks.ParseFacts(res.Stdout)
	if err != nil {
		e.closeSession(ctx, s)
		return failed(h, fmt.Errorf("probe output (exit code %d, stderr %q): %w", res.ExitCode, head(res.Stderr, 200), err)), nil
	}
	return HostFinding{Host: h, Finding: Diagnose(facts, e.Playbooks), Facts: facts}, s
}

// closeTimeout bounds deleting a host's shell.
const closeTimeout = 10 * time.Second

// closeSession deletes the shell even when ctx is done, since an orphaned shell counts against
// the host's MaxShellsPerUser quota of 5; but a hung host must not hold up the run.
func (e *Engine) closeSession(ctx context.Context, s Session) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := s.Close(cctx); err != nil && e.Logger != nil {
		e.Logger.Debug("closing the shell failed", "err", err)
	}
}

func (e *Engine) retry() remote.Backoff {
	if e.Retry.Attempts == 0 {
		return remote.Backoff{Attempts: 5, Initial: 250 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.3}
	}
	return e.Retry
}

// worthRetrying is true for failures of a connection that had reached the host (a reset, an
// early EOF) and for faults and garbled replies of one request. A refused or unanswered
// connection, wrong credentials, TLS mismatches, timeouts and quotas would only fail again, or
// slowly.
func worthRetrying(err error) bool {
	var re *remote.Error
	if !errors.As(err, &re) || errors.Is(err, remote.ErrReplyLimit) || errors.Is(err, remote.ErrOutputLimit) {
		// A host that sent more than a reply or an output may hold would only send it again.
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

// embeddedOr returns pbs, or every embedded playbook when it is empty.
func embeddedOr(pbs []*playbooks.Playbook) []*playbooks.Playbook {
	if len(pbs) == 0 {
		return embeddedPlaybooks()
	}
	return pbs
}

// Diagnose diagnoses facts under each playbook (nil = every embedded one) and returns the most
// severe finding (checks.DiagnoseAll): a host broken by KB973917 is at-risk under kb982666 but
// affected under kb973917, and must be reported affected.
func Diagnose(facts *checks.Facts, pbs []*playbooks.Playbook) checks.Finding {
	return checks.DiagnoseAll(facts, embeddedOr(pbs))
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

// head returns at most n bytes of b, for quoting host output in evidence.
func head(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// failed turns an error into the finding of a host whose facts could not be established.
func failed(h Host, err error) HostFinding {
	v := playbooks.ProbeFailed
	switch {
	case errors.Is(err, remote.ErrAuth):
		v = playbooks.AuthFailed
	case errors.Is(err, remote.ErrUnreachable), errors.Is(err, remote.ErrTLS):
		// A timeout is not here: the host answered (an unanswered connection is unreachable)
		// and the probe was too slow, so its facts could not be established.
		v = playbooks.Unreachable
	}
	return HostFinding{Host: h, Finding: checks.Finding{Verdict: v, Evidence: []string{err.Error()}, Advice: adviceFor(h, err)}, Err: err}
}

// adviceFor says what the user can do about a host's failure, in the words of the inventory.
func adviceFor(h Host, err error) string {
	var re *remote.Error
	if !errors.As(err, &re) {
		return ""
	}
	// Go's own text for a TLS version the two sides do not share (an alert from the server, or
	// its choice of a version the client refuses).
	msg := err.Error()
	if re.Class == remote.ClassTLS && !h.Target.TLS.LegacyTLS &&
		(strings.Contains(msg, "protocol version not supported") || strings.Contains(msg, "unsupported protocol version")) {
		return "The host speaks only TLS 1.0, as Server 2003 does: add tls=legacy and tls_fingerprint=<SHA-256 of its certificate> to its inventory line."
	}
	return re.Hint()
}
