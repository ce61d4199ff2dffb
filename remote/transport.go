package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// maxReplyBytes caps one HTTP reply body read from a host. A Windows reply honours the
// request's w:MaxEnvelopeSize (150 KB by default); this bound only stops a hostile host.
const maxReplyBytes = 16 << 20

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
	return &Transporter{tr: tr, secret: t.Password}, nil
}

// Post sends message and returns the reply of a 200 answer. It has no context (the
// winrm.Transporter signature); Session methods use a cancellable path.
func (x *Transporter) Post(_ *winrm.Client, message *soap.SoapMessage) (string, error) {
	b, err := x.tr.roundTrip(context.Background(), "post", []byte(message.String()))
	return string(b), redact(err, x.secret)
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
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: t.responseTimeout(),
		DisableCompression:    true,
	}
	// Timeout also bounds reading the body: a host that sends headers and then stalls would
	// otherwise hold the caller until its context ends (the NTLM transport's deadline covers
	// the whole exchange the same way).
	return &basicTransport{target: t, d: d, tr: tr, client: &http.Client{Transport: tr, Timeout: t.responseTimeout()},
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
		// net/http wraps the cause in *url.Error, whose text has the URL but no credentials.
		return nil, classifyTransport(ctx, op, b.target.Host, err, true)
	}
	defer resp.Body.Close()
	reply, err := readLimited(resp.Body)
	if err != nil {
		return nil, classifyTransport(ctx, op, b.target.Host, err, true)
	}
	if resp.StatusCode != http.StatusOK {
		// Something else than WinRM may echo the request; the error quotes the body, and the
		// encoded credentials would escape the password redaction.
		reply = bytes.ReplaceAll(reply, []byte(b.token), []byte("[redacted]"))
		return nil, replyError(op, b.target.Host, resp.StatusCode, reply)
	}
	return reply, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxReplyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxReplyBytes {
		return nil, &Error{Class: ClassProtocol, Err: fmt.Errorf("reply larger than %d bytes", maxReplyBytes)}
	}
	return b, nil
}

var errHTTP503 = errors.New("http 503: service unavailable")

// replyError classifies a non-200 HTTP answer whose (decrypted) body is body.
func replyError(op, host string, status int, body []byte) *Error {
	e := &Error{Op: op, Host: host, reached: true}
	switch status {
	case http.StatusUnauthorized:
		e.Class, e.Err = ClassAuth, errors.New("http 401: credentials rejected or auth scheme not enabled on the host")
		return e
	case http.StatusRequestEntityTooLarge:
		e.Class, e.Code, e.Err = ClassFault, CodeEnvelopeTooLarge, ErrEnvelopeTooLarge
		return e
	case http.StatusServiceUnavailable:
		e.Class, e.Err, e.transient = ClassUnreachable, errHTTP503, true
		return e
	}
	if sc := scanEnvelope(body); sc.fault != nil {
		e.Class, e.Code, e.Err = faultClass(sc.fault), sc.fault.Code, sc.fault
		return e
	}
	e.Class = ClassProtocol
	e.Err = fmt.Errorf("http %d %s%s", status, http.StatusText(status), snippet(body))
	return e
}

func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return ": " + strconv.QuoteToASCII(s)
}

// envelopeScan is what one pass over a reply envelope finds.
type envelopeScan struct {
	ok           bool // well-formed XML with at least one element
	fault        *Fault
	streams      int
	commandState bool
}

// scanEnvelope reads a SOAP reply with encoding/xml (never panics) and extracts the fault,
// if any, by local names: s:Fault, f:WSManFault/@Code, p:error_Code, s:Subcode/s:Value, s:Reason/s:Text.
func scanEnvelope(body []byte) envelopeScan {
	var sc envelopeScan
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var stack []string
	var f Fault
	inFault := false
	elems := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			sc.ok = false
			return sc
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elems++
			name := t.Name.Local
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			stack = append(stack, name)
			switch name {
			case "Fault":
				if parent == "Body" {
					inFault = true
				}
			case "WSManFault":
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "Code":
						if v, err := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 32); err == nil {
							f.Code = uint32(v)
						}
					case "Machine":
						f.Machine = a.Value
					}
				}
			case "Stream":
				sc.streams++
			case "CommandState":
				sc.commandState = true
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			name := stack[len(stack)-1]
			parent := ""
			if len(stack) > 1 {
				parent = stack[len(stack)-2]
			}
			text := strings.TrimSpace(string(t))
			switch {
			case !inFault:
			case name == "Value" && parent == "Subcode" && f.Subcode == "":
				f.Subcode = text
			case name == "Text" && parent == "Reason" && f.Reason == "":
				f.Reason = text
			case name == "error_Code" && f.Code == 0:
				if v, err := strconv.ParseUint(text, 10, 32); err == nil {
					f.Code = uint32(v)
				}
			}
		}
	}
	sc.ok = elems > 0
	if inFault {
		sc.fault = &f
	}
	return sc
}
