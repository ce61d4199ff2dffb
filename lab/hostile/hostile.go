// Package hostile serves misbehaving WinRM endpoints for tests of the client and the engine.
//
// A Server answers like one broken or hostile host, chosen by a behaviour name, over real HTTP
// on a loopback address. Behaviours that a host could only show to an authenticated client come
// after a real authentication: NTLM with message encryption (the replies they alter are sealed,
// as a real host's would be) or Basic, both served by lab/wsman. Everything else, a command's
// shell included, is served by lab/wsman as a well-behaved host would.
//
//	srv := hostile.Start(t, hostile.EndlessBody, "negotiate")
//	t := remote.Target{Host: srv.Host(), Port: srv.Port(), User: hostile.User, Password: hostile.Password}
//
// A behaviour either breaks the Create of remote.Dial or, for the Receive behaviours, the first
// command's Receive.
package hostile

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// The one account of every Server.
const (
	User     = "Administrator"
	Password = "H0stile-Pa55w0rd!"
)

// Behaviours. The header ones are written on a hijacked connection; the others are replies
// of the right content type (sealed after NTLM).
const (
	// EndlessStatusLine answers the Create with a status line that never ends.
	EndlessStatusLine = "endless-status-line"
	// EndlessHeaderLine answers the first request (the NTLM NEGOTIATE, or a Basic request) with a
	// 401 whose WWW-Authenticate line never ends.
	EndlessHeaderLine = "endless-header-line"
	// EndlessHeaders answers the Create with header lines without end.
	EndlessHeaders = "endless-headers"
	// EndlessBody answers the Create with a 200 whose body never ends.
	EndlessBody = "endless-body"
	// TrickleBody answers the Create with a 200 whose body comes one byte every 10 ms, forever.
	TrickleBody = "trickle-body"
	// HugeShellID answers the Create with a ShellId of 100 KB.
	HugeShellID = "huge-shell-id"
	// DeepCreate answers the Create with a reply nested 20,000 elements deep (140 KB).
	DeepCreate = "deep-create"
	// DeepReceive answers every Receive with a reply nested 20,000 elements deep.
	DeepReceive = "deep-receive"
	// ManyElements answers every Receive with 200,000 empty elements (800 KB).
	ManyElements = "many-elements"
	// TimedOutForever answers every Receive at once with the w:TimedOut fault.
	TimedOutForever = "timedout-forever"
	// RunningForever answers every Receive at once: no output, command still Running.
	RunningForever = "running-forever"
	// EndlessOutput answers every Receive with 100 KB of stdout, the command never Done.
	EndlessOutput = "endless-output"
	// Redirect answers the Create with a 307 to another path of the same server.
	Redirect = "redirect"
	// HugeChallenge answers the first request with a 401 carrying a 16 MB NTLM CHALLENGE token.
	HugeChallenge = "huge-challenge"
)

// Behaviours lists every behaviour name.
func Behaviours() []string {
	return []string{EndlessStatusLine, EndlessHeaderLine, EndlessHeaders, EndlessBody, TrickleBody,
		HugeShellID, DeepCreate, DeepReceive, ManyElements, TimedOutForever, RunningForever,
		EndlessOutput, Redirect, HugeChallenge}
}

// Stats counts what a Server saw.
type Stats struct {
	Requests   int64 // HTTP requests, authentication round trips included
	Creates    int64 // Create operations
	Receives   int64 // Receive operations
	Redirected int64 // requests to the path a Redirect points to
}

// Server is one hostile endpoint.
type Server struct {
	behaviour string
	ws        *wsman.Server
	hs        *http.Server
	ln        net.Listener
	done      chan struct{} // closed by Close: endless writers stop

	handlers sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool // open connections
	noConns  chan struct{}     // closed while conns is empty
	closed   bool

	requests, creates, receives, redirected atomic.Int64
}

// Start serves behaviour on a free port of 127.0.0.1 until the test ends. auth is "negotiate"
// (NTLM with message encryption, the default of a Windows host) or "basic" (over plain HTTP).
func Start(t testing.TB, behaviour, auth string) *Server {
	return StartAt(t, "127.0.0.1:0", behaviour, auth)
}

// StartAt is Start on addr, a loopback address chosen by the test (port 0: a free one).
func StartAt(t testing.TB, addr, behaviour, auth string) *Server {
	t.Helper()
	if !slices.Contains(Behaviours(), behaviour) {
		t.Fatalf("hostile: unknown behaviour %q", behaviour)
	}
	ws := &wsman.Server{Password: Password, User: User}
	switch auth {
	case "negotiate", "ntlm", "":
	case "basic":
		ws.Auth, ws.AllowUnencrypted = []string{"basic"}, true
	default:
		t.Fatalf("hostile: unknown auth %q", auth)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	s := &Server{behaviour: behaviour, ws: ws, done: make(chan struct{}), conns: map[net.Conn]bool{},
		noConns: make(chan struct{})}
	close(s.noConns)
	s.ln = &trackingListener{Listener: ln, s: s}
	ws.Intercept = s.intercept
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: time.Minute}
	ws.Configure(s.hs)
	go func() { _ = s.hs.Serve(s.ln) }()
	t.Cleanup(s.Close)
	return s
}

// Host is the server's IP address.
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Creates: s.creates.Load(), Receives: s.receives.Load(),
		Redirected: s.redirected.Load()}
}

// WaitClosed waits until every connection a client opened is closed, which the server sees
// when its reads or writes fail: it shows that the client dropped a connection it stopped
// reading instead of draining it. It fails the test after a minute.
func (s *Server) WaitClosed(t testing.TB) {
	t.Helper()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	s.mu.Lock()
	ch, open := s.noConns, len(s.conns)
	s.mu.Unlock()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("hostile %s: %d client connections still open after a minute", s.behaviour, open)
	}
}

// Close stops the server and waits for its handlers.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	_ = s.hs.Close()
	for _, c := range conns {
		_ = c.Close() // hijacked ones; http.Server closed the others
	}
	s.handlers.Wait()
	s.ws.Reset()
}

// trackingListener records the open connections.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	if len(l.s.conns) == 0 {
		l.s.noConns = make(chan struct{})
	}
	l.s.conns[tc] = true
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		if len(c.s.conns) == 0 {
			close(c.s.noConns)
		}
		c.s.mu.Unlock()
	})
	return err
}

// serve answers the behaviours that come before any authentication, and lets lab/wsman
// answer the rest (it calls intercept once a request is authenticated).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.handlers.Add(1) // under mu, so that Close's Wait cannot start between a check and the Add
	s.mu.Unlock()
	defer s.handlers.Done()
	s.requests.Add(1)
	if r.URL.Path == redirectPath {
		s.redirected.Add(1)
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "" {
		switch s.behaviour {
		case EndlessHeaderLine:
			s.raw(w, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate ", endless('A'))
			return
		case HugeChallenge:
			// A well-formed base64 token of 16 MB, then the end of the head: finite, but no
			// NTLM CHALLENGE is that long.
			s.raw(w, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate ", repeat('A', 16<<20, "\r\nContent-Length: 0\r\n\r\n"))
			return
		}
	}
	s.ws.ServeHTTP(w, r)
}

// redirectPath is where Redirect points.
const redirectPath = "/redirected"

// intercept answers an authenticated request with the behaviour when it is its turn.
func (s *Server) intercept(w http.ResponseWriter, r *http.Request, x *wsman.Exchange) bool {
	switch x.Op {
	case "Create":
		s.creates.Add(1)
		return s.create(w, r, x)
	case "Receive":
		s.receives.Add(1)
		return s.receive(x)
	}
	return false
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, x *wsman.Exchange) bool {
	switch s.behaviour {
	case EndlessStatusLine:
		s.raw(w, "HTTP/1.1 200 ", endless('A'))
	case EndlessHeaders:
		s.raw(w, "HTTP/1.1 200 OK\r\nContent-Type: "+x.ContentType()+"\r\n", endlessHeaders)
	case EndlessBody:
		w.Header().Set("Content-Type", x.ContentType())
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("<s:Envelope>", 4096))
		for s.alive(r.Context()) {
			if _, err := w.Write(chunk); err != nil {
				return true
			}
		}
	case TrickleBody:
		w.Header().Set("Content-Type", x.ContentType())
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for s.alive(r.Context()) {
			if _, err := w.Write([]byte{'<'}); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
			case <-s.done:
			}
		}
	case Redirect:
		w.Header().Set("Location", "http://"+r.Host+redirectPath)
		w.WriteHeader(http.StatusTemporaryRedirect)
	case HugeShellID:
		x.Reply(http.StatusOK, envelope(actionCreateResponse, createdBody(strings.Repeat("A", 100<<10))))
	case DeepCreate:
		x.Reply(http.StatusOK, envelope(actionCreateResponse, nested(20000)))
	default:
		return false
	}
	return true
}

func (s *Server) receive(x *wsman.Exchange) bool {
	switch s.behaviour {
	case DeepReceive:
		x.Reply(http.StatusOK, envelope(actionReceiveResponse, nested(20000)))
	case ManyElements:
		x.Reply(http.StatusOK, envelope(actionReceiveResponse, "<rsp:ReceiveResponse>"+strings.Repeat("<a/>", 200_000)+"</rsp:ReceiveResponse>"))
	case TimedOutForever:
		x.Reply(http.StatusInternalServerError, timedOutFault)
	case RunningForever:
		x.Reply(http.StatusOK, envelope(actionReceiveResponse, receiveBody("")))
	case EndlessOutput:
		out := strings.Repeat("endless output line of a command that never ends\r\n", 2048) // 100 KB
		x.Reply(http.StatusOK, envelope(actionReceiveResponse, receiveBody(out)))
	default:
		return false
	}
	return true
}

// alive reports whether an endless writer should go on.
func (s *Server) alive(ctx context.Context) bool {
	select {
	case <-s.done:
		return false
	case <-ctx.Done():
		return false
	default:
		return true
	}
}

// writeFunc writes a payload to w until it is done or a write fails.
type writeFunc func(s *Server, w *bufio.Writer) error

// raw hijacks the connection and writes head, then the payload, bypassing net/http's checks.
func (s *Server) raw(w http.ResponseWriter, head string, payload writeFunc) {
	conn, bw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := bw.WriteString(head); err != nil {
		return
	}
	if payload(s, bw.Writer) == nil {
		_ = bw.Flush()
	}
}

// endless writes b forever.
func endless(b byte) writeFunc {
	chunk := strings.Repeat(string(b), 32<<10)
	return func(s *Server, w *bufio.Writer) error {
		for s.alive(context.Background()) {
			if _, err := w.WriteString(chunk); err != nil {
				return err
			}
		}
		return nil
	}
}

// repeat writes n bytes b, then tail.
func repeat(b byte, n int, tail string) writeFunc {
	chunk := strings.Repeat(string(b), 32<<10)
	return func(s *Server, w *bufio.Writer) error {
		for ; n > 0 && s.alive(context.Background()); n -= len(chunk) {
			if _, err := w.WriteString(chunk[:min(n, len(chunk))]); err != nil {
				return err
			}
		}
		_, err := w.WriteString(tail)
		return err
	}
}

// endlessHeaders writes distinct header lines forever.
func endlessHeaders(s *Server, w *bufio.Writer) error {
	for i := 0; s.alive(context.Background()); i++ {
		if _, err := w.WriteString("X-Hostile-" + strconv.Itoa(i) + ": more\r\n"); err != nil {
			return err
		}
	}
	return nil
}

// The replies, in the shape of Windows' (lab/wsman/testdata/soap).
const (
	nsShell               = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	actionCreateResponse  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse"
	actionReceiveResponse = nsShell + "/ReceiveResponse"
	envelopeOpen          = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" ` +
		`xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" ` +
		`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="` + nsShell + `">`
	commandID = "1A6DEE6B-EC68-4DD6-87E9-030C0048ECC4"
)

func envelope(action, body string) []byte {
	return []byte(envelopeOpen + "<s:Header><a:Action>" + action + "</a:Action>" +
		"<a:MessageID>uuid:D9E108AA-E32B-45E3-8601-E9C70999D3BA</a:MessageID></s:Header><s:Body>" + body + "</s:Body></s:Envelope>")
}

func createdBody(shellID string) string {
	return `<x:ResourceCreated><a:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">` + shellID +
		`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`
}

func nested(depth int) string {
	return strings.Repeat("<w:N>", depth) + strings.Repeat("</w:N>", depth)
}

// receiveBody is a ReceiveResponse with stdout (none when "") and the Running state.
func receiveBody(stdout string) string {
	var b strings.Builder
	b.WriteString("<rsp:ReceiveResponse>")
	if stdout != "" {
		b.WriteString(`<rsp:Stream Name="stdout" CommandId="` + commandID + `">`)
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(stdout)))
		b.WriteString("</rsp:Stream>")
	}
	b.WriteString(`<rsp:CommandState CommandId="` + commandID + `" State="` + nsShell + `/CommandState/Running"></rsp:CommandState>`)
	b.WriteString("</rsp:ReceiveResponse>")
	return b.String()
}

// timedOutFault is lab/wsman/testdata/soap/masterzen_receive_fault_timedout_500.xml's fault.
var timedOutFault = []byte(`<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" ` +
	`xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">` +
	`<s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault>` +
	`<s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code>` +
	`<s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason>` +
	`<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="127.0.0.1">` +
	`<f:Message>The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </f:Message>` +
	`</f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`)
