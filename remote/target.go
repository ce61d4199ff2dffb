package remote

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Auth schemes accepted in Target.Auth.
const (
	AuthNegotiate = "negotiate" // NTLM with message encryption (the default of a WinRM 2.0 service)
	AuthBasic     = "basic"
)

// Defaults applied to zero Target fields.
const (
	DefaultHTTPPort          = 5985
	DefaultHTTPSPort         = 5986
	DefaultDialTimeout       = 30 * time.Second
	DefaultOperationTimeout  = 60 * time.Second // sent as w:OperationTimeout PT60S
	DefaultMaxEnvelopeSizeKB = 150              // WinRM 2.0 default MaxEnvelopeSizekb
)

// TLSOptions says how to trust the host's certificate on HTTPS.
type TLSOptions struct {
	// CAPEM holds PEM CA certificates to verify the host with (nil: system roots).
	CAPEM []byte
	// Fingerprint pins the host certificate by its SHA-256 (hex, colons and case ignored).
	// When set, the pin replaces chain verification: it is how a self-signed SHA-1
	// certificate of a Server 2003 host is trusted.
	Fingerprint string
	// ServerName overrides the name verified in the certificate (default Host).
	ServerName string
	// LegacyTLS allows TLS 1.0 with RSA key exchange and 3DES/RC4 suites, which is all a
	// Server 2003 host speaks. It requires Fingerprint or Insecure.
	LegacyTLS bool
	// Insecure skips all certificate verification.
	Insecure bool
}

// Target is one WinRM endpoint and how to talk to it. Its String, GoString, Format, LogValue
// and JSON form never show the password.
type Target struct {
	Host  string
	Port  int    // 0: 5985 for HTTP, 5986 for HTTPS
	HTTPS bool   // use https://
	Auth  string // "negotiate" (default; "ntlm" is an alias) or "basic"
	User  string // "user", "DOMAIN\user" or "user@domain"
	// Password is never printed by this package, nor marshalled to JSON.
	Password string `json:"-"`
	TLS      TLSOptions
	// AllowUnencrypted permits Basic over plain HTTP (credentials and data in clear).
	AllowUnencrypted bool
	// DialTimeout bounds TCP connect plus TLS handshake (0: 30s).
	DialTimeout time.Duration
	// OperationTimeout is sent as w:OperationTimeout (0: PT60S); a Receive with no output for
	// that long gets the w:TimedOut fault and is reissued. The client waits that long plus
	// ResponseGrace for any reply.
	OperationTimeout time.Duration
	// ResponseGrace is how much longer than OperationTimeout to wait for a reply (0: 30s).
	ResponseGrace time.Duration
	// MaxEnvelopeSizeKB is the host's MaxEnvelopeSizekb (0: 150); stdin chunks are sized to fit.
	MaxEnvelopeSizeKB int
}

func (t Target) scheme() string {
	if t.HTTPS {
		return "https"
	}
	return "http"
}

func (t Target) port() int {
	switch {
	case t.Port != 0:
		return t.Port
	case t.HTTPS:
		return DefaultHTTPSPort
	}
	return DefaultHTTPPort
}

func (t Target) auth() string {
	switch a := strings.ToLower(t.Auth); a {
	case "", "ntlm":
		return AuthNegotiate
	default:
		return a
	}
}

func (t Target) addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.port())) }

// URL is the endpoint address, http(s)://host:port/wsman.
func (t Target) URL() string { return t.scheme() + "://" + t.addr() + "/wsman" }

func (t Target) dialTimeout() time.Duration {
	if t.DialTimeout > 0 {
		return t.DialTimeout
	}
	return DefaultDialTimeout
}

func (t Target) operationTimeout() time.Duration {
	if t.OperationTimeout > 0 {
		return t.OperationTimeout
	}
	return DefaultOperationTimeout
}

// responseTimeout bounds the wait for any single HTTP reply.
func (t Target) responseTimeout() time.Duration {
	g := t.ResponseGrace
	if g <= 0 {
		g = 30 * time.Second
	}
	return t.operationTimeout() + g
}

func (t Target) envelopeBytes() int {
	kb := t.MaxEnvelopeSizeKB
	if kb <= 0 {
		kb = DefaultMaxEnvelopeSizeKB
	}
	return kb * 1024
}

// isoDuration renders d as an xs:duration for w:OperationTimeout (PT60S, PT1.500S).
func isoDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("PT%dS", int64(d/time.Second))
	}
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

// String describes the target without its password.
func (t Target) String() string {
	user := t.User
	if user == "" {
		user = "(no user)"
	}
	s := fmt.Sprintf("%s %s as %s", t.auth(), t.URL(), user)
	if t.Password != "" {
		s += " password=[redacted]"
	}
	if t.HTTPS && t.TLS.LegacyTLS {
		s += " tls=legacy"
	}
	if t.TLS.Fingerprint != "" {
		s += " pinned"
	}
	if t.TLS.Insecure {
		s += " insecure"
	}
	return s
}

// GoString is String: %#v never shows the password either.
func (t Target) GoString() string { return "remote.Target{" + t.String() + "}" }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q) print String or GoString.
func (t Target) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = f.Write([]byte(t.GoString()))
	case verb == 'q':
		_, _ = f.Write([]byte(strconv.Quote(t.String())))
	default:
		_, _ = f.Write([]byte(t.String()))
	}
}

// LogValue makes slog print String: without it a JSON handler would marshal every field.
func (t Target) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Warnings lists the security downgrades this Target asks for, for the caller to show
// (this package never prints). Empty for a fully verified, encrypted connection.
func (t Target) Warnings() []string {
	var w []string
	if t.HTTPS && t.TLS.LegacyTLS {
		w = append(w, fmt.Sprintf("%s: legacy TLS enabled (TLS 1.0, RSA key exchange, 3DES/RC4 suites)", t.Host))
	}
	if t.HTTPS && t.TLS.Insecure {
		w = append(w, fmt.Sprintf("%s: TLS certificate verification disabled", t.Host))
	}
	if !t.HTTPS && t.auth() == AuthBasic && t.AllowUnencrypted {
		w = append(w, fmt.Sprintf("%s: Basic over plain HTTP sends the password and all data unencrypted", t.Host))
	}
	return w
}

// Validate checks the Target without any network traffic.
func (t Target) Validate() error {
	bad := func(format string, a ...any) error {
		return &Error{Class: ClassConfig, Op: "dial", Host: t.Host, Err: fmt.Errorf(format, a...)}
	}
	if t.Host == "" {
		return bad("no host")
	}
	if strings.ContainsAny(t.Host, "/?#@ []") {
		return bad("host %q is not a host name or address", t.Host)
	}
	if strings.Contains(t.Host, ":") {
		// An IPv6 address, possibly link-local with its zone (fe80::1%eth0), which dialing
		// needs and the Host header leaves out.
		if a, err := netip.ParseAddr(t.Host); err != nil || !a.Is6() {
			return bad("host %q is not a host name or address (the port goes in Port)", t.Host)
		}
	}
	if t.Port < 0 || t.Port > 65535 {
		return bad("port %d out of range", t.Port)
	}
	switch t.auth() {
	case AuthNegotiate:
	case AuthBasic:
		if !t.HTTPS && !t.AllowUnencrypted {
			return bad("basic authentication over plain http sends the password in clear: use https, negotiate, or allow unencrypted explicitly")
		}
	default:
		return bad("unknown auth scheme %q (want negotiate or basic)", t.Auth)
	}
	if t.User == "" {
		return bad("no user name")
	}
	if t.TLS.Fingerprint != "" {
		if _, err := parseFingerprint(t.TLS.Fingerprint); err != nil {
			return bad("%v", err)
		}
	}
	if t.HTTPS && t.TLS.LegacyTLS && t.TLS.Fingerprint == "" && !t.TLS.Insecure {
		return bad("legacy tls needs a pinned certificate fingerprint (or insecure): Go cannot verify the sha-1 certificates of Server 2003 hosts")
	}
	if len(t.TLS.CAPEM) > 0 {
		if ok := x509.NewCertPool().AppendCertsFromPEM(t.TLS.CAPEM); !ok {
			return bad("no certificate found in the CA PEM")
		}
	}
	return nil
}

func parseFingerprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("certificate fingerprint must be 64 hex digits (sha-256)")
	}
	return b, nil
}

// legacySuites serve Server 2003 hosts: RSA key exchange with AES-CBC (hosts with KB948963),
// 3DES or RC4 (hosts without it), then modern ECDHE suites so that a host that was upgraded
// still gets forward secrecy. Go offers the RSA, 3DES and RC4 suites only when listed.
var legacySuites = []uint16{
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	tls.TLS_RSA_WITH_RC4_128_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// tlsConfig builds the client TLS configuration of t (valid t assumed).
func (t Target) tlsConfig() (*tls.Config, error) {
	name := t.TLS.ServerName
	if name == "" {
		name = t.Host
	}
	c := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if len(t.TLS.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.TLS.CAPEM) {
			return nil, errors.New("no certificate found in the CA PEM")
		}
		c.RootCAs = pool
	}
	if t.TLS.LegacyTLS {
		c.MinVersion = tls.VersionTLS10
		c.CipherSuites = legacySuites
	}
	switch {
	case t.TLS.Fingerprint != "":
		pin, err := parseFingerprint(t.TLS.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The pin is the trust decision, so the chain is not verified (a SHA-1 self-signed
		// certificate could not be).
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errPinMismatch
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if string(sum[:]) != string(pin) {
				return fmt.Errorf("%w (got %s)", errPinMismatch, hex.EncodeToString(sum[:]))
			}
			return nil
		}
	case t.TLS.Insecure:
		c.InsecureSkipVerify = true
	}
	return c, nil
}
