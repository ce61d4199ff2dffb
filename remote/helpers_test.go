package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

const testPassword = "S3cr3t-Pa55w0rd!"

// startWSMan serves srv on loopback (plain HTTP) with per-connection state.
func startWSMan(t testing.TB, srv *wsman.Server) (string, int) {
	t.Helper()
	ts := httptest.NewUnstartedServer(srv)
	srv.Configure(ts.Config)
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		srv.Reset()
	})
	return hostPort(t, ts.Listener.Addr())
}

func hostPort(t testing.TB, a net.Addr) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func basicServer() *wsman.Server {
	return &wsman.Server{Auth: []string{"basic"}, AllowUnencrypted: true, Password: testPassword}
}

func basicTarget(host string, port int) Target {
	return Target{Host: host, Port: port, Auth: AuthBasic, User: "Administrator", Password: testPassword,
		AllowUnencrypted: true, DialTimeout: 5 * time.Second}
}

func ntlmServer() *wsman.Server {
	return &wsman.Server{Password: testPassword}
}

func ntlmTarget(host string, port int) Target {
	return Target{Host: host, Port: port, User: "Administrator", Password: testPassword, DialTimeout: 5 * time.Second}
}

// noSleep is an injected backoff that records the delays and never waits.
type noSleep struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (n *noSleep) sleep(ctx context.Context, d time.Duration) error {
	n.mu.Lock()
	n.delays = append(n.delays, d)
	n.mu.Unlock()
	return ctx.Err()
}

func dial(t testing.TB, tg Target, opts ...Option) *Session {
	t.Helper()
	s, err := Dial(context.Background(), tg, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func run(t testing.TB, s *Session, cmd string) Result {
	t.Helper()
	r, err := s.Run(context.Background(), cmd)
	if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	return r
}

// checkErr asserts err is an *Error of class c matching sentinel, without the password.
func checkErr(t *testing.T, err error, c Class, sentinel error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want %v error, got nil", c)
	}
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("want *remote.Error, got %T: %v", err, err)
	}
	if re.Class != c {
		t.Fatalf("class = %v, want %v (%v)", re.Class, c, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
	noSecret(t, err.Error())
	return re
}

func noSecret(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, testPassword) {
		t.Fatalf("password leaked in %q", s)
	}
}

// sessionGoroutines counts goroutines running code of this package's Session.
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	c := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "remote.(*Session)") && !strings.Contains(g, "sessionGoroutines") {
			c++
		}
	}
	return c
}

// noSessionGoroutines fails unless every goroutine running Session code ends. A goroutine that
// has signalled its end (a deferred close) is on its stack until it returns, which on a busy
// machine can be a while after the signal: the count is polled, and only a leak sees the minute
// pass.
func noSessionGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for n := sessionGoroutines(); n != 0; n = sessionGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d session goroutines left", n)
		}
		time.Sleep(time.Millisecond) // let them run to their end
	}
}

// expiringContext is a context whose deadline passes when expire is called, so that a test can
// place a deadline at a point of a command's run rather than at a time that a slow machine might
// reach before the command even starts. Its Err is then context.DeadlineExceeded.
type expiringContext struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiringContext() *expiringContext {
	return &expiringContext{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiringContext) expire()               { c.once.Do(func() { close(c.done) }) }
func (c *expiringContext) Done() <-chan struct{} { return c.done }
func (c *expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// gatedHost is a wsman.Host whose commands print "first", wait until release is closed, then
// print "second" and exit 0.
type gatedHost struct{ release chan struct{} }

func (h *gatedHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	_, _ = io.WriteString(stdout, "first\r\n")
	select {
	case <-h.release:
	case <-ctx.Done():
		return 1
	}
	_, _ = io.WriteString(stdout, "second\r\n")
	return 0
}

// blockingHost is a wsman.Host whose commands run until terminated.
type blockingHost struct {
	started chan string
	ended   chan string
}

func newBlockingHost() *blockingHost {
	return &blockingHost{started: make(chan string, 10), ended: make(chan string, 10)}
}

func (h *blockingHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	_, _ = io.WriteString(stdout, "started\r\n")
	h.started <- cmdline
	<-ctx.Done()
	h.ended <- cmdline
	return 1
}

// wrap503 answers 503 to the first n requests, then delegates.
func wrap503(h http.Handler, n int) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refuse := n > 0
		n--
		mu.Unlock()
		if refuse {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// onAction calls f (once) when a request whose body contains action arrives, before serving it.
func onAction(h http.Handler, action string, f func()) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(action)) {
			once.Do(f)
		}
		h.ServeHTTP(w, r)
	})
}

// setup starts a server for auth ("basic" over HTTP with AllowUnencrypted, or "negotiate"
// with encryption required), lets mod adjust it first, and returns it with a matching Target.
func setup(t testing.TB, auth string, mod func(*wsman.Server)) (*wsman.Server, Target) {
	t.Helper()
	srv := basicServer()
	if auth == AuthNegotiate {
		srv = ntlmServer()
	}
	if mod != nil {
		mod(srv)
	}
	host, port := startWSMan(t, srv)
	if auth == AuthNegotiate {
		return srv, ntlmTarget(host, port)
	}
	return srv, basicTarget(host, port)
}
