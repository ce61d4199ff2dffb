package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// stdinData is n bytes of CRLF-terminated printable lines (findstr "^" copies them as is).
func stdinData(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %07d the quick brown fox jumps over the lazy dog\r\n", i)
	}
	return b.Bytes()[:n]
}

// onlyReader hides any WriterTo/Len of the underlying reader, as a file or pipe would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestBasicManyCommandsOneShell(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port))
	tests := []struct {
		cmd            string
		stdout, stderr string
		code           int
	}{
		{"echo hello", "hello\r\n", "", 0},
		{"echo oops 1>&2 & exit /b 3", "", "oops\r\n", 3},
		{"hostname", "WIN2003\r\n", "", 0},
		{"nosuchcmd", "", "'nosuchcmd' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 9009},
		{"echo a & echo b 1>&2 & exit /b 2147483647", "a\r\n", "b\r\n", 2147483647},
	}
	for _, tc := range tests {
		r := run(t, s, tc.cmd)
		if string(r.Stdout) != tc.stdout || string(r.Stderr) != tc.stderr || r.ExitCode != tc.code {
			t.Errorf("%q: got (%q, %q, %d), want (%q, %q, %d)", tc.cmd, r.Stdout, r.Stderr, r.ExitCode, tc.stdout, tc.stderr, tc.code)
		}
	}
	st := srv.Stats()
	if st.Creates != 1 || st.Commands != int64(len(tests)) || st.Shells != 1 {
		t.Errorf("server stats %+v: want 1 create, %d commands, 1 shell", st, len(tests))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.Deletes != 1 || st.Shells != 0 {
		t.Errorf("after close: %+v", st)
	}
	if _, err := s.Run(context.Background(), "echo x"); !errors.Is(err, ErrClosed) {
		t.Errorf("run after close: %v, want ErrClosed", err)
	}
}

func TestStdinStream1MiBNo413(t *testing.T) {
	for _, auth := range []string{AuthBasic, AuthNegotiate} {
		t.Run(auth, func(t *testing.T) {
			srv, tg := setup(t, auth, func(s *wsman.Server) { s.MaxEnvelopeSizeKB = 150 })
			s := dial(t, tg)
			in := stdinData(1 << 20)
			r, err := s.RunInput(context.Background(), `findstr "^"`, onlyReader{bytes.NewReader(in)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Stdout, in) || r.ExitCode != 0 {
				t.Fatalf("stdout %d bytes (want %d identical), exit %d, stderr %q", len(r.Stdout), len(in), r.ExitCode, r.Stderr)
			}
			st := srv.Stats()
			if st.TooLarge != 0 {
				t.Fatalf("%d replies 413", st.TooLarge)
			}
			chunk := s.StdinChunk()
			want := int64((len(in) + chunk - 1) / chunk)
			if st.Sends != want {
				t.Errorf("sends = %d, want %d (chunk %d)", st.Sends, want, chunk)
			}
			if chunk < 100_000 {
				t.Errorf("chunk %d is needlessly small for a 150 KB envelope", chunk)
			}
		})
	}
}

func TestStdin413Adapts(t *testing.T) {
	for _, auth := range []string{AuthBasic, AuthNegotiate} {
		t.Run(auth, func(t *testing.T) { testStdin413Adapts(t, auth) })
	}
}

func testStdin413Adapts(t *testing.T, auth string) {
	srv, tg := setup(t, auth, func(s *wsman.Server) { s.MaxEnvelopeSizeKB = 40 }) // stricter than the client believes
	tg.MaxEnvelopeSizeKB = 150
	s := dial(t, tg)
	first := s.StdinChunk()
	in := stdinData(300_000)
	r, err := s.RunInput(context.Background(), `findstr "^"`, onlyReader{bytes.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Stdout, in) {
		t.Fatalf("stdout %d bytes, want %d identical", len(r.Stdout), len(in))
	}
	st := srv.Stats()
	if st.TooLarge == 0 {
		t.Fatal("no 413 seen: the test does not exercise adaptation")
	}
	if st.TooLarge > 3 {
		t.Errorf("%d replies 413: the smaller chunk was not kept", st.TooLarge)
	}
	if got := s.StdinChunk(); got >= first || got*4/3 > 40*1024 {
		t.Errorf("chunk %d after adaptation (first %d)", got, first)
	}
	// Later commands use the adapted size at once.
	before := srv.Stats().TooLarge
	if _, err := s.RunInput(context.Background(), `findstr "^"`, bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if srv.Stats().TooLarge != before {
		t.Error("413 again on the next command")
	}
}

func TestReceiveTimedOutIsReissued(t *testing.T) {
	// A command silent for longer than the OperationTimeout: the host answers a Receive with the
	// w:TimedOut fault and the client asks again. The command stays silent until the third
	// Receive, so at least one of the first two times out however fast the machine is.
	h := &gatedHost{release: make(chan struct{})}
	srv := basicServer()
	srv.Host = h
	var receives atomic.Int32
	var requested atomic.Int64
	srv.ReceiveTimeout = func(d time.Duration) time.Duration {
		requested.Store(int64(d))
		if receives.Add(1) == 3 {
			close(h.release)
		}
		return d - d/10 // the server's default: the fault comes before the client's own timer
	}
	host, port := startWSMan(t, srv)
	tg := basicTarget(host, port)
	tg.OperationTimeout = 100 * time.Millisecond // PT0.100S
	s := dial(t, tg)
	r := run(t, s, "wait")
	if r.ExitCode != 0 || string(r.Stdout) != "first\r\nsecond\r\n" {
		t.Fatalf("got %q exit %d", r.Stdout, r.ExitCode)
	}
	if st := srv.Stats(); st.TimedOut == 0 || st.Receives < 3 {
		t.Fatalf("want a TimedOut fault and the Receive asked again: %+v", st)
	}
	if d := time.Duration(requested.Load()); d != tg.OperationTimeout {
		t.Errorf("the host was asked for OperationTimeout %v, want %v", d, tg.OperationTimeout)
	}
}

func TestReceiveTimedOutInjected(t *testing.T) {
	srv := basicServer()
	srv.TimeoutOnReceive = 1
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port))
	if r := run(t, s, "echo x"); string(r.Stdout) != "x\r\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	if srv.Stats().TimedOut != 1 {
		t.Fatal("no TimedOut")
	}
}

func TestCancelMidCommandSignalsAndDeletes(t *testing.T) {
	h := newBlockingHost()
	srv := basicServer()
	srv.Host = h
	ctx, cancel := context.WithCancel(context.Background())
	receiving := make(chan struct{})
	ts := httptest.NewUnstartedServer(onAction(srv, "windows/shell/Receive", func() { close(receiving) }))
	srv.Configure(ts.Config)
	ts.Start()
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	s := dial(t, basicTarget(host, port))
	go func() {
		<-h.started
		<-receiving // a Receive long-poll is in flight
		cancel()
	}()
	_, err := s.Run(ctx, "wait forever")
	checkErr(t, err, ClassCanceled, ErrCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false: %v", err)
	}
	<-h.ended // the host process was terminated
	st := srv.Stats()
	if st.Signals < 1 || st.Deletes != 1 || st.Shells != 0 {
		t.Fatalf("after cancel: %+v, want a Signal and a Delete", st)
	}
	noSessionGoroutines(t)
	if _, err := s.Run(context.Background(), "echo x"); !errors.Is(err, ErrClosed) {
		t.Errorf("run after abort: %v", err)
	}
}

func TestDeadlineIsTimeoutAndAborts(t *testing.T) {
	for _, auth := range []string{AuthBasic, AuthNegotiate} {
		t.Run(auth, func(t *testing.T) {
			h := newBlockingHost()
			receiving := make(chan struct{})
			var once sync.Once
			srv, tg := setup(t, auth, func(s *wsman.Server) {
				s.Host = h
				s.ReceiveTimeout = func(d time.Duration) time.Duration {
					once.Do(func() { close(receiving) }) // a Receive long-poll is in flight
					return d - d/10
				}
			})
			s := dial(t, tg)
			// The deadline passes while the command runs and a Receive waits for its output.
			ctx := newExpiringContext()
			go func() {
				<-h.started
				<-receiving
				ctx.expire()
			}()
			_, err := s.Run(ctx, "wait forever")
			checkErr(t, err, ClassTimeout, ErrTimeout)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("not DeadlineExceeded: %v", err)
			}
			<-h.ended
			if st := srv.Stats(); st.Signals < 1 || st.Deletes != 1 || st.Shells != 0 {
				t.Fatalf("command not terminated and shell not deleted after the deadline: %+v", st)
			}
			noSessionGoroutines(t)
		})
	}
}

func TestSlowHostResponseTimeout(t *testing.T) {
	for _, auth := range []string{AuthBasic, AuthNegotiate} {
		t.Run(auth, func(t *testing.T) {
			// The host never answers within the test; the client gives up after OperationTimeout
			// plus ResponseGrace.
			_, tg := setup(t, auth, func(s *wsman.Server) { s.Latency = time.Hour })
			tg.OperationTimeout, tg.ResponseGrace = 50*time.Millisecond, time.Millisecond
			_, err := Dial(context.Background(), tg)
			checkErr(t, err, ClassTimeout, ErrTimeout)
		})
	}
}

// timedOutSend lets the first Send through to h, then replaces its reply with the
// w:TimedOut fault (the input was processed, as ansible observed under load).
func timedOutSend(h http.Handler, fault []byte) http.Handler {
	var done atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte("windows/shell/Send")) || done.Swap(true) {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(fault)
	})
}

func TestSendTimedOutCountsAsDelivered(t *testing.T) {
	srv := basicServer()
	ts := httptest.NewUnstartedServer(timedOutSend(srv, sample(t, "masterzen_receive_fault_timedout_500.xml")))
	srv.Configure(ts.Config)
	ts.Start()
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	s := dial(t, basicTarget(host, port))
	in := stdinData(300_000)
	r, err := s.RunInput(context.Background(), `findstr "^"`, bytes.NewReader(in))
	if err != nil || !bytes.Equal(r.Stdout, in) {
		t.Fatalf("%d bytes back, %v", len(r.Stdout), err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk gone")
	}
	n := min(len(p), f.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	f.n -= n
	return n, nil
}

func TestStdinReadErrorTerminatesCommand(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port))
	_, err := s.RunInput(context.Background(), `findstr "^"`, &failingReader{n: 10})
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("err = %v", err)
	}
	if srv.Stats().Signals != 1 {
		t.Fatal("command not terminated")
	}
	if r := run(t, s, "echo next"); string(r.Stdout) != "next\r\n" {
		t.Fatalf("next command: %q", r.Stdout)
	}
}

func TestQuotaExceeded(t *testing.T) {
	srv := basicServer()
	srv.MaxShellsPerUser = 1
	host, port := startWSMan(t, srv)
	dial(t, basicTarget(host, port))
	_, err := Dial(context.Background(), basicTarget(host, port))
	re := checkErr(t, err, ClassQuota, ErrQuota)
	if re.Code != CodeQuotaShells || !errors.Is(err, ErrFault) || re.Op != "create" {
		t.Fatalf("code %d op %q", re.Code, re.Op)
	}
}

func TestUnknownShellIsFault(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port))
	srv.Reset() // the host rebooted: shells are gone
	_, err := s.Run(context.Background(), "echo x")
	re := checkErr(t, err, ClassFault, ErrFault)
	if re.Code != CodeShellNotFound {
		t.Fatalf("code = %d", re.Code)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close of a vanished shell: %v", err)
	}
}

func TestWrongPasswordBasic(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	tg := basicTarget(host, port)
	srv.Password = "other"
	_, err := Dial(context.Background(), tg)
	checkErr(t, err, ClassAuth, ErrAuth)
}

func TestBasicOverHTTPRefusedBeforeTraffic(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	tg := basicTarget(host, port)
	tg.AllowUnencrypted = false
	_, err := Dial(context.Background(), tg)
	checkErr(t, err, ClassConfig, ErrConfig)
	if n := srv.Stats().Requests; n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	if _, err := NewTransporter(tg); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewTransporter: %v", err)
	}
}

func TestNotWinRMIsProtocolError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = c.Read(buf) // the request, then an answer that is not HTTP
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			_ = c.Close()
		}
	}()
	host, port := hostPort(t, l.Addr())
	for _, tg := range []Target{basicTarget(host, port), ntlmTarget(host, port)} {
		_, err := Dial(context.Background(), tg, WithRetry(1, 0))
		checkErr(t, err, ClassProtocol, ErrProtocol)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := hostPort(t, l.Addr())
	l.Close()
	for _, tg := range []Target{basicTarget(host, port), ntlmTarget(host, port)} {
		_, err := Dial(context.Background(), tg)
		checkErr(t, err, ClassUnreachable, ErrUnreachable)
	}
}

func TestRetryTransient(t *testing.T) {
	t.Run("receive dropped is not retried", func(t *testing.T) {
		srv := basicServer()
		srv.DropConnection = func(n int64, r *http.Request) bool { return n == 3 } // create, command, receive
		host, port := startWSMan(t, srv)
		ns := &noSleep{}
		s := dial(t, basicTarget(host, port), WithSleep(ns.sleep), WithRetry(3, 100*time.Millisecond))
		_, err := s.Run(context.Background(), "echo hi")
		checkErr(t, err, ClassUnreachable, ErrUnreachable)
		var re *Error
		if !errors.As(err, &re) || !re.Temporary() {
			t.Fatalf("a dropped Receive should be a temporary error for the caller to judge: %v", err)
		}
		if len(ns.delays) != 0 || srv.Stats().Receives != 0 {
			t.Fatalf("receive was retried: delays %v, receives %d", ns.delays, srv.Stats().Receives)
		}
	})
	t.Run("delete dropped is retried", func(t *testing.T) {
		srv := basicServer()
		var dropNth atomic.Int64 // 0 until the shell is open
		srv.DropConnection = func(i int64, r *http.Request) bool { return i == dropNth.Load() }
		host, port := startWSMan(t, srv)
		ns := &noSleep{}
		s := dial(t, basicTarget(host, port), WithSleep(ns.sleep), WithRetry(3, 100*time.Millisecond))
		dropNth.Store(srv.Stats().Requests + 1)
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(ns.delays) != 1 || srv.Stats().Deletes != 1 {
			t.Fatalf("delays %v, deletes %d", ns.delays, srv.Stats().Deletes)
		}
	})
	t.Run("command dropped is not retried", func(t *testing.T) {
		srv := basicServer()
		srv.DropConnection = func(n int64, r *http.Request) bool { return n == 2 }
		host, port := startWSMan(t, srv)
		ns := &noSleep{}
		s := dial(t, basicTarget(host, port), WithSleep(ns.sleep))
		_, err := s.Run(context.Background(), "echo hi")
		checkErr(t, err, ClassUnreachable, ErrUnreachable)
		if len(ns.delays) != 0 || srv.Stats().Commands != 0 {
			t.Fatalf("command was retried: delays %v", ns.delays)
		}
	})
	t.Run("503 on create is retried, bounded", func(t *testing.T) {
		srv := basicServer()
		ts := httptest.NewUnstartedServer(wrap503(srv, 2))
		srv.Configure(ts.Config)
		ts.Start()
		defer ts.Close()
		host, port := hostPort(t, ts.Listener.Addr())
		ns := &noSleep{}
		s := dial(t, basicTarget(host, port), WithSleep(ns.sleep), WithRetry(3, time.Second))
		// The second wait doubles the first, 2s, less at most the 20% of jitter.
		if len(ns.delays) != 2 || ns.delays[1] > 2*time.Second || ns.delays[1] < 1600*time.Millisecond || s.ShellID() == "" {
			t.Fatalf("delays %v, shell %q", ns.delays, s.ShellID())
		}
		ts2 := httptest.NewServer(wrap503(srv, 100))
		defer ts2.Close()
		h2, p2 := hostPort(t, ts2.Listener.Addr())
		_, err := Dial(context.Background(), basicTarget(h2, p2), WithSleep(ns.sleep), WithRetry(3, time.Second))
		checkErr(t, err, ClassUnreachable, ErrUnreachable)
	})
	t.Run("401 is not retried", func(t *testing.T) {
		srv := basicServer()
		srv.Password = "x"
		host, port := startWSMan(t, srv)
		ns := &noSleep{}
		_, err := Dial(context.Background(), basicTarget(host, port), WithSleep(ns.sleep))
		checkErr(t, err, ClassAuth, ErrAuth)
		if len(ns.delays) != 0 || srv.Stats().Requests != 1 {
			t.Fatalf("retried: %v", ns.delays)
		}
	})
}

func TestOutputCap(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port), WithMaxOutput(1000))
	_, err := s.RunInput(context.Background(), `findstr "^"`, bytes.NewReader(stdinData(5000)))
	checkErr(t, err, ClassProtocol, ErrProtocol)
	if !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("not ErrOutputLimit: %v", err)
	}
	// The shell survives.
	if r := run(t, s, "echo ok"); string(r.Stdout) != "ok\r\n" {
		t.Fatalf("after cap: %q", r.Stdout)
	}
}

func TestCDATATerminatorRefused(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	s := dial(t, basicTarget(host, port))
	_, err := s.Run(context.Background(), "echo ]]> x")
	checkErr(t, err, ClassConfig, ErrConfig)
	if srv.Stats().Commands != 0 {
		t.Fatal("command was sent")
	}
}

func TestTargetNeverPrintsPassword(t *testing.T) {
	tg := Target{Host: "web01", User: `CORP\admin`, Password: testPassword, HTTPS: true,
		TLS: TLSOptions{LegacyTLS: true, Fingerprint: strings.Repeat("ab", 32)}}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		noSecret(t, fmt.Sprintf(f, tg))
		noSecret(t, fmt.Sprintf(f, &tg))
	}
	noSecret(t, tg.String())
	noSecret(t, tg.GoString())
	noSecret(t, fmt.Sprint([]Target{tg}))
	noSecret(t, fmt.Sprintf("%+v", struct{ T Target }{tg}))
	if w := tg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "legacy TLS") {
		t.Fatalf("warnings %q", w)
	}
}

func TestValidate(t *testing.T) {
	ok := Target{Host: "h", User: "u", Password: testPassword}
	cases := []struct {
		name string
		mod  func(*Target)
		bad  bool
	}{
		{"negotiate over http", func(*Target) {}, false},
		{"no host", func(t *Target) { t.Host = "" }, true},
		{"url as host", func(t *Target) { t.Host = "http://h/" }, true},
		{"port in host", func(t *Target) { t.Host = "h:5985" }, true},
		{"bracketed ipv6", func(t *Target) { t.Host = "[::1]" }, true},
		{"ipv6", func(t *Target) { t.Host = "::1" }, false},
		{"no user", func(t *Target) { t.User = "" }, true},
		{"bad auth", func(t *Target) { t.Auth = "kerberos" }, true},
		{"basic http", func(t *Target) { t.Auth = "basic" }, true},
		{"basic https", func(t *Target) { t.Auth, t.HTTPS = "basic", true }, false},
		{"legacy without pin", func(t *Target) { t.HTTPS, t.TLS.LegacyTLS = true, true }, true},
		{"legacy with pin", func(t *Target) {
			t.HTTPS, t.TLS.LegacyTLS, t.TLS.Fingerprint = true, true, strings.Repeat("AB:", 31)+"AB"
		}, false},
		{"legacy insecure", func(t *Target) { t.HTTPS, t.TLS.LegacyTLS, t.TLS.Insecure = true, true, true }, false},
		{"short pin", func(t *Target) { t.HTTPS, t.TLS.Fingerprint = true, "abcd" }, true},
		{"bad ca", func(t *Target) { t.HTTPS, t.TLS.CAPEM = true, []byte("nope") }, true},
	}
	for _, c := range cases {
		tg := ok
		c.mod(&tg)
		err := tg.Validate()
		if (err != nil) != c.bad {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err != nil {
			noSecret(t, err.Error())
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%s: not ErrConfig", c.name)
			}
		}
	}
}

func TestIsoDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{60 * time.Second: "PT60S", 1500 * time.Millisecond: "PT1.500S", time.Second: "PT1S"} {
		if got := isoDuration(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

// TestStalledReplyBodyTimesOut: a host that sends the headers of a reply and then nothing
// more is given up on after the response timeout, not after the caller's (much longer) deadline.
func TestStalledReplyBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<s:Envelope")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	tg := basicTarget(host, port)
	tg.OperationTimeout, tg.ResponseGrace = 100*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // far beyond any machine's slowness
	defer cancel()
	_, err := Dial(ctx, tg, WithRetry(1, 0))
	checkErr(t, err, ClassTimeout, ErrTimeout)
	if ctx.Err() != nil {
		t.Fatalf("only the caller's deadline ended the wait: %v", err)
	}
}

func TestTargetSecretsStayOutOfLogsAndJSON(t *testing.T) {
	tg := Target{Host: "web01", User: `CORP\admin`, Password: testPassword}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("dial", "target", tg, "ptr", &tg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("dial", "target", tg)
	noSecret(t, buf.String())
	if !strings.Contains(buf.String(), "web01") {
		t.Fatalf("the log lines do not describe the target: %s", buf.String())
	}
	b, err := json.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, string(b))
}

// TestEchoedCredentialsStayOutOfErrors: a stray HTTP server that echoes the request must not
// get the Basic credentials, encoded or not, into the error text.
func TestEchoedCredentialsStayOutOfErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, "echo: %s", r.Header.Get("Authorization"))
	}))
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	tg := basicTarget(host, port)
	_, err := Dial(context.Background(), tg)
	checkErr(t, err, ClassProtocol, ErrProtocol)
	token := base64.StdEncoding.EncodeToString([]byte(tg.User + ":" + tg.Password))
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "echo: Basic [redacted]") {
		t.Fatalf("error %q", err)
	}
}
