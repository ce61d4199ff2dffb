package wsman

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// TestJobQuotas: a shell's job counts processes and memory; a nil job (no shell) counts
// nothing.
func TestJobQuotas(t *testing.T) {
	j := &Job{user: "Administrator", maxProcs: 2, maxMemMB: 100}
	end1, err := j.Start(60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(50); !errors.Is(err, ErrMemoryQuota) {
		t.Errorf("past the memory: %v", err)
	}
	end2, err := j.Start(10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(1); !errors.Is(err, ErrProcessQuota) {
		t.Errorf("past the processes: %v", err)
	}
	if _, err := j.Commit(31); !errors.Is(err, ErrMemoryQuota) {
		t.Errorf("commit past the memory: %v", err)
	}
	release, err := j.Commit(30)
	if err != nil {
		t.Fatal(err)
	}
	if p, m := j.Usage(); p != 2 || m != 100 {
		t.Errorf("usage %d processes %d MB", p, m)
	}
	release()
	end1()
	end1() // twice: counted once
	end2()
	if p, m := j.Usage(); p != 0 || m != 0 {
		t.Errorf("usage after the ends: %d %d", p, m)
	}
	var none *Job
	if end, err := none.Start(1 << 20); err != nil || none.User() != "" {
		t.Errorf("nil job: %v", err)
	} else {
		end()
	}
}

// jobHost reports the job its commands run in.
type jobHost struct {
	mu   sync.Mutex
	jobs []*Job
}

func (h *jobHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	j := JobOf(ctx)
	h.mu.Lock()
	h.jobs = append(h.jobs, j)
	h.mu.Unlock()
	if _, err := j.Start(int(len(cmdline))); err != nil {
		io.WriteString(stderr, err.Error())
		return 1
	}
	io.WriteString(stdout, j.User())
	return 0
}

// TestShellJobThroughCommands: every command of a shell carries the shell's job, with the
// server's quotas and the authenticated user.
func TestShellJobThroughCommands(t *testing.T) {
	h := &jobHost{}
	srv := basicServer()
	srv.Host, srv.MaxMemoryPerShellMB = h, 8
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "administrator", "Passw0rd!", nil)
	var out, errb bytes.Buffer
	if code, err := c.RunWithContext(context.Background(), "1234567", &out, &errb); err != nil || code != 0 || out.String() != "Administrator" {
		t.Fatalf("small: %d %v %q %q", code, err, out.String(), errb.String())
	}
	out.Reset()
	if code, _ := c.RunWithContext(context.Background(), "123456789", &out, &errb); code != 1 || !strings.Contains(errb.String(), "MaxMemoryPerShellMB") {
		t.Errorf("past the shell's memory: %d %q", code, errb.String())
	}
	if len(h.jobs) != 2 || h.jobs[0] == nil || h.jobs[0].maxProcs != 15 {
		t.Errorf("jobs %+v", h.jobs)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// killHost's commands run until they are killed.
type killHost struct{ killed chan struct{} }

func (h *killHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	<-ctx.Done()
	close(h.killed)
	return exitTerminated
}

// TestIdleTimeout: the Create reply reports the idle timeout (15 minutes by default, as WinRM
// 2.0-era policy has it); a shell no request names for longer is deleted, its processes killed,
// when the server next handles a request.
func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want string
	}{{0, "PT900.000S"}, {3 * time.Minute, "PT180.000S"}} {
		clock := &fakeClock{now: time.Date(2010, 6, 21, 9, 0, 0, 0, time.UTC)}
		h := &killHost{killed: make(chan struct{})}
		srv := basicServer()
		srv.Host, srv.Clock, srv.IdleTimeout = h, clock, tc.idle
		ts, _, _ := start(t, srv)
		url := ts.URL + "/wsman"
		_, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String())
		if !strings.Contains(body, "<rsp:IdleTimeOut>"+tc.want+"</rsp:IdleTimeOut>") {
			t.Errorf("IdleTimeOut %s: %s", tc.want, body)
		}
		shellID, err := winrm.ParseOpenShellResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		// a command that runs on, and no Receive: nobody names the shell any more
		command := winrm.NewExecuteCommandRequest(url, shellID, "wait", nil, winrm.DefaultParameters).String()
		if status, _, body := soapPost(t, url, command); status != 200 {
			t.Fatalf("command: %d %s", status, body)
		}
		limit := tc.idle
		if limit == 0 {
			limit = 15 * time.Minute
		}
		clock.advance(limit)
		soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String())
		select {
		case <-h.killed:
			t.Fatalf("shell deleted at exactly its idle timeout")
		default:
		}
		clock.advance(time.Second)
		soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String()) // any request: the server notices
		<-h.killed
		if n := srv.Stats().Shells; n != 2 {
			t.Errorf("%d shells after the idle timeout, want the two new ones", n)
		}
		status, h2, body := soapPost(t, url, command)
		wantFault(t, "command in the deleted shell", status, h2, body, "w:InvalidSelectors", shellID)
	}
}

// TestMaxTimeout: an OperationTimeout above MaxTimeoutms (60 s) is refused with a fault.
func TestMaxTimeout(t *testing.T) {
	srv := basicServer()
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	status, h, body := soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.NewParameters("PT120S", "en-US", 153600)).String())
	wantFault(t, "PT120S", status, h, body, `Code="2150858767"`, "PT120.000S exceeds MaxTimeoutms (60000)")
	if status, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.NewParameters("PT60S", "en-US", 153600)).String()); status != 200 {
		t.Errorf("PT60S: %d %s", status, body)
	}
}
