// Package wsman is an in-process WinRM (WS-Management) server for tests: an http.Handler for
// POST /wsman that speaks the cmd shell resource (Create, Command, Send, Receive, Signal, Delete)
// with Windows' reply shapes and faults, Basic and NTLM authentication with WinRM message
// encryption, HTTPS profiles and fault injection. Its zero value is ready for use.
//
// The wire formats follow docs/winrm-protocol.md and the captured replies in
// testdata/soap; comments cite the section or sample for each Windows-specific detail.
package wsman

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a simulated WinRM 2.0 listener (the service of a Windows Server 2003 with WMF 2.0).
// The zero value works: Basic is off and NTLM ("negotiate") is on, encryption is required on
// plain HTTP, commands run on a tiny built-in host. Set fields before the first request.
type Server struct {
	// Host runs the commands; nil = a built-in host knowing echo, exit /b N, hostname,
	// findstr "^" (stdin to stdout) and ping -n N 127.0.0.1 (N-1 scaled seconds).
	Host Host
	// Hostname is the machine name ("" = "WIN2003"): NTLM target info, `hostname`, fault Machine fallback.
	Hostname string
	// User and Password are the one local account ("" user = "Administrator"). Names compare case-insensitively.
	User, Password string
	// Domain is the NetBIOS domain NTLM announces ("" = Hostname, a workgroup machine).
	Domain string
	// Auth lists the offered schemes: "negotiate" (NTLM under Negotiate and NTLM), "basic" and
	// "certificate" (HTTPS client certificate, any certificate maps to User). nil = negotiate only,
	// like a default WinRM 2.0 (docs/winrm-protocol.md §7.2).
	Auth []string
	// AllowUnencrypted false = as Windows' default: on plain HTTP, Basic and unsealed NTLM requests get 401.
	AllowUnencrypted bool
	// EmptyPostOK true answers an anonymous empty POST on an NTLM-authenticated connection with 200.
	// false (default) answers 401, which masterzen's Encryption transport needs to re-handshake
	// (docs/winrm-protocol.md §1.7; Windows' behaviour here is an inference).
	EmptyPostOK bool

	// MaxEnvelopeSizeKB bounds request bodies (0 = 150, WinRM 2.0); larger bodies get 413 (§3).
	MaxEnvelopeSizeKB int
	// MaxShellsPerUser (0 = 5, WinRM 2.0) and MaxConcurrentOperationsPerUser (0 = 15, in-flight requests).
	MaxShellsPerUser               int
	MaxConcurrentOperationsPerUser int
	// MaxProcessesPerShell (0 = 15) and MaxMemoryPerShellMB (0 = 150) bound what a shell's
	// commands run, counted by the Job each command's context carries (JobOf): WinRM 2.0's
	// defaults (docs/facts.md §6.2, winrm-config-capture).
	MaxProcessesPerShell int
	MaxMemoryPerShellMB  int
	// IdleTimeout is how long a shell lives without a request naming it (0 = 15 minutes: the
	// 900000 ms of the WinRM 2.0-era WindowsRemoteShell.adml, docs/facts.md §6.2 [P]; a 2008-era
	// capture shows 180000, so it stays configurable). The Create reply reports it in
	// rsp:IdleTimeOut. An idle shell is deleted, its processes killed, when the server next
	// handles a request.
	IdleTimeout time.Duration
	// MaxTimeout is MaxTimeoutms (0 = 60 s, MS-WSMV ConfigType and winrm-config-capture,
	// docs/facts.md §6.2): a request whose OperationTimeout is longer is refused with a fault.
	MaxTimeout time.Duration
	// Clock gives the time shells idle by (nil = the real clock): a lab on simulated time
	// passes its own.
	Clock interface{ Now() time.Time }
	// ReceiveTimeout maps the request's OperationTimeout to how long a Receive long-polls before the
	// TimedOut fault. nil = the requested time minus a margin (1 s, or 10% when shorter), so the fault
	// beats the client's own timer (docs/winrm-protocol.md §1.4).
	ReceiveTimeout func(requested time.Duration) time.Duration
	// AccessDenied makes every WS-Man operation of an authenticated user fail with "Access is denied."
	// (a user that is not an administrator).
	AccessDenied bool
	// Second is one second of the built-in host's clock (0 = time.Second); tests shrink it.
	Second time.Duration
	// ServerHeader is the HTTP Server header ("" = "Microsoft-HTTPAPI/2.0", cloudsoft/winrm4j#144; "-" = none).
	ServerHeader string

	// Fault injection. Latency delays every reply. DropEveryN > 0 closes the TCP connection without a
	// reply on every Nth request; DropConnection(n, r) does so when it returns true (n counts requests
	// from 1). TimeoutOnReceive > 0 makes the Nth Receive answer TimedOut at once. Fail500Rate (0..1)
	// and Fail500On (the Nth request) answer a w:InternalError 500 instead of processing the request.
	Latency          time.Duration
	DropEveryN       int
	DropConnection   func(n int64, r *http.Request) bool
	TimeoutOnReceive int
	Fail500Rate      float64
	Fail500On        int

	// Intercept, when set, sees every authenticated request before the server answers it, and
	// answers it itself by returning true (lab/hostile sends broken replies this way after a
	// real handshake). w is the connection's own ResponseWriter (it can hijack it).
	Intercept func(w http.ResponseWriter, r *http.Request, x *Exchange) bool

	// Logf, when set, gets one line per request. Secrets are never logged.
	Logf func(format string, args ...any)

	once     sync.Once
	builtin  *builtinHost
	mu       sync.Mutex
	shells   map[string]*shell
	inflight map[string]int
	conns    map[string]*connState // fallback when ConnContext is not installed, keyed by RemoteAddr
	gen      atomic.Int64          // bumped by Reset; connection states of older generations are void
	c        counters
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Requests                                             int64 // HTTP requests received
	BytesIn, BytesOut                                    int64 // HTTP body bytes read and written
	Unauthorized                                         int64 // 401 replies
	TooLarge                                             int64 // 413 replies
	Faults                                               int64 // SOAP faults (HTTP 500)
	Dropped                                              int64 // connections closed by fault injection
	TimedOut                                             int64 // TimedOut faults
	Creates, Commands, Sends, Receives, Signals, Deletes int64
	Shells                                               int // shells open now
}

type counters struct {
	requests, bytesIn, bytesOut, unauthorized, tooLarge, faults, dropped, timedOut atomic.Int64
	creates, commands, sends, receives, signals, deletes                           atomic.Int64
}

// Stats returns the counters; safe for concurrent use.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	n := len(s.shells)
	s.mu.Unlock()
	c := &s.c
	return Stats{Requests: c.requests.Load(), BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Unauthorized: c.unauthorized.Load(), TooLarge: c.tooLarge.Load(), Faults: c.faults.Load(),
		Dropped: c.dropped.Load(), TimedOut: c.timedOut.Load(), Creates: c.creates.Load(), Commands: c.commands.Load(),
		Sends: c.sends.Load(), Receives: c.receives.Load(), Signals: c.signals.Load(), Deletes: c.deletes.Load(), Shells: n}
}

func (s *Server) init() {
	s.once.Do(func() {
		s.builtin = &builtinHost{hostname: s.hostname(), second: s.Second}
		if s.builtin.second <= 0 {
			s.builtin.second = time.Second
		}
		s.shells = map[string]*shell{}
		s.inflight = map[string]int{}
		s.conns = map[string]*connState{}
	})
}

func (s *Server) hostname() string   { return or(s.Hostname, "WIN2003") }
func (s *Server) user() string       { return or(s.User, "Administrator") }
func (s *Server) domain() string     { return or(s.Domain, s.hostname()) }
func (s *Server) maxEnvelope() int   { return orInt(s.MaxEnvelopeSizeKB, 150) * 1024 }
func (s *Server) maxShells() int     { return orInt(s.MaxShellsPerUser, 5) }
func (s *Server) maxOperations() int { return orInt(s.MaxConcurrentOperationsPerUser, 15) }
func (s *Server) maxProcesses() int  { return orInt(s.MaxProcessesPerShell, 15) }
func (s *Server) maxMemoryMB() int   { return orInt(s.MaxMemoryPerShellMB, 150) }

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 15 * time.Minute
}

func (s *Server) maxTimeout() time.Duration {
	if s.MaxTimeout > 0 {
		return s.MaxTimeout
	}
	return time.Minute
}

func (s *Server) now() time.Time {
	if s.Clock != nil {
		return s.Clock.Now()
	}
	return time.Now()
}
func (s *Server) host() Host {
	if s.Host != nil {
		return s.Host
	}
	return s.builtin
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) receiveWait(requested time.Duration) time.Duration {
	if requested <= 0 {
		requested = 60 * time.Second // MZ default PT60S (docs/winrm-protocol.md §1.1)
	}
	if s.ReceiveTimeout != nil {
		return s.ReceiveTimeout(requested)
	}
	return requested - min(time.Second, requested/10)
}

// Reset drops every shell and kills their processes, and forgets NTLM contexts: the host rebooted.
func (s *Server) Reset() {
	s.init()
	s.gen.Add(1)
	s.mu.Lock()
	shells := s.shells
	s.shells = map[string]*shell{}
	s.conns = map[string]*connState{}
	s.mu.Unlock()
	for _, sh := range shells {
		sh.close()
	}
}

// ServeHTTP implements http.Handler for POST /wsman.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	n := s.c.requests.Add(1)
	// The body is read first: net/http notices a client that hangs up (and cancels r.Context) only
	// once the body has been read to its end, and the latency must end when its client gives up.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.maxEnvelope())+1))
	s.c.bytesIn.Add(int64(len(body)))
	if s.Latency > 0 {
		t := time.NewTimer(s.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if (s.DropEveryN > 0 && n%int64(s.DropEveryN) == 0) || (s.DropConnection != nil && s.DropConnection(n, r)) {
		s.drop(w)
		return
	}
	if s.ServerHeader != "-" {
		w.Header().Set("Server", or(s.ServerHeader, "Microsoft-HTTPAPI/2.0"))
	}
	if r.URL.Path != "/wsman" {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		s.drop(w)
		return
	}
	if len(body) > s.maxEnvelope() {
		// The envelope is over MaxEnvelopeSizekb: HTTP 413, body unknown, sent empty (docs/winrm-protocol.md §3.2).
		s.c.tooLarge.Add(1)
		s.logf("wsman: 413 request body over %d bytes from %s", s.maxEnvelope(), r.RemoteAddr)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	a := s.authenticate(w, r, body)
	if a == nil {
		return // 401 or handshake step already written
	}
	if s.Intercept != nil && s.Intercept(w, r, &Exchange{Op: opName(a.body), s: s, w: w, a: a}) {
		return
	}
	var reply []byte
	status := http.StatusOK
	if (s.Fail500On > 0 && n == int64(s.Fail500On)) || (s.Fail500Rate > 0 && rand.Float64() < s.Fail500Rate) {
		status, reply = s.faultReply(r, "", faultInternal())
	} else {
		status, reply = s.dispatch(r, a.user, a.body)
	}
	if status == 0 {
		return // client went away
	}
	s.writeReply(w, status, reply, a)
}

// drop closes the TCP connection without an answer (masterzen sees EOF → exit code 16001, §1.4).
func (s *Server) drop(w http.ResponseWriter) {
	s.c.dropped.Add(1)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// No hijacking (HTTP/2): net/http's documented way to abort a handler and close the stream.
	panic(http.ErrAbortHandler)
}

// writeReply sends a SOAP reply: Content-Type application/soap+xml;charset=UTF-8 on every reply,
// faults included (docs/winrm-protocol.md §2.2); sealed when the request came sealed (§1.7).
func (s *Server) writeReply(w http.ResponseWriter, status int, reply []byte, a *authResult) {
	if a.session != nil {
		reply = wrapMessage(a.session, reply)
		w.Header().Set("Content-Type", encCtype)
	} else {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	}
	if status == http.StatusInternalServerError {
		s.c.faults.Add(1)
	}
	w.WriteHeader(status)
	n, _ := w.Write(reply)
	s.c.bytesOut.Add(int64(n))
}

// ConnContext is an http.Server ConnContext hook that gives each TCP connection its own
// authentication state (NTLM is connection-bound, docs/winrm-protocol.md §5 item 7).
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

// ConnState is an http.Server ConnState hook that forgets the state of closed connections
// when ConnContext is not installed (the fallback keys states by RemoteAddr).
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		s.init()
		s.mu.Lock()
		delete(s.conns, c.RemoteAddr().String())
		s.mu.Unlock()
	}
}

// Configure installs ConnContext and ConnState on hs, keeping hooks already there
// (use it on httptest.NewUnstartedServer(srv).Config before Start).
func (s *Server) Configure(hs *http.Server) {
	prevCtx, prevState := hs.ConnContext, hs.ConnState
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		return s.ConnContext(ctx, c)
	}
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if prevState != nil {
			prevState(c, st)
		}
		s.ConnState(c, st)
	}
}

type connKey struct{}

// conn returns the authentication state of r's TCP connection.
func (s *Server) conn(r *http.Request) *connState {
	cs, ok := r.Context().Value(connKey{}).(*connState)
	if !ok {
		s.mu.Lock()
		cs = s.conns[r.RemoteAddr]
		if cs == nil {
			cs = &connState{}
			s.conns[r.RemoteAddr] = cs
		}
		s.mu.Unlock()
	}
	cs.mu.Lock()
	if g := s.gen.Load(); cs.gen != g {
		cs.reset()
		cs.gen = g
	}
	cs.mu.Unlock()
	return cs
}

// machine is the fault's Machine attribute: the host name the client addressed
// (samples: Machine="127.0.0.1" in masterzen_receive_fault_timedout_500.xml).
func machine(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.Trim(h, "[]")
}

func (s *Server) faultReply(r *http.Request, relatesTo string, f *fault) (int, []byte) {
	if f.subcode == "w:TimedOut" {
		s.c.timedOut.Add(1)
	}
	return f.status, f.render(relatesTo, machine(r))
}

// Exchange is an authenticated request handed to Server.Intercept.
type Exchange struct {
	// Op is the last segment of the request's a:Action: Create, Command, Send, Receive, Signal
	// or Delete ("" when the envelope does not parse).
	Op string
	s  *Server
	w  http.ResponseWriter
	a  *authResult
}

// ContentType is the Content-Type of a reply on this connection: multipart/encrypted when the
// request came NTLM-encrypted.
func (x *Exchange) ContentType() string {
	if x.a.session != nil {
		return encCtype
	}
	return "application/soap+xml;charset=UTF-8"
}

// Reply sends soap with status as the server sends its own replies (sealed when the request was).
func (x *Exchange) Reply(status int, soap []byte) { x.s.writeReply(x.w, status, soap, x.a) }

func opName(body []byte) string {
	req, err := parseRequest(body)
	if err != nil {
		return ""
	}
	return req.action[strings.LastIndex(req.action, "/")+1:]
}
