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
