package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// Bounds of an HTTP reply head from a host. HTTP.sys answers with a status line of a few dozen
// bytes and about ten header lines, the longest a WWW-Authenticate carrying an NTLM challenge
// (under 1 KB); these leave ample room for that and stop a host whose head never ends. The NTLM
// transport checks all four; over Basic, net/http enforces maxHeaderBytes and the count is
// checked on the parsed header.
const (
	maxStatusLine  = 1 << 10  // the status line
	maxHeaderLine  = 16 << 10 // one header line: HTTP.sys's own MaxFieldLength default
	maxHeaders     = 100      // header lines
	maxHeaderBytes = 64 << 10 // status line and header lines together
)

// minReplyLimit is the smallest cap on a reply body; see replyLimit.
const minReplyLimit = 1 << 20

// replyLimit caps one reply body from t. Windows keeps its replies within the w:MaxEnvelopeSize
// the client sends (150 KB by default), so four times that, and at least 1 MiB, is generous
// for a real host (NTLM framing included) and stops a hostile one early.
func replyLimit(t Target) int { return max(4*t.envelopeBytes(), minReplyLimit) }

const soapContentType = "application/soap+xml;charset=UTF-8"

const userAgent = "iisremedy WinRM client"

// Stats counts what a transport put on the wire.
type Stats struct {
	HTTPRequests int64 // HTTP requests sent, authentication round trips included
	Handshakes   int64 // NTLM handshakes (one per TCP connection)
	Connections  int64 // TCP connections dialed
	Operations   int64 // WS-Management messages sent (Create, Command, Send, Receive, ...)
	BytesOut     int64 // bytes written to the TCP connections (TLS records included)
	BytesIn      int64 // bytes read from the TCP connections
}

type counters struct {
	requests, handshakes, conns, ops, out, in atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		HTTPRequests: c.requests.Load(), Handshakes: c.handshakes.Load(), Connections: c.conns.Load(),
		Operations: c.ops.Load(), BytesOut: c.out.Load(), BytesIn: c.in.Load(),
	}
}

// transport posts one SOAP envelope and returns the reply envelope of a 200 answer; any
// other answer is an *Error.
type transport interface {
	roundTrip(ctx context.Context, op string, body []byte) ([]byte, error)
	stats() Stats
	close()
}

func newTransport(t Target) (transport, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var tc *tls.Config
	if t.HTTPS {
		var err error
		if tc, err = t.tlsConfig(); err != nil {
			return nil, &Error{Class: ClassConfig, Op: "dial", Host: t.Host, Err: err}
		}
	}
	d := &dialer{target: t, tls: tc}
	if t.auth() == AuthBasic {
		return newBasicTransport(t, d), nil
	}
	return newNTLMTransport(t, d), nil
}

// Transporter adapts a transport to masterzen's winrm.Transporter, so that a winrm.Client
// built with Parameters.TransportDecorator posts through it.
type Transporter struct {
	tr     transport
	host   string
	secret string // redacted from errors, as Session does
}

var _ winrm.Transporter = (*Transporter)(nil)

// NewTransporter returns t's transport (Basic, or NTLM with message encryption) as a
// winrm.Transporter, for use as
// params.TransportDecorator = func() winrm.Transporter { return tr }.
// The Target is validated; no traffic happens until the first Post.
func NewTransporter(t Target) (*Transporter, error) {
	tr, err := newTransport(t)
	if err != nil {
		return nil, err
	}
	return &Transporter{tr: tr, host: t.Host, secret: t.Password}, nil
}

// Post sends message and returns the reply of a 200 answer. It has no context (the
// winrm.Transporter signature); Session methods use a cancellable path. A reply over the
// XML bounds is refused: masterzen's tree parser takes time quadratic in its depth.
func (x *Transporter) Post(_ *winrm.Client, message *soap.SoapMessage) (string, error) {
	b, err := x.tr.roundTrip(context.Background(), "post", []byte(message.String()))
	if err != nil {
		return "", redact(err, x.secret)
	}
	if _, err := readEnvelope(b, nil, nil); errors.Is(err, ErrReplyLimit) {
		return "", &Error{Class: ClassProtocol, Op: "post", Host: x.host, reached: true, Err: err}
	}
	return string(b), nil
}

// Transport is a no-op: the Target, not the winrm.Endpoint, configures the connection.
func (x *Transporter) Transport(*winrm.Endpoint) error { return nil }

// Stats returns the traffic counters.
func (x *Transporter) Stats() Stats { return x.tr.stats() }

// Close drops the idle connections.
func (x *Transporter) Close() { x.tr.close() }

// dialer opens TCP (and TLS) connections for a Target and counts their bytes.
type dialer struct {
	target Target
	tls    *tls.Config
	st     counters
}

func (d *dialer) dial(ctx context.Context) (net.Conn, error) {
	_, c, err := d.dialRaw(ctx)
	return c, err
}

// dialRaw returns the TCP connection and the connection to use (TLS over it on HTTPS).
func (d *dialer) dialRaw(ctx context.Context) (raw, conn net.Conn, err error) {
	nd := &net.Dialer{Timeout: d.target.dialTimeout(), KeepAlive: 30 * time.Second}
	raw, err = nd.DialContext(ctx, "tcp", d.target.addr())
	if err != nil {
		return nil, nil, err
	}
	d.st.conns.Add(1)
	var c net.Conn = &countingConn{Conn: raw, st: &d.st}
	if d.tls == nil {
		return raw, c, nil
	}
	tc := tls.Client(c, d.tls)
	hctx, cancel := context.WithTimeout(ctx, d.target.dialTimeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, &tlsError{err: err}
	}
	return raw, tc, nil
}

type countingConn struct {
	net.Conn
	st *counters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.st.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.st.out.Add(int64(n))
	return n, err
}

// basicTransport is HTTP Basic over net/http with keep-alive.
type basicTransport struct {
	target Target
	d      *dialer
	client *http.Client
	tr     *http.Transport
	limit  int    // reply body cap
	token  string // base64 "user:password" of the Authorization header
}

func newBasicTransport(t Target, d *dialer) *basicTransport {
	tr := &http.Transport{
		Proxy: nil, // WinRM hosts are reached directly
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.dial(ctx)
		},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.dial(ctx)
		},
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  t.responseTimeout(),
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableCompression:     true,
	}
	client := &http.Client{
		Transport: tr,
		// Timeout also bounds reading the body: a host that sends headers and then stalls or
		// trickles would otherwise hold the caller until its context ends (the NTLM transport's
		// deadline covers the whole exchange the same way).
		Timeout: t.responseTimeout(),
		// WinRM never redirects: the 3xx itself is returned and refused (replyError), so the
		// request, with its credentials, never goes where a host points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &basicTransport{target: t, d: d, tr: tr, client: client, limit: replyLimit(t),
		token: base64.StdEncoding.EncodeToString([]byte(t.User + ":" + t.Password))}
}

func (b *basicTransport) stats() Stats { return b.d.st.snapshot() }
func (b *basicTransport) close()       { b.tr.CloseIdleConnections() }

func (b *basicTransport) roundTrip(ctx context.Context, op string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.target.URL(), bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Class: ClassConfig, Op: op, Host: b.target.Host, Err: err}
	}
	req.Header.Set("Content-Type", soapContentType)
	req.Header.Set("User-Agent", userAgent)
	req.SetBasicAuth(b.target.User, b.target.Password)
	b.d.st.requests.Add(1)
	b.d.st.ops.Add(1)
	resp, err := b.client.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "response headers exceeded") {
			// net/http's only report of MaxResponseHeaderBytes; its connection is dropped.
			return nil, &Error{Class: ClassProtocol, Op: op, Host: b.target.Host, reached: true,
				Err: fmt.Errorf("%w: reply head longer than %d bytes", ErrReplyLimit, maxHeaderBytes)}
		}
		// net/http wraps the cause in *url.Error, whose text has the URL but no credentials.
		return nil, classifyTransport(ctx, op, b.target.Host, err, true)
	}
	// On error the body is closed unread: net/http then drops the connection, never drains it.
	defer resp.Body.Close()
	if n := headerLines(resp.Header); n > maxHeaders {
		return nil, &Error{Class: ClassProtocol, Op: op, Host: b.target.Host, reached: true,
			Err: fmt.Errorf("%w: reply has more than %d header lines (%d)", ErrReplyLimit, maxHeaders, n)}
	}
	reply, err := readBody(resp, b.limit)
	if err != nil {
		return nil, bodyError(ctx, op, b.target.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		// Something else than WinRM may echo the request; the error quotes the body, and the
		// encoded credentials would escape the password redaction.
		reply = bytes.ReplaceAll(reply, []byte(b.token), []byte("[redacted]"))
		return nil, replyError(op, b.target.Host, resp.StatusCode, resp.Header, reply)
	}
	return reply, nil
}

func headerLines(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

// readBody reads a reply body of at most limit bytes. It stops at the limit and never reads on
// to the end of a longer or endless body: the caller drops the connection instead.
func readBody(resp *http.Response, limit int) ([]byte, error) {
	if resp.ContentLength > int64(limit) {
		return nil, fmt.Errorf("%w: reply body of %d bytes, more than %d", ErrReplyLimit, resp.ContentLength, limit)
	}
	var b bytes.Buffer
	if resp.ContentLength > 0 {
		b.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	if _, err := b.ReadFrom(io.LimitReader(resp.Body, int64(limit)+1)); err != nil {
		return nil, err
	}
	if b.Len() > limit {
		return nil, fmt.Errorf("%w: reply body longer than %d bytes", ErrReplyLimit, limit)
	}
	return b.Bytes(), nil
}

// bodyError classifies a failure to read a reply body: over the cap it is a protocol error
// (never temporary), otherwise a transport failure.
func bodyError(ctx context.Context, op, host string, err error) *Error {
	if errors.Is(err, ErrReplyLimit) {
		return &Error{Class: ClassProtocol, Op: op, Host: host, reached: true, Err: err}
	}
	return classifyTransport(ctx, op, host, err, true)
}

var errHTTP503 = errors.New("http 503: service unavailable")

// replyError classifies a non-200 HTTP answer with header h and (decrypted) body.
func replyError(op, host string, status int, h http.Header, body []byte) *Error {
	e := &Error{Op: op, Host: host, reached: true}
	switch {
	case status == http.StatusUnauthorized:
		e.Class, e.Err = ClassAuth, errors.New("http 401: credentials rejected or auth scheme not enabled on the host")
		return e
	case status == http.StatusRequestEntityTooLarge:
		e.Class, e.Code, e.Err = ClassFault, CodeEnvelopeTooLarge, ErrEnvelopeTooLarge
		return e
	case status == http.StatusServiceUnavailable:
		e.Class, e.Err, e.transient = ClassUnreachable, errHTTP503, true
		return e
	case status >= 300 && status < 400:
		e.Class = ClassProtocol
		where := "without a Location"
		if loc := h.Get("Location"); loc != "" {
			where = "to " + quote(loc)
		}
		e.Err = fmt.Errorf("http %d %s: redirect %s refused, WinRM never redirects", status, http.StatusText(status), where)
		return e
	}
	if env, err := readEnvelope(body, nil, nil); err == nil && env.fault != nil {
		e.Class, e.Code, e.Err = faultClass(env.fault), env.fault.Code, env.fault
		return e
	}
	e.Class = ClassProtocol
	e.Err = fmt.Errorf("http %d %s%s", status, http.StatusText(status), snippet(body))
	return e
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b[:min(len(b), maxQuoted+utf8.UTFMax)]))
	if s == "" {
		return ""
	}
	return ": " + quoteLen(s, len(bytes.TrimSpace(b)))
}
