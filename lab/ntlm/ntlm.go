// Package ntlm is the server (acceptor) side of NTLM, MS-NLMP: it answers a NEGOTIATE_MESSAGE
// with a CHALLENGE_MESSAGE, verifies the NTLMv2 AUTHENTICATE_MESSAGE, and returns a Session that
// seals, signs and verifies messages in connection mode, as WinRM message encryption needs.
//
// Only NTLMv2 with extended session security is accepted (what every current client sends;
// NTLMv1 and LM responses are refused). Section numbers in comments refer to MS-NLMP.
package ntlm

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 MD4 is what NTLM's NTOWF is made of (MS-NLMP §3.3.2); compatibility is the point.
	"golang.org/x/crypto/md4"
)

// Negotiate flags, §2.2.2.5.
const (
	FlagUnicode                 = 0x00000001
	FlagOEM                     = 0x00000002
	FlagRequestTarget           = 0x00000004
	FlagSign                    = 0x00000010
	FlagSeal                    = 0x00000020
	FlagLMKey                   = 0x00000080
	FlagNTLM                    = 0x00000200
	FlagAnonymous               = 0x00000800
	FlagAlwaysSign              = 0x00008000
	FlagTargetTypeDomain        = 0x00010000
	FlagTargetTypeServer        = 0x00020000
	FlagExtendedSessionSecurity = 0x00080000
	FlagTargetInfo              = 0x00800000
	FlagVersion                 = 0x02000000
	Flag128                     = 0x20000000
	FlagKeyExch                 = 0x40000000
	Flag56                      = 0x80000000
)

// ChallengeFlags are the flags of a CHALLENGE_MESSAGE to a client that asks for all of them (docs/winrm-protocol.md §5 item 1): bodgit/ntlmssp
// adopts the server's flags, so SIGN, SEAL and KEY_EXCH must be here and DATAGRAM must not.
const ChallengeFlags = FlagUnicode | FlagRequestTarget | FlagSign | FlagSeal | FlagNTLM | FlagAlwaysSign |
	FlagExtendedSessionSecurity | FlagTargetInfo | FlagVersion | Flag128 | FlagKeyExch | Flag56

// Message types, §2.2.1.
const (
	typeNegotiate    = 1
	typeChallenge    = 2
	typeAuthenticate = 3
)

// AV pair IDs, §2.2.2.1.
const (
	avEOL         = 0
	avNbComputer  = 1
	avNbDomain    = 2
	avDNSComputer = 3
	avDNSDomain   = 4
	avFlags       = 6
	avTimestamp   = 7
)

var signature = []byte("NTLMSSP\x00")

// Errors returned by Authenticate. They never carry secrets.
var (
	ErrMalformed   = errors.New("ntlm: malformed message")
	ErrNotNTLMv2   = errors.New("ntlm: only NTLMv2 responses are accepted")
	ErrUnknownUser = errors.New("ntlm: unknown user")
	ErrWrongDomain = errors.New("ntlm: domain does not match this server")
	ErrBadResponse = errors.New("ntlm: wrong password (NTLMv2 response does not verify)")
	ErrBadMIC      = errors.New("ntlm: message integrity code does not verify")
	ErrState       = errors.New("ntlm: AUTHENTICATE without a CHALLENGE")
)

// Config describes the server's identity and accounts.
type Config struct {
	// Domain is the NetBIOS domain (TargetName, MsvAvNbDomainName); for a workgroup machine
	// Windows announces the computer name. "" = Computer.
	Domain string
	// Computer is the NetBIOS computer name (MsvAvNbComputerName).
	Computer string
	// DNSDomain and DNSComputer default to the lower-case NetBIOS names.
	DNSDomain, DNSComputer string
	// Password returns the password of a local account (case-insensitive user name).
	Password func(user string) (password string, ok bool)
	// Now and Rand default to time.Now and crypto/rand (tests fix them).
	Now  func() time.Time
	Rand io.Reader
}

// DomainAccepted is the domain rule: the domain a client names in AUTHENTICATE must be empty,
// ".", the server's NetBIOS or DNS domain, or its computer name (a local account may be written
// HOST\user), compared case-insensitively. Anything else is another domain, whose accounts this
// server does not know, and is rejected with ErrWrongDomain. The NTOWFv2 uses the domain
// exactly as the client sent it (§3.3.2: UserDom).
func (c *Config) DomainAccepted(domain string) bool {
	for _, ok := range []string{"", ".", c.domain(), c.Computer, c.dnsDomain(), c.dnsComputer()} {
		if strings.EqualFold(domain, ok) {
			return true
		}
	}
	return false
}

func (c *Config) domain() string {
	if c.Domain == "" {
		return c.Computer
	}
	return c.Domain
}
func (c *Config) dnsDomain() string {
	if c.DNSDomain == "" {
		return strings.ToLower(c.domain())
	}
	return c.DNSDomain
}
func (c *Config) dnsComputer() string {
	if c.DNSComputer == "" {
		return strings.ToLower(c.Computer)
	}
	return c.DNSComputer
}

// Server is one handshake in progress (one per connection and authentication attempt). It
// verifies at most one AUTHENTICATE_MESSAGE per CHALLENGE, so a captured AUTHENTICATE cannot be
// replayed against it and a wrong password cannot be retried against the same challenge.
type Server struct {
	cfg       Config
	negotiate []byte
	challenge []byte
	serverCh  [8]byte
}

// NewServer starts a handshake.
func NewServer(cfg Config) *Server { return &Server{cfg: cfg} }

// Challenge answers a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE (§2.2.1.2, §3.2.5.1.1).
func (s *Server) Challenge(negotiate []byte) ([]byte, error) {
	if !isMessage(negotiate, typeNegotiate) {
		return nil, ErrMalformed
	}
	s.negotiate = append([]byte(nil), negotiate...)
	r := s.cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, s.serverCh[:]); err != nil {
		return nil, fmt.Errorf("ntlm: server challenge: %w", err)
	}
	now := time.Now
	if s.cfg.Now != nil {
		now = s.cfg.Now
	}
	var ti bytes.Buffer
	avPair(&ti, avNbDomain, utf16le(strings.ToUpper(s.cfg.domain())))
	avPair(&ti, avNbComputer, utf16le(strings.ToUpper(s.cfg.Computer)))
	avPair(&ti, avDNSDomain, utf16le(s.cfg.dnsDomain()))
	avPair(&ti, avDNSComputer, utf16le(s.cfg.dnsComputer()))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, filetime(now()))
	avPair(&ti, avTimestamp, ts)
	avPair(&ti, avEOL, nil)

	// KEY_EXCH, SEAL, SIGN, 56 and 128 are granted only when the NEGOTIATE asks for them (§3.2.5.1.1):
	// Azure/go-ntlmssp (masterzen ClientNTLM) does not ask for KEY_EXCH and refuses a CHALLENGE that sets it.
	const optional = FlagKeyExch | FlagSeal | FlagSign | Flag56 | Flag128
	asked := uint32(0)
	if len(negotiate) >= 16 {
		asked = binary.LittleEndian.Uint32(negotiate[12:])
	}
	flags := uint32(ChallengeFlags) &^ optional
	flags |= asked & optional
	if strings.EqualFold(s.cfg.domain(), s.cfg.Computer) {
		flags |= FlagTargetTypeServer // a workgroup machine: the target is the server itself (§2.2.2.5)
	} else {
		flags |= FlagTargetTypeDomain
	}
	target := utf16le(strings.ToUpper(s.cfg.domain()))
	const headerLen = 56 // fixed part of CHALLENGE_MESSAGE with Version
	m := make([]byte, headerLen, headerLen+len(target)+ti.Len())
	copy(m, signature)
	binary.LittleEndian.PutUint32(m[8:], typeChallenge)
	putFields(m[12:], len(target), headerLen)
	binary.LittleEndian.PutUint32(m[20:], flags)
	copy(m[24:32], s.serverCh[:])
	putFields(m[40:], ti.Len(), headerLen+len(target))
	copy(m[48:], windowsVersion[:])
	m = append(m, target...)
	m = append(m, ti.Bytes()...)
	s.challenge = m
	return m, nil
}

// windowsVersion is the VERSION structure of Windows Server 2003: 5.2 build 3790, NTLM revision 15 (§2.2.2.10).
var windowsVersion = [8]byte{5, 2, 0xce, 0x0e, 0, 0, 0, 0x0f}

// Result is a successful authentication.
type Result struct {
	User, Domain, Workstation string
	Session                   *Session
}

// Authenticate verifies an AUTHENTICATE_MESSAGE (§3.2.5.1.2) and derives the session keys. It
// consumes the challenge: a second call returns ErrState until Challenge is called again.
func (s *Server) Authenticate(msg []byte) (*Result, error) {
	if s.challenge == nil {
		return nil, ErrState
	}
	challenge := s.challenge
	s.challenge = nil
	if !isMessage(msg, typeAuthenticate) || len(msg) < 64 {
		return nil, ErrMalformed
	}
	field := func(off int) ([]byte, bool) {
		n := int(binary.LittleEndian.Uint16(msg[off:]))
		start := int(binary.LittleEndian.Uint32(msg[off+4:]))
		if n == 0 {
			return nil, true
		}
		if start < 0 || start > len(msg) || n > len(msg)-start {
			return nil, false
		}
		return msg[start : start+n], true
	}
	ntResp, ok1 := field(20)
	domainB, ok2 := field(28)
	userB, ok3 := field(36)
	wsB, ok4 := field(44)
	encKey, ok5 := field(52)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return nil, ErrMalformed
	}
	flags := binary.LittleEndian.Uint32(msg[60:])
	str := func(b []byte) string {
		if flags&FlagUnicode != 0 {
			return fromUTF16le(b)
		}
		return string(b)
	}
	user, domain, ws := str(userB), str(domainB), str(wsB)
	if len(ntResp) <= 24 {
		return nil, ErrNotNTLMv2 // 24 bytes = NTLMv1; empty = anonymous
	}
	if !s.cfg.DomainAccepted(domain) {
		return nil, ErrWrongDomain
	}
	var password string
	var ok bool
	if s.cfg.Password != nil {
		password, ok = s.cfg.Password(user)
	}
	if !ok {
		return nil, ErrUnknownUser
	}
	// §3.3.2: NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ temp); temp is the client blob.
	key := NTOWFv2(password, user, domain)
	proof, temp := ntResp[:16], ntResp[16:]
	want := hmacMD5(key, s.serverCh[:], temp)
	if subtle.ConstantTimeCompare(proof, want) != 1 {
		return nil, ErrBadResponse
	}
	sessionBaseKey := hmacMD5(key, proof)
	exported := sessionBaseKey // KeyExchangeKey = SessionBaseKey for NTLMv2 (§3.4.5.1)
	if flags&FlagKeyExch != 0 {
		// With KEY_EXCH the client chose the session key and sent it encrypted (§3.1.5.1.2);
		// without it both sides would derive different keys and every message would fail.
		if len(encKey) != 16 {
			return nil, ErrMalformed
		}
		exported = rc4Once(sessionBaseKey, encKey)
	}
	// MIC (§3.1.5.1.2): present when the client's AV pairs carry MsvAvFlags bit 0x2.
	if len(temp) > 28 && hasMIC(temp[28:]) {
		const micOff = 72
		if len(msg) < micOff+16 {
			return nil, ErrMalformed
		}
		zeroed := append([]byte(nil), msg...)
		copy(zeroed[micOff:micOff+16], make([]byte, 16))
		if !hmac.Equal(msg[micOff:micOff+16], hmacMD5(exported, s.negotiate, challenge, zeroed)) {
			return nil, ErrBadMIC
		}
	}
	return &Result{User: user, Domain: domain, Workstation: ws, Session: NewSession(flags, exported, false)}, nil
}

func hasMIC(av []byte) bool {
	for len(av) >= 4 {
		id := binary.LittleEndian.Uint16(av)
		n := int(binary.LittleEndian.Uint16(av[2:]))
		if id == avEOL || len(av) < 4+n {
			return false
		}
		if id == avFlags && n == 4 {
			return binary.LittleEndian.Uint32(av[4:])&0x2 != 0
		}
		av = av[4+n:]
	}
	return false
}

// NTOWFv2 = HMAC_MD5(MD4(UTF16LE(password)), UTF16LE(UPPER(user) ‖ domain)) (§3.3.2).
func NTOWFv2(password, user, domain string) []byte {
	h := md4.New()
	h.Write(utf16le(password))
	return hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(user)+domain))
}

// Session holds the connection-mode sealing state after authentication (§3.4): separate RC4
// handles, keys and sequence numbers per direction, the handles running on across messages.
type Session struct {
	mu                 sync.Mutex
	flags              uint32
	sendSign, recvSign []byte
	send, recv         *rc4.Cipher
	sendSeq, recvSeq   uint32
}

// Magic constants of SIGNKEY and SEALKEY (§3.4.5.2, §3.4.5.3), NUL included.
const (
	c2sSign = "session key to client-to-server signing key magic constant\x00"
	s2cSign = "session key to server-to-client signing key magic constant\x00"
	c2sSeal = "session key to client-to-server sealing key magic constant\x00"
	s2cSeal = "session key to server-to-client sealing key magic constant\x00"
)

// NewSession derives the keys from the ExportedSessionKey; client selects the client's view
// (used by tests), otherwise the server's (send = server-to-client).
func NewSession(flags uint32, exportedSessionKey []byte, client bool) *Session {
	sealKey := func(magic string) []byte {
		k := exportedSessionKey
		switch {
		case flags&Flag128 != 0:
		case flags&Flag56 != 0:
			k = k[:7]
		default:
			k = k[:5]
		}
		return md5Sum(k, []byte(magic))
	}
	s := &Session{flags: flags}
	sendSign, recvSign, sendSeal, recvSeal := s2cSign, c2sSign, s2cSeal, c2sSeal
	if client {
		sendSign, recvSign, sendSeal, recvSeal = c2sSign, s2cSign, c2sSeal, s2cSeal
	}
	s.sendSign = md5Sum(exportedSessionKey, []byte(sendSign))
	s.recvSign = md5Sum(exportedSessionKey, []byte(recvSign))
	s.send, _ = rc4.NewCipher(sealKey(sendSeal))
	s.recv, _ = rc4.NewCipher(sealKey(recvSeal))
	return s
}

// Seal encrypts msg and returns it with its 16-byte signature (§3.4.3, §3.4.4.2):
// version 1 ‖ RC4(HMAC_MD5(SignKey, seq ‖ msg)[:8]) ‖ seq, the checksum encrypted with the same
// handle right after the message (the order bodgit/ntlmssp's Wrap uses).
func (s *Session) Seal(msg []byte) (sealed, sig []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sealed = make([]byte, len(msg))
	s.send.XORKeyStream(sealed, msg)
	sig = s.signature(s.send, s.sendSign, s.sendSeq, msg)
	s.sendSeq++
	return sealed, sig
}

// Unseal decrypts a sealed message and verifies its signature and sequence number. After a
// failure the RC4 state is spent: the caller must drop the session.
func (s *Session) Unseal(sealed, sig []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(sig) != 16 {
		return nil, errors.New("ntlm: signature is not 16 bytes")
	}
	msg := make([]byte, len(sealed))
	s.recv.XORKeyStream(msg, sealed)
	want := s.signature(s.recv, s.recvSign, s.recvSeq, msg)
	if !hmac.Equal(sig, want) {
		return nil, errors.New("ntlm: message signature does not verify")
	}
	s.recvSeq++
	return msg, nil
}

func (s *Session) signature(h *rc4.Cipher, key []byte, seq uint32, msg []byte) []byte {
	var seqB [4]byte
	binary.LittleEndian.PutUint32(seqB[:], seq)
	checksum := hmacMD5(key, seqB[:], msg)[:8]
	if s.flags&FlagKeyExch != 0 {
		h.XORKeyStream(checksum, checksum)
	}
	sig := make([]byte, 16)
	sig[0] = 1
	copy(sig[4:12], checksum)
	copy(sig[12:], seqB[:])
	return sig
}

func isMessage(b []byte, typ uint32) bool {
	return len(b) >= 12 && bytes.Equal(b[:8], signature) && binary.LittleEndian.Uint32(b[8:]) == typ
}

func putFields(b []byte, n, offset int) {
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(offset))
}

func avPair(b *bytes.Buffer, id uint16, v []byte) {
	var h [4]byte
	binary.LittleEndian.PutUint16(h[:], id)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(v)))
	b.Write(h[:])
	b.Write(v)
}

// filetime converts t to a Windows FILETIME (100 ns since 1601-01-01).
func filetime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + 116444736000000000
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func hmacMD5(key []byte, parts ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func md5Sum(parts ...[]byte) []byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func rc4Once(key, data []byte) []byte {
	c, _ := rc4.NewCipher(key)
	out := make([]byte, len(data))
	c.XORKeyStream(out, data)
	return out
}
