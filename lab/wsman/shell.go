package wsman

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shell is one WinRS cmd shell (the Create resource).
type shell struct {
	id, owner, clientIP string
	job                 *Job

	mu         sync.Mutex
	commands   map[string]*command
	closed     bool
	busy       int       // requests naming the shell in progress
	lastActive time.Time // when the last request naming the shell ended (or it was created)
}

// command is one process started by a Command request.
type command struct {
	id     string
	cancel context.CancelFunc
	stdin  *queue
	stdout *queue
	stderr *queue

	mu           sync.Mutex
	done         bool
	exitCode     int
	doneReported bool          // the first Done reply carries the exit code, later ones 0 (docs/winrm-protocol.md §1.3)
	finished     chan struct{} // closed when the process has returned
}

// queue is an unbounded byte FIFO with close, used for stdin (Send → process) and for
// stdout/stderr (process → Receive). Readers wait on changed().
type queue struct {
	mu     sync.Mutex
	buf    []byte
	closed bool
	notify chan struct{} // closed and replaced on every change
}

func newQueue() *queue { return &queue{notify: make(chan struct{})} }

func (q *queue) changedLocked() {
	close(q.notify)
	q.notify = make(chan struct{})
}

// Write appends p; writes after close are discarded (the process is gone).
func (q *queue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.buf = append(q.buf, p...)
		q.changedLocked()
	}
	return len(p), nil
}

func (q *queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.changedLocked()
	}
	return nil
}

// take removes up to max bytes.
func (q *queue) take(max int) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.buf))
	out := append([]byte(nil), q.buf[:n]...)
	q.buf = q.buf[n:]
	if len(q.buf) == 0 {
		q.buf = nil
	}
	if n > 0 {
		q.changedLocked() // wakes a Send waiting for room (waitBelow)
	}
	return out
}

func (q *queue) state() (n int, closed bool, changed <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf), q.closed, q.notify
}

// reader returns an io.Reader over the queue that blocks until data, close, or ctx is done.
func (q *queue) reader(ctx context.Context) io.Reader { return &queueReader{q: q, ctx: ctx} }

// errKilled is what a killed process reads from its stdin, never io.EOF: a program that
// writes what it holds at the end of its input must not do so when killed.
var errKilled = errors.New("process killed")

type queueReader struct {
	q   *queue
	ctx context.Context
}

func (r *queueReader) Read(p []byte) (int, error) {
	for {
		n, closed, changed := r.q.state()
		if n > 0 {
			return copy(p, r.q.take(len(p))), nil
		}
		if closed && r.ctx.Err() == nil {
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			// Killed (terminate cancels before it closes stdin): no clean end of input.
			return 0, errKilled
		}
	}
}

// waitBelow blocks while the queue holds more than n bytes, until done or ctx ends: a process
// reads its stdin from a pipe of bounded size, so a Send returns as the process takes its input
// in, not before.
func (q *queue) waitBelow(ctx context.Context, n int, done <-chan struct{}) {
	for {
		q.mu.Lock()
		size, closed, changed := len(q.buf), q.closed, q.notify
		q.mu.Unlock()
		if size <= n || closed {
			return
		}
		select {
		case <-changed:
		case <-done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// startCommand runs cmdline on host in its own goroutine, in the shell's job.
func startCommand(host Host, cmdline string, job *Job) *command {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), jobKey{}, job))
	c := &command{id: newUUID(), cancel: cancel, stdin: newQueue(), stdout: newQueue(), stderr: newQueue(),
		finished: make(chan struct{})}
	go func() {
		code := host.Exec(ctx, cmdline, c.stdin.reader(ctx), c.stdout, c.stderr)
		c.mu.Lock()
		c.done, c.exitCode = true, code
		c.mu.Unlock()
		c.stdin.Close()
		close(c.finished) // wakes a pending Receive
	}()
	return c
}

// terminate kills the process (Signal terminate, Delete, Reset). It does not wait for Exec to
// return; Signal waits on finished itself.
func (c *command) terminate() {
	c.cancel()
	c.stdin.Close()
}

// receiveResult is what a Receive answers when it does not time out.
type receiveResult struct {
	stdout, stderr []byte
	done           bool
	exitCode       int
}

// receive long-polls: it returns as soon as there is output or the command is done, or nil when
// wait elapses (→ TimedOut fault) or ctx ends. budget is the number of raw bytes that fit the
// client's MaxEnvelopeSize.
func (c *command) receive(ctx context.Context, wait time.Duration, budget int) *receiveResult {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		nOut, _, outCh := c.stdout.state()
		nErr, _, errCh := c.stderr.state()
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		if nOut > 0 || nErr > 0 || done {
			r := &receiveResult{}
			r.stdout = c.stdout.take(budget)
			r.stderr = c.stderr.take(budget - len(r.stdout))
			if done {
				nOut, _, _ = c.stdout.state()
				nErr, _, _ = c.stderr.state()
				if nOut == 0 && nErr == 0 {
					r.done = true
					c.mu.Lock()
					if !c.doneReported {
						r.exitCode = c.exitCode
						c.doneReported = true
					}
					c.mu.Unlock()
				}
			}
			return r
		}
		select {
		case <-outCh:
		case <-errCh:
		case <-c.finished:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// renderReceive builds the ReceiveResponse body (testdata/soap/masterzen_receive_response_stdout_stderr_running.xml,
// pywinrm_receive_response_stdout_done_exitcode_0.xml for the End="true" markers and Done).
func renderReceive(cmdID string, r *receiveResult) string {
	var b strings.Builder
	b.WriteString("<rsp:ReceiveResponse>")
	stream := func(name string, data []byte) {
		if len(data) > 0 {
			b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + cmdID + `">`)
			b.WriteString(base64.StdEncoding.EncodeToString(data))
			b.WriteString("</rsp:Stream>")
		}
	}
	stream("stdout", r.stdout)
	stream("stderr", r.stderr)
	if r.done {
		b.WriteString(`<rsp:Stream Name="stdout" CommandId="` + cmdID + `" End="true"></rsp:Stream>`)
		b.WriteString(`<rsp:Stream Name="stderr" CommandId="` + cmdID + `" End="true"></rsp:Stream>`)
		b.WriteString(`<rsp:CommandState CommandId="` + cmdID + `" State="` + stateDone + `"><rsp:ExitCode>` +
			strconv.Itoa(r.exitCode) + `</rsp:ExitCode></rsp:CommandState>`)
	} else {
		b.WriteString(`<rsp:CommandState CommandId="` + cmdID + `" State="` + stateRunning + `"></rsp:CommandState>`)
	}
	b.WriteString("</rsp:ReceiveResponse>")
	return b.String()
}

// isoSeconds renders d as the service writes durations: PT900.000S.
func isoSeconds(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "S"
}

// renderShell builds the CreateResponse body (testdata/soap/masterzen_create_shell_response.xml, on one line);
// rsp:IdleTimeOut is the service's idle timeout.
func renderShell(s *shell, address string, idle time.Duration) string {
	return `<x:ResourceCreated><a:Address>` + esc(address) + `</a:Address><a:ReferenceParameters><w:ResourceURI>` + resourceCmd +
		`</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + s.id + `</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
		`<rsp:Shell xmlns:rsp="` + nsShell + `"><rsp:ShellId>` + s.id + `</rsp:ShellId><rsp:ResourceUri>` + resourceCmd + `</rsp:ResourceUri>` +
		`<rsp:Owner>` + esc(s.owner) + `</rsp:Owner><rsp:ClientIP>` + esc(s.clientIP) + `</rsp:ClientIP><rsp:IdleTimeOut>` + isoSeconds(idle) + `</rsp:IdleTimeOut>` +
		`<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>` +
		`<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`
}
