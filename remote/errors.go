package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Class says what kind of failure an *Error is.
type Class int

// Error classes. The zero value, ClassUnknown, is never produced on purpose.
const (
	ClassUnknown     Class = iota
	ClassUnreachable       // dial refused, host down, connection reset before any reply
	ClassAuth              // HTTP 401: wrong credentials, scheme disabled, encryption refused
	ClassTLS               // handshake, certificate verification or fingerprint pin failure
	ClassTimeout           // ctx deadline; a reply not complete within the per-request deadline (a body that trickles); a w:TimedOut fault outside Receive
	ClassFault             // a WS-Management fault (Code holds its code) or an HTTP 413
	ClassQuota             // WS-Management quota fault (2150859173 shells, 2150859174 operations)
	ClassConfig            // the Target is unusable; nothing was sent
	ClassProtocol          // not valid WS-Management: garbage, a redirect, a reply over a bound (ErrReplyLimit), output over the cap (ErrOutputLimit)
	ClassCanceled          // the caller's context was canceled
)

var classNames = [...]string{"unknown", "unreachable", "auth", "tls", "timeout", "fault", "quota", "config", "protocol", "canceled"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return fmt.Sprintf("class(%d)", int(c))
	}
	return classNames[c]
}

// Sentinels for errors.Is. An *Error matches the sentinel of its class; any error
// that carries a WS-Management fault code (quota and TimedOut included) also matches ErrFault.
var (
	ErrUnreachable = errors.New("host unreachable")
	ErrAuth        = errors.New("authentication failed")
	ErrTLS         = errors.New("tls failure")
	ErrTimeout     = errors.New("timed out")
	ErrFault       = errors.New("ws-management fault")
	ErrQuota       = errors.New("ws-management quota exceeded")
	ErrConfig      = errors.New("invalid target")
	ErrProtocol    = errors.New("protocol error")
	ErrCanceled    = errors.New("canceled")

	// ErrEnvelopeTooLarge is wrapped by the error of an HTTP 413 reply (request larger than
	// the host's MaxEnvelopeSizekb).
	ErrEnvelopeTooLarge = errors.New("request exceeds the host's MaxEnvelopeSizekb (http 413)")

	// ErrReplyLimit is wrapped by the protocol error of a reply that broke one of this client's
	// bounds (header size or count, body size, XML depth or element count). Asking again would
	// only get the same reply, so such an error is never temporary.
	ErrReplyLimit = errors.New("reply exceeds a limit of this client")
)

var classSentinel = map[Class]error{
	ClassUnreachable: ErrUnreachable,
	ClassAuth:        ErrAuth,
	ClassTLS:         ErrTLS,
	ClassTimeout:     ErrTimeout,
	ClassFault:       ErrFault,
	ClassQuota:       ErrQuota,
	ClassConfig:      ErrConfig,
	ClassProtocol:    ErrProtocol,
	ClassCanceled:    ErrCanceled,
}

// WS-Management fault codes this package reacts to (docs/winrm-protocol.md §3.2).
const (
	CodeTimedOut          uint32 = 2150858793 // 0x80338029 w:TimedOut: Receive found no output in OperationTimeout
	CodeShellNotFound     uint32 = 2150858843 // 0x8033805B w:InvalidSelectors: unknown or deleted shell
	CodeQuotaShells       uint32 = 2150859173 // 0x803381A5 MaxShellsPerUser
	CodeQuotaOperations   uint32 = 2150859174 // 0x803381A6 MaxConcurrentOperationsPerUser
	CodeEnvelopeTooLarge  uint32 = 2150859025 // 0x80338111 what Windows clients report for HTTP 413
	codeAccessDeniedHR    uint32 = 2147942405 // 0x80070005
	codeAccessDeniedWin32 uint32 = 5
)

// Error is the error type of every failed operation of this package.
type Error struct {
	Class Class
	Code  uint32 // WS-Management fault code, 0 if none
	Op    string // "dial", "create", "command", "send", "receive", "signal", "delete", "handshake"
	Host  string // host name or address, never credentials
	Err   error  // underlying cause

	transient bool // safe to retry when the operation allows it (reset/EOF, HTTP 503)
	reached   bool // the request may have reached the host
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("remote: ")
	if e.Op != "" {
		b.WriteString(e.Op)
	}
	if e.Host != "" {
		b.WriteString(" on ")
		b.WriteString(e.Host)
	}
	b.WriteString(": ")
	b.WriteString(e.Class.String())
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d, 0x%08X)", e.Code, e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports a failure of the connection after the host was reached — a reset, an early
// EOF, an HTTP 503 — that a caller whose whole operation is safe to repeat may retry. A refused or
// unanswered connection is not temporary: retrying it would only wait again.
func (e *Error) Temporary() bool { return e.transient }

// Is reports whether target is the sentinel of e's class (or ErrFault when e carries a fault code).
func (e *Error) Is(target error) bool {
	if s, ok := classSentinel[e.Class]; ok && s == target {
		return true
	}
	return target == ErrFault && e.Code != 0
}

// Hint suggests what the user can do about an error of this class ("" if nothing useful).
func (e *Error) Hint() string {
	switch e.Class {
	case ClassUnreachable:
		return "check the host is up and WinRM listens (winrm quickconfig; port 5985/5986 open)"
	case ClassAuth:
		return "check user and password, and that the auth scheme is enabled (winrm get winrm/config/service/auth)"
	case ClassTLS:
		return "check the CA or the pinned certificate fingerprint; Server 2003 hosts need legacy TLS with a pin"
	case ClassQuota:
		return "close other WinRM shells for this user or raise MaxShellsPerUser/MaxConcurrentOperationsPerUser"
	case ClassTimeout:
		return "the host did not answer in time; raise the timeout or check the host's load"
	}
	return ""
}

// Fault is a WS-Management SOAP fault as read from the reply XML.
type Fault struct {
	Code    uint32 // f:WSManFault/@Code or p:MSFT_WmiError/p:error_Code
	Subcode string // e.g. "w:TimedOut"
	Reason  string // s:Reason/s:Text (host locale; never used for decisions)
	Machine string
}

func (f *Fault) Error() string {
	s := "fault"
	if f.Subcode != "" {
		s += " " + quote(f.Subcode)
	}
	if r := strings.TrimSpace(f.Reason); r != "" {
		s += ": " + quote(r)
	}
	return s
}

// maxQuoted is how many bytes of a value sent by a host an error message quotes: a ShellId of
// 100 KB or a token of megabytes must not be echoed whole into logs and reports.
const maxQuoted = 200

// quote renders a value sent by a host for an error message: at most maxQuoted bytes (cut on a
// rune boundary, its full length said), control and format characters and invalid UTF-8
// escaped, so it can neither flood nor rewrite a terminal.
func quote(s string) string {
	return quoteLen(s, len(s))
}

// quoteLen is quote for a value of which s is the start and n the full length in bytes.
func quoteLen(s string, n int) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted]
	}
	if n <= len(s) {
		return strconv.Quote(s)
	}
	// Drop a rune split by the cut (at most UTFMax-1 bytes).
	for i := 1; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return strconv.Quote(s) + "…(" + strconv.Itoa(n) + " bytes)"
}

// maxErrorText bounds the text of a cause from the standard library, which may quote a host's
// bytes (net/http quotes a malformed status line whole).
const maxErrorText = 512

// boundText keeps err's meaning (errors.Is sees its chain) under a text of at most
// maxErrorText bytes.
func boundText(err error) error {
	msg := err.Error()
	if len(msg) <= maxErrorText {
		return err
	}
	return &rewordedError{msg: strings.ToValidUTF8(msg[:maxErrorText], "") + "…(" + strconv.Itoa(len(msg)) + " bytes)", orig: err}
}

// faultClass maps a fault code to its class.
func faultClass(f *Fault) Class {
	switch {
	case f.Code == CodeQuotaShells || f.Code == CodeQuotaOperations:
		return ClassQuota
	case f.Code == CodeTimedOut:
		return ClassTimeout
	case f.Code == codeAccessDeniedHR || f.Code == codeAccessDeniedWin32:
		return ClassAuth
	}
	return ClassFault
}

var errPinMismatch = errors.New("server certificate does not match the pinned sha-256 fingerprint")

// tlsError marks an error that happened during the TLS handshake.
type tlsError struct{ err error }

func (t *tlsError) Error() string { return "tls handshake: " + t.err.Error() }
func (t *tlsError) Unwrap() error { return t.err }

// classifyTransport turns an error from dialing or exchanging bytes into an *Error.
// reached says whether the request bytes may have reached the host.
func classifyTransport(ctx context.Context, op, host string, err error, reached bool) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	e := &Error{Op: op, Host: host, Err: boundText(err), reached: reached}
	var te *tlsError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	var ae tls.AlertError
	var rh tls.RecordHeaderError
	var ne net.Error
	if ctx != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		e.Err = boundText(err)
	}
	switch {
	case ctx != nil && errors.Is(ctx.Err(), context.Canceled):
		e.Class = ClassCanceled
	case ctx != nil && ctx.Err() != nil:
		e.Class = ClassTimeout
	case errors.As(err, &te) && errors.As(te.err, &ne) && ne.Timeout():
		e.Class = ClassTimeout // the host accepted TCP but never finished the handshake
	case errors.As(err, &te), errors.Is(err, errPinMismatch), errors.As(err, &ue), errors.As(err, &he),
		errors.As(err, &ce), errors.As(err, &ve), errors.As(err, &ae), errors.As(err, &rh):
		e.Class = ClassTLS
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		e.Class = ClassUnreachable
		e.transient = true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		e.Class = ClassUnreachable
	case isDialError(err) && errors.As(err, &ne) && ne.Timeout():
		e.Class = ClassUnreachable // no answer to SYN: host down
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Class = ClassTimeout
	case isDialError(err):
		e.Class = ClassUnreachable
	case strings.Contains(err.Error(), "malformed HTTP"):
		e.Class = ClassProtocol // something else than WinRM listens there
	default:
		e.Class = ClassUnreachable
	}
	return e
}

func isDialError(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// redact replaces every occurrence of secret in err's text. It keeps the class and code of an
// *Error, and errors.Is still sees the sentinels of the cause (ErrEnvelopeTooLarge,
// context.Canceled, ...), whose text may be redacted too when the secret is short. err is
// returned unchanged when the secret does not occur.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	hide := func(e error) error {
		return &rewordedError{msg: strings.ReplaceAll(e.Error(), secret, "[redacted]"), orig: e}
	}
	var re *Error
	if errors.As(err, &re) {
		c := *re
		if c.Err != nil {
			c.Err = hide(c.Err)
		}
		return &c
	}
	return hide(err)
}

// rewordedError is an error whose text was rewritten: a secret removed, or a host's bytes cut.
// It has no Unwrap, so the original text cannot be reached; Is answers for the original chain.
type rewordedError struct {
	msg  string
	orig error
}

func (r *rewordedError) Error() string        { return r.msg }
func (r *rewordedError) Is(target error) bool { return errors.Is(r.orig, target) }
