package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/masterzen/winrm"
)

func TestNTLMEncryptedSession(t *testing.T) {
	srv := ntlmServer() // negotiate only, encryption required on HTTP (Windows defaults)
	host, port := startWSMan(t, srv)
	s := dial(t, ntlmTarget(host, port))
	for i := 0; i < 5; i++ {
		r := run(t, s, "echo sealed & echo err 1>&2 & exit /b 7")
		if string(r.Stdout) != "sealed\r\n" || string(r.Stderr) != "err\r\n" || r.ExitCode != 7 {
			t.Fatalf("got %q %q %d", r.Stdout, r.Stderr, r.ExitCode)
		}
	}
	in := stdinData(200_000)
	r, err := s.RunInput(context.Background(), `findstr "^"`, bytes.NewReader(in))
	if err != nil || !bytes.Equal(r.Stdout, in) {
		t.Fatalf("stdin round trip: %d bytes, %v", len(r.Stdout), err)
	}
	st := s.Stats()
	if st.Handshakes < 1 || st.Handshakes > defaultNTLMConns {
		t.Fatalf("%d handshakes for one session (want one per connection, at most %d)", st.Handshakes, defaultNTLMConns)
	}
	if st.HTTPRequests != st.Operations+2*st.Handshakes {
		t.Fatalf("stats %+v: want one HTTP request per operation plus two per handshake", st)
	}
	if sst := srv.Stats(); sst.Unauthorized != st.Handshakes {
		t.Fatalf("server saw %d 401s, want %d (one challenge per handshake)", sst.Unauthorized, st.Handshakes)
	}
}

func TestNTLMWrongPassword(t *testing.T) {
	srv := ntlmServer()
	host, port := startWSMan(t, srv)
	tg := ntlmTarget(host, port)
	tg.Password = testPassword + "x"
	_, err := Dial(context.Background(), tg)
	checkErr(t, err, ClassAuth, ErrAuth)
	if strings.Contains(err.Error(), tg.Password) {
		t.Fatal("password in error")
	}
}

func TestNTLMDomainUserForms(t *testing.T) {
	srv := ntlmServer()
	host, port := startWSMan(t, srv)
	for _, u := range []string{`WIN2003\Administrator`, "Administrator@WIN2003", "administrator"} {
		tg := ntlmTarget(host, port)
		tg.User, tg.Auth = u, "ntlm"
		s := dial(t, tg)
		run(t, s, "echo ok")
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNTLMOnlyBasicOfferedIsAuthError(t *testing.T) {
	srv := basicServer()
	host, port := startWSMan(t, srv)
	_, err := Dial(context.Background(), ntlmTarget(host, port))
	checkErr(t, err, ClassAuth, ErrAuth)
}

func TestNTLMFaultsAreDecryptedErrors(t *testing.T) {
	srv := ntlmServer()
	srv.MaxShellsPerUser = 1
	srv.TimeoutOnReceive = 1
	host, port := startWSMan(t, srv)
	s := dial(t, ntlmTarget(host, port))
	// TimedOut (a sealed 500) is read from the fault and the Receive reissued.
	if r := run(t, s, "echo after timeout"); string(r.Stdout) != "after timeout\r\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	if srv.Stats().TimedOut != 1 {
		t.Fatal("no TimedOut served")
	}
	_, err := Dial(context.Background(), ntlmTarget(host, port))
	re := checkErr(t, err, ClassQuota, ErrQuota)
	if re.Code != CodeQuotaShells {
		t.Fatalf("code %d", re.Code)
	}
}

func TestNTLMReauthenticatesReplacedContext(t *testing.T) {
	srv := ntlmServer()
	host, port := startWSMan(t, srv)
	s := dial(t, ntlmTarget(host, port))
	run(t, s, "echo one")
	before := s.Stats().Handshakes
	srv.Reset() // the host forgot every NTLM context and shell (reboot)
	_, err := s.Run(context.Background(), "echo two")
	re := checkErr(t, err, ClassFault, ErrFault)
	if re.Code != CodeShellNotFound {
		t.Fatalf("code %d: %v", re.Code, err)
	}
	if s.Stats().Handshakes != before+1 {
		t.Fatalf("handshakes %d -> %d, want one new handshake", before, s.Stats().Handshakes)
	}
}

// tamper flips one byte of the sealed payload of the nth reply that carries one.
func tamper(h http.Handler, nth int64) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if strings.Contains(rec.Header().Get("Content-Type"), "multipart/encrypted") && n.Add(1) == nth {
			body[len(body)-len(encEnd)-1] ^= 0x55
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

func TestNTLMTamperedReplyRejected(t *testing.T) {
	srv := ntlmServer()
	ts := httptest.NewUnstartedServer(tamper(srv, 2)) // 1 = Create, 2 = Command
	srv.Configure(ts.Config)
	ts.Start()
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	s := dial(t, ntlmTarget(host, port))
	_, err := s.Run(context.Background(), "echo x")
	checkErr(t, err, ClassProtocol, ErrProtocol)
	if !strings.Contains(err.Error(), "signature") {
		t.Fatalf("error %v", err)
	}
}

func TestNTLMOverHTTPS(t *testing.T) {
	srv := ntlmServer()
	host, port, cert := startTLS(t, srv, wsman.ProfileModern)
	tg := ntlmTarget(host, port)
	tg.HTTPS = true
	tg.TLS.Fingerprint = cert.Fingerprint
	s := dial(t, tg)
	if r := run(t, s, "echo https"); string(r.Stdout) != "https\r\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
}

func TestCheckChallengeRequiresSealing(t *testing.T) {
	msg := make([]byte, 48)
	copy(msg, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(msg[8:], 2)
	binary.LittleEndian.PutUint32(msg[20:], flagSign) // no SEAL
	if err := checkChallenge(msg); err == nil {
		t.Fatal("a challenge without NEGOTIATE_SEAL was accepted")
	}
	binary.LittleEndian.PutUint32(msg[20:], flagSign|flagSeal)
	if err := checkChallenge(msg); err != nil {
		t.Fatal(err)
	}
	if err := checkChallenge(msg[:10]); err == nil {
		t.Fatal("short challenge accepted")
	}
	if _, err := findChallenge([]string{"Negotiate", `Basic realm="WSMAN"`}); err == nil {
		t.Fatal("bare Negotiate accepted as a challenge")
	}
}

func TestUnsealRejectsGarbage(t *testing.T) {
	for _, b := range []string{"", "--Encrypted Boundary\r\n", encBoundary + "\tContent-Type: " + encProtocol + "\r\n\tOriginalContent: type=x;Length=99999999999\r\n" + encBoundary} {
		if _, err := unseal(nil, []byte(b)); err == nil {
			t.Errorf("unseal(%q) succeeded", b)
		}
	}
}

// Our transport also works as masterzen's TransportDecorator (its own Client.Run path).
func TestMasterzenClientThroughOurTransporter(t *testing.T) {
	srv := ntlmServer()
	host, port := startWSMan(t, srv)
	c, tr := masterzenClient(t, ntlmTarget(host, port))
	stdout, stderr, code, err := c.RunWithContextWithString(context.Background(), `findstr "^"`, "via masterzen\r\n")
	if err != nil || stdout != "via masterzen\r\n" || stderr != "" || code != 0 {
		t.Fatalf("got %q %q %d %v", stdout, stderr, code, err)
	}
	if tr.Stats().Handshakes > defaultNTLMConns {
		t.Fatalf("%d handshakes", tr.Stats().Handshakes)
	}
}

// TestNTLMClearTextReplyDropsConnection: a clear-text answer to a sealed request (here a 503
// from HTTP.sys) means the host never unsealed it, so the connection's RC4 streams are out of
// step. The retried Receive must go out on a freshly authenticated connection.
func TestNTLMClearTextReplyDropsConnection(t *testing.T) {
	srv := ntlmServer()
	var sealed atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Requests without Authorization carry sealed messages: 1 Create, 2 Command, 3 Receive.
		if r.Header.Get("Authorization") == "" && sealed.Add(1) == 3 {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		srv.ServeHTTP(w, r)
	})
	ts := httptest.NewUnstartedServer(h)
	srv.Configure(ts.Config)
	ts.Start()
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	ns := &noSleep{}
	s := dial(t, ntlmTarget(host, port), WithSleep(ns.sleep))
	if r := run(t, s, "echo after 503"); string(r.Stdout) != "after 503\r\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	if len(ns.delays) != 1 {
		t.Fatalf("retries %v, want one", ns.delays)
	}
	if st := s.Stats(); st.Handshakes != 2 {
		t.Fatalf("%d handshakes, want 2 (the 503'd connection replaced)", st.Handshakes)
	}
}

// masterzenClient is a masterzen winrm.Client posting through NewTransporter(tg).
func masterzenClient(t *testing.T, tg Target) (*winrm.Client, *Transporter) {
	t.Helper()
	tr, err := NewTransporter(tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	params := winrm.NewParameters("PT60S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(tg.Host, tg.Port, false, false, nil, nil, nil, 0), tg.User, tg.Password, params)
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// The package's warm-up must really reach the NTLM client's target-info copy: a challenge it
// cannot answer would leave gob's type cache cold for the first concurrent handshakes.
func TestNTLMWarmUpAnswersItsChallenge(t *testing.T) {
	if err := answerFixedChallenge(); err != nil {
		t.Fatalf("fixed challenge: %v", err)
	}
}
