package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// DefaultMaxOutput caps stdout plus stderr of one command, so a hostile or broken host
// cannot exhaust memory: 8 MiB, several times what the probe prints on a busy real host (a
// few MB at most, most of it the System log's W3SVC events).
const DefaultMaxOutput = 8 << 20

// The Receive backoff. A Windows host long-polls a Receive until there is output or its
// OperationTimeout passes; a reply with no output that is not Done, coming back at once, is a
// host that does not wait. Such replies are spaced by a delay that starts at
// minReceiveBackoff and doubles up to maxReceiveBackoff, and output resets it: after a real
// long poll of a minute it adds at most a second.
const (
	minReceiveBackoff = 50 * time.Millisecond
	maxReceiveBackoff = time.Second
)

// ErrOutputLimit is wrapped when a command's output exceeds the session's cap.
var ErrOutputLimit = errors.New("command output exceeds the limit")

// ErrClosed is returned by methods of a closed (or aborted) Session.
var ErrClosed = errors.New("session closed")

// minChunk is the smallest stdin chunk the 413 adaptation goes down to.
const minChunk = 3 * 1024

// encryptionMargin leaves room for the NTLM encryption framing and header variance
// when sizing a Send envelope.
const encryptionMargin = 1024

// Result is what one command produced.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Option configures Dial.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	maxOutput      int64
	attempts       int
	backoff        time.Duration
	sleep          func(ctx context.Context, d time.Duration) error
	cleanupTimeout time.Duration
}

// WithLogger sets the logger for retries, 413 adaptation and cleanup failures (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMaxOutput caps stdout plus stderr per command (default DefaultMaxOutput, 8 MiB); more
// fails the command with ErrOutputLimit.
func WithMaxOutput(n int64) Option { return func(o *options) { o.maxOutput = n } }

// WithRetry sets how many attempts a transient transport failure gets (default 3, 1 = no
// retry) and the first backoff delay (default 500ms, doubled after each attempt).
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(o *options) { o.attempts, o.backoff = attempts, backoff }
}

// WithSleep replaces the wait of retry backoffs and of the Receive backoff (default: a timer
// that honours ctx). Tests pass a function that returns at once, or one that counts the waits
// and cancels ctx, to drive both without a clock.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) { o.sleep = sleep }
}

// WithCleanupTimeout bounds the Signal and Delete sent after a cancellation (default 5s).
func WithCleanupTimeout(d time.Duration) Option { return func(o *options) { o.cleanupTimeout = d } }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Session is one WinRM shell on one host. Its methods are safe for concurrent use; commands
// run one at a time.
type Session struct {
	target Target
	o      options
	tr     transport
	params *winrm.Parameters
	url    string
	log    *slog.Logger

	shellID string
	lock    chan struct{}
	closed  bool
	chunk   atomic.Int64 // current raw stdin bytes per Send
}

// Dial validates t, connects and opens one shell (WS-Man Create). Nothing is sent when t is
// invalid (for example Basic over HTTP without AllowUnencrypted).
func Dial(ctx context.Context, t Target, opts ...Option) (*Session, error) {
	o := options{maxOutput: DefaultMaxOutput, attempts: 3, backoff: 500 * time.Millisecond,
		sleep: sleepCtx, cleanupTimeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.attempts < 1 {
		o.attempts = 1
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	tr, err := newTransport(t)
	if err != nil {
		return nil, err
	}
	s := &Session{
		target: t, o: o, tr: tr, url: t.URL(), log: o.logger.With("host", t.Host),
		params: winrm.NewParameters(isoDuration(t.operationTimeout()), "en-US", t.envelopeBytes()),
		lock:   make(chan struct{}, 1),
	}
	reply, err := s.post(ctx, "create", winrm.NewOpenShellRequest(s.url, s.params))
	if err != nil {
		tr.close()
		return nil, err
	}
	id, err := parseShellID(reply)
	if err != nil {
		tr.close()
		return nil, parseFailure("create", t.Host, err)
	}
	s.shellID = id
	s.chunk.Store(int64(s.initialChunk()))
	return s, nil
}

// ShellID is the host's identifier of the session's shell.
func (s *Session) ShellID() string { return s.shellID }

// Stats returns the session's traffic counters.
func (s *Session) Stats() Stats { return s.tr.stats() }

// StdinChunk is the raw stdin bytes currently sent per Send envelope.
func (s *Session) StdinChunk() int { return int(s.chunk.Load()) }

// validID accepts what Windows uses for shell and command IDs (GUIDs); anything else
// would be pasted into later requests.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '{' || r == '}' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// parseFailure classifies a reply that could not be read: a fault carried in a 200 reply
// by its code, anything else as a protocol error.
func parseFailure(op, host string, err error) *Error {
	var f *Fault
	if errors.As(err, &f) {
		return &Error{Class: faultClass(f), Code: f.Code, Op: op, Host: host, reached: true, Err: f}
	}
	return &Error{Class: ClassProtocol, Op: op, Host: host, reached: true, Err: err}
}

// initialChunk sizes raw stdin per Send so that the base64 envelope fits MaxEnvelopeSizekb:
// (limit - XML overhead - margin) * 3/4.
func (s *Session) initialChunk() int {
	probe := winrm.NewSendInputRequest(s.url, s.shellID, "00000000-0000-0000-0000-000000000000", nil, true, s.params)
	overhead := len(probe.String())
	budget := s.target.envelopeBytes() - overhead - encryptionMargin
	raw := budget / 4 * 3
	if raw < minChunk {
		raw = minChunk
	}
	return raw
}

// retryable says whether a failed op may be sent again. Command is never resent once it
// may have reached the host; Send neither (stdin would be duplicated); Receive neither: the
// host may have handed over output whose reply was lost, and a second Receive would return
// what follows as if nothing were missing. Such a failure is left to the caller, which knows
// whether its whole command can run again (Error.Temporary).
func retryable(op string, e *Error) bool {
	if !e.transient {
		return false
	}
	if !e.reached {
		return true
	}
	if errors.Is(e.Err, errHTTP503) {
		// HTTP.sys refused it before the WinRM service saw it; still never resend a Command.
		return op != "command"
	}
	switch op {
	case "signal", "delete":
		return true
	}
	return false
}

// post sends one message, retrying transient failures within the policy.
func (s *Session) post(ctx context.Context, op string, msg *soap.SoapMessage) ([]byte, error) {
	body := []byte(msg.String())
	var reply []byte
	policy := Backoff{Attempts: s.o.attempts, Initial: s.o.backoff, Jitter: 0.2}
	err := policy.Retry(ctx, s.o.sleep, func(int) error {
		var err error
		reply, err = s.tr.roundTrip(ctx, op, body)
		if err == nil {
			return nil
		}
		var re *Error
		if !errors.As(err, &re) {
			re = classifyTransport(ctx, op, s.target.Host, err, true)
		}
		if re.Op == "" {
			c := *re
			c.Op = op
			re = &c
		}
		return redact(re, s.target.Password)
	}, func(err error) bool {
		var re *Error
		return errors.As(err, &re) && retryable(op, re)
	}, func(attempt int, _ time.Duration, err error) {
		s.log.Debug("retrying after transient error", "op", op, "attempt", attempt, "err", err)
	})
	if err != nil {
		return nil, err
	}
	return reply, nil
}

func (s *Session) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return classifyTransport(ctx, "command", s.target.Host, ctx.Err(), false)
	}
	if s.closed {
		<-s.lock
		return &Error{Class: ClassConfig, Op: "command", Host: s.target.Host, Err: ErrClosed}
	}
	return nil
}

func (s *Session) release() { <-s.lock }

// Run runs cmdline in the session's shell and returns its output and exit code. A non-zero
// exit code is not an error. If ctx is cancelled, the command is terminated, the shell is
// deleted and the Session is closed.
func (s *Session) Run(ctx context.Context, cmdline string) (Result, error) {
	return s.RunInput(ctx, cmdline, nil)
}

// RunInput is Run with stdin streamed from r (nil: none) in Send envelopes sized to the
// host's MaxEnvelopeSizekb; only one chunk is held in memory. An HTTP 413 makes the chunk
// be resent in smaller pieces, and later chunks stay at the smaller size.
func (s *Session) RunInput(ctx context.Context, cmdline string, stdin io.Reader) (res Result, err error) {
	if err := s.acquire(ctx); err != nil {
		return Result{}, err
	}
	defer s.release()
	if strings.Contains(cmdline, "]]>") {
		// masterzen wraps the command in CDATA; "]]>" would end it early.
		return Result{}, &Error{Class: ClassConfig, Op: "command", Host: s.target.Host,
			Err: errors.New(`command line contains "]]>", which cannot be sent in a WS-Man CDATA section`)}
	}
	reply, err := s.post(ctx, "command", winrm.NewExecuteCommandRequest(s.url, s.shellID, cmdline, nil, s.params))
	if err != nil {
		if ctx.Err() != nil {
			s.abort(ctx, "")
		}
		return Result{}, err
	}
	cmdID, err := parseCommandID(reply)
	if err != nil {
		return Result{}, parseFailure("command", s.target.Host, err)
	}

	recvCtx, cancelRecv := context.WithCancel(ctx)
	defer cancelRecv()
	finished := make(chan struct{})
	var rres Result
	var rerr error
	go func() {
		defer close(finished)
		rres, rerr = s.receiveAll(recvCtx, cmdID)
	}()
	var sendErr error
	if stdin != nil {
		sendErr = s.sendAll(ctx, cmdID, stdin, finished)
		if sendErr != nil {
			cancelRecv()
		}
	}
	<-finished
	if errors.Is(sendErr, errAfterDone) {
		sendErr = nil
	}

	switch {
	case ctx.Err() != nil:
		s.abort(ctx, cmdID)
		return rres, classifyTransport(ctx, "receive", s.target.Host, ctx.Err(), true)
	case sendErr != nil:
		s.signal(ctx, cmdID)
		return rres, sendErr
	case rerr != nil:
		s.signal(ctx, cmdID)
		return rres, rerr
	}
	// Windows clients always terminate the command after Done to free it on the host.
	s.signal(ctx, cmdID)
	return rres, nil
}

// signal sends Signal terminate, best effort.
func (s *Session) signal(ctx context.Context, cmdID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.cleanupTimeout)
	defer cancel()
	if _, err := s.post(cctx, "signal", winrm.NewSignalRequest(s.url, s.shellID, cmdID, s.params)); err != nil {
		s.log.Debug("signal terminate failed", "err", err)
	}
}

// abort terminates the command and deletes the shell after a cancellation, under a short
// timeout detached from ctx's cancellation, and closes the session.
func (s *Session) abort(ctx context.Context, cmdID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.cleanupTimeout)
	defer cancel()
	if cmdID != "" {
		if _, err := s.post(cctx, "signal", winrm.NewSignalRequest(s.url, s.shellID, cmdID, s.params)); err != nil {
			s.log.Debug("signal terminate after cancel failed", "err", err)
		}
	}
	if _, err := s.post(cctx, "delete", winrm.NewDeleteShellRequest(s.url, s.shellID, s.params)); err != nil {
		s.log.Debug("delete shell after cancel failed", "err", err)
	}
	s.closed = true
	s.tr.close()
}

// Close deletes the shell. A shell the host no longer knows counts as closed.
func (s *Session) Close(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return classifyTransport(ctx, "delete", s.target.Host, ctx.Err(), false)
	}
	defer s.release()
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.tr.close()
	_, err := s.post(ctx, "delete", winrm.NewDeleteShellRequest(s.url, s.shellID, s.params))
	var re *Error
	if errors.As(err, &re) && re.Code == CodeShellNotFound {
		return nil
	}
	return err
}

// capWriter collects output up to a limit shared by stdout and stderr. Its buffer doubles as
// it fills but never past what the limit still admits, so a command at the cap holds about
// the cap, not twice it.
type capWriter struct {
	buf   []byte
	total *int64
	limit int64
	over  *bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.limit - *w.total
	n := int64(len(p))
	if n > room {
		*w.over = true
		n = max(room, 0)
	}
	if need := len(w.buf) + int(n); need > cap(w.buf) {
		grown := make([]byte, len(w.buf), min(max(2*cap(w.buf), need), len(w.buf)+int(room)))
		copy(grown, w.buf)
		w.buf = grown
	}
	w.buf = append(w.buf, p[:n]...)
	*w.total += n
	return len(p), nil
}

// receiveAll issues Receive until the command is Done. A w:TimedOut fault (code 2150858793,
// read from the fault XML, never from its localized text) or a reply without output means no
// output yet: Receive again, after the Receive backoff.
func (s *Session) receiveAll(ctx context.Context, cmdID string) (Result, error) {
	var total int64
	var over bool
	stdout := &capWriter{total: &total, limit: s.o.maxOutput, over: &over}
	stderr := &capWriter{total: &total, limit: s.o.maxOutput, over: &over}
	result := func(code int) Result {
		return Result{Stdout: stdout.buf, Stderr: stderr.buf, ExitCode: code}
	}
	backoff := time.Duration(0)
	idle := func() error {
		backoff = min(max(2*backoff, minReceiveBackoff), maxReceiveBackoff)
		if err := s.o.sleep(ctx, backoff); err != nil {
			return classifyTransport(ctx, "receive", s.target.Host, err, false)
		}
		return nil
	}
	for {
		reply, err := s.post(ctx, "receive", winrm.NewGetOutputRequest(s.url, s.shellID, cmdID, "stdout stderr", s.params))
		var re *Error
		if errors.As(err, &re) && re.Code == CodeTimedOut && ctx.Err() == nil {
			if err := idle(); err != nil {
				return result(0), err
			}
			continue
		}
		if err != nil {
			return result(0), err
		}
		r, err := parseReceive(reply, stdout, stderr)
		if err != nil {
			re := parseFailure("receive", s.target.Host, err)
			if re.Code != CodeTimedOut {
				return result(0), re
			}
			r = received{}
		}
		if over {
			return result(0), &Error{Class: ClassProtocol, Op: "receive", Host: s.target.Host,
				Err: fmt.Errorf("%w (%d bytes)", ErrOutputLimit, s.o.maxOutput)}
		}
		switch {
		case r.done:
			return result(r.exitCode), nil
		case r.output > 0:
			backoff = 0
		default:
			if err := idle(); err != nil {
				return result(0), err
			}
		}
	}
}

// errAfterDone marks a Send that failed because the command had already finished.
var errAfterDone = errors.New("command finished before its stdin was consumed")

// sendAll streams r as stdin, ending with End="true". It stops early, without error, when
// the command finishes first.
func (s *Session) sendAll(ctx context.Context, cmdID string, r io.Reader, finished <-chan struct{}) error {
	buf := make([]byte, s.chunk.Load())
	for {
		size := int(s.chunk.Load())
		n, rerr := io.ReadFull(r, buf[:size])
		end := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !end {
			return fmt.Errorf("remote: reading stdin for %s: %w", s.target.Host, rerr)
		}
		if err := s.sendData(ctx, cmdID, buf[:n], end, finished); err != nil {
			return err
		}
		if end {
			return nil
		}
	}
}

// sendData sends data (and End when end is set), splitting it further after a 413.
func (s *Session) sendData(ctx context.Context, cmdID string, data []byte, end bool, finished <-chan struct{}) error {
	for {
		select {
		case <-finished:
			return errAfterDone
		default:
		}
		size := int(s.chunk.Load())
		piece := data[:min(size, len(data))]
		last := len(piece) == len(data)
		if !last || end || len(piece) > 0 {
			_, err := s.post(ctx, "send", winrm.NewSendInputRequest(s.url, s.shellID, cmdID, piece, last && end, s.params))
			if errors.Is(err, ErrEnvelopeTooLarge) {
				smaller := min(size, max(len(piece), 1)) / 2 / 3 * 3
				if smaller < minChunk {
					return err
				}
				s.chunk.Store(int64(smaller))
				s.log.Info("host refused the Send envelope (413): smaller stdin chunks", "chunk", smaller)
				continue
			}
			var re *Error
			if errors.As(err, &re) && re.Code == CodeTimedOut {
				// "A WSMan OperationTimeout can be received for a Send operation when the server
				// is under severe load ... the input is still processed" (ansible
				// plugins/connection/winrm.py _winrm_write_stdin): the chunk counts as delivered.
				s.log.Debug("send answered TimedOut; input counts as delivered")
				err = nil
			}
			if err != nil {
				select {
				case <-finished:
					return errAfterDone
				default:
				}
				return err
			}
		}
		data = data[len(piece):]
		if last {
			return nil
		}
	}
}
