package ntlm

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/bodgit/ntlmssp"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MS-NLMP §4.2.4 "NTLMv2 Authentication" test vectors (common values §4.2.1: user "User", domain
// "Domain", password "Password", server challenge 0123456789abcdef, client challenge aa×8, random
// session key 55×16, timestamp 0, AV pairs NbDomain "Domain" and NbComputer "Server"). Expected
// values from https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/9cdb7bb2-17e6-409c-99cc-04590db064d4
// (§4.2.4.4 GSS_WrapEx: seal/sign keys, sealed "Plaintext", signature), and for NTProofStr,
// SessionBaseKey and EncryptedRandomSessionKey the same §4.2.4 values as carried by
// bodgit/ntlmssp's ntlm_test.go and client_test.go (module cache, v0.0.0-20240506230425-31973bb52d9b).
const (
	vecNTOWFv2        = "0c868a403bfd7a93a3001ef22ef02e3f"
	vecNTProofStr     = "68cd0ab851e51c96aabc927bebef6a1c"
	vecSessionBaseKey = "8de40ccadbc14a82f15cb0ad0de95ca3"
	vecEncryptedKey   = "c5dad2544fc9799094ce1ce90bc9d03e"
	vecFlags          = 0xe28a8233 // §4.2.4: KEY_EXCH 56 128 VERSION TARGET_INFO ESS TARGET_TYPE_SERVER ALWAYS_SIGN NTLM SEAL SIGN OEM UNICODE
	vecSealed         = "54e50165bf1936dc996020c1811b0f06fb5f"
	vecSignature      = "010000007fb38ec5c55d497600000000"
	vecSealKeyC2S     = "59f600973cc4960a25480a7c196e4c58"
	vecSignKeyC2S     = "4788dc861b4782f35d43fd98fe1a2d39"
)

// vecTemp is the NTLMv2_CLIENT_CHALLENGE of §4.2.4.1.3/§4.2.4.2.2: 0101, reserved, timestamp 0,
// client challenge, reserved, AV pairs (NbDomain "Domain", NbComputer "Server", EOL), 4 zero bytes.
const vecTemp = "01010000 00000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000" +
	"02000c00 44006f006d00610069006e00 01000c00 5300650072007600650072 00 00000000 00000000"

func TestNTOWFv2Vector(t *testing.T) {
	if got := hex.EncodeToString(NTOWFv2("Password", "User", "Domain")); got != vecNTOWFv2 {
		t.Errorf("NTOWFv2 = %s, want %s", got, vecNTOWFv2)
	}
}

// authenticateMessage marshals an AUTHENTICATE_MESSAGE with a Version and no MIC (§2.2.1.3).
func authenticateMessage(flags uint32, lm, nt []byte, domain, user, ws string, encKey []byte) []byte {
	fields := [][]byte{lm, nt, utf16le(domain), utf16le(user), utf16le(ws), encKey}
	const header = 72
	m := make([]byte, header)
	copy(m, signature)
	binary.LittleEndian.PutUint32(m[8:], typeAuthenticate)
	off := header
	for i, f := range fields {
		putFields(m[12+8*i:], len(f), off)
		off += len(f)
	}
	binary.LittleEndian.PutUint32(m[60:], flags)
	copy(m[64:], []byte{5, 1, 0x28, 0x0a, 0, 0, 0, 0x0f})
	for _, f := range fields {
		m = append(m, f...)
	}
	return m
}

func vectorServer(t *testing.T) *Server {
	cfg := Config{Domain: "Domain", Computer: "Server",
		Password: func(u string) (string, bool) { return "Password", strings.EqualFold(u, "User") },
		Rand:     bytes.NewReader(unhex(t, "0123456789abcdef"))}
	s := NewServer(cfg)
	neg := append(append([]byte(nil), signature...), 1, 0, 0, 0, 0x33, 0x82, 0x8a, 0xe2)
	if _, err := s.Challenge(neg); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticateVector(t *testing.T) {
	s := vectorServer(t)
	nt := append(unhex(t, vecNTProofStr), unhex(t, vecTemp)...)
	lm := unhex(t, "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa") // §4.2.4.2.1 LMv2 response
	res, err := s.Authenticate(authenticateMessage(vecFlags, lm, nt, "Domain", "User", "COMPUTER", unhex(t, vecEncryptedKey)))
	if err != nil {
		t.Fatal(err)
	}
	if res.User != "User" || res.Domain != "Domain" || res.Workstation != "COMPUTER" {
		t.Errorf("result %+v", res)
	}
	// The session key must be the spec's RandomSessionKey 55×16: the client-direction keys and the
	// sealed "Plaintext" of §4.2.4.4 follow from it.
	key := bytes.Repeat([]byte{0x55}, 16)
	if got := hex.EncodeToString(md5Sum(key, []byte(c2sSeal))); got != vecSealKeyC2S {
		t.Errorf("seal key %s, want %s", got, vecSealKeyC2S)
	}
	if got := hex.EncodeToString(md5Sum(key, []byte(c2sSign))); got != vecSignKeyC2S {
		t.Errorf("sign key %s, want %s", got, vecSignKeyC2S)
	}
	plaintext := utf16le("Plaintext")
	client := NewSession(vecFlags, key, true)
	sealed, sig := client.Seal(plaintext)
	if hex.EncodeToString(sealed) != vecSealed || hex.EncodeToString(sig) != vecSignature {
		t.Errorf("client seal = %x %x, want %s %s", sealed, sig, vecSealed, vecSignature)
	}
	got, err := res.Session.Unseal(unhex(t, vecSealed), unhex(t, vecSignature))
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("server unseal = %q, %v", got, err)
	}
	if sbk := hmacMD5(NTOWFv2("Password", "User", "Domain"), unhex(t, vecNTProofStr)); hex.EncodeToString(sbk) != vecSessionBaseKey {
		t.Errorf("session base key %x", sbk)
	}
}

func TestAuthenticateVectorWrong(t *testing.T) {
	nt := append(unhex(t, vecNTProofStr), unhex(t, vecTemp)...)
	tests := []struct {
		name, domain, user string
		nt                 []byte
		want               error
	}{
		{"wrong domain", "Other", "User", nt, ErrWrongDomain},
		{"unknown user", "Domain", "Guest", nt, ErrUnknownUser},
		// "domain" differs in case from what the client hashed, so the proof no longer verifies.
		{"domain case", "DOMAIN", "User", nt, ErrBadResponse},
		{"ntlmv1", "Domain", "User", nt[:24], ErrNotNTLMv2},
	}
	for _, tt := range tests {
		s := vectorServer(t)
		_, err := s.Authenticate(authenticateMessage(vecFlags, nil, tt.nt, tt.domain, tt.user, "COMPUTER", unhex(t, vecEncryptedKey)))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, m := range [][]byte{nil, []byte("NTLMSSP\x00"), []byte("NTLMSSP\x00\x03\x00\x00\x00"),
		append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 80)...)} {
		s := vectorServer(t)
		if _, err := s.Authenticate(m); err == nil {
			t.Errorf("accepted %x", m)
		}
	}
	if _, err := NewServer(Config{}).Authenticate(nil); !errors.Is(err, ErrState) {
		t.Errorf("no challenge: %v", err)
	}
}

// handshake runs bodgit/ntlmssp (the client masterzen's Encryption uses) against the server.
func handshake(t *testing.T, user, domain, password string) (*ntlmssp.Client, *Result, error) {
	t.Helper()
	c, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, password), ntlmssp.SetDomain(domain), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Computer: "WIN2003", Password: func(u string) (string, bool) {
		return "Passw0rd!", strings.EqualFold(u, "administrator")
	}})
	neg, err := c.Authenticate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.Authenticate(ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Authenticate(auth)
	return c, res, err
}

func TestBodgitClient(t *testing.T) {
	for _, domain := range []string{"", ".", "WIN2003", "win2003"} {
		c, res, err := handshake(t, "Administrator", domain, "Passw0rd!")
		if err != nil {
			t.Fatalf("domain %q: %v", domain, err)
		}
		// Several messages each way: the RC4 handles and sequence numbers run on.
		for i := 0; i < 3; i++ {
			msg := []byte(strings.Repeat("request ", i+1))
			sealed, sig, err := c.SecuritySession().Wrap(msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := res.Session.Unseal(sealed, sig)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("server unseal %d: %q %v", i, got, err)
			}
			reply := []byte(strings.Repeat("reply ", i+2))
			sealed, sig = res.Session.Seal(reply)
			got, err = c.SecuritySession().Unwrap(sealed, sig)
			if err != nil || !bytes.Equal(got, reply) {
				t.Fatalf("client unwrap %d: %q %v", i, got, err)
			}
		}
	}
}

func TestBodgitClientRejected(t *testing.T) {
	tests := []struct {
		name, user, domain, password string
		want                         error
	}{
		{"wrong password", "Administrator", "", "nope", ErrBadResponse},
		{"wrong domain", "Administrator", "CONTOSO", "Passw0rd!", ErrWrongDomain},
		{"unknown user", "guest", "", "Passw0rd!", ErrUnknownUser},
	}
	for _, tt := range tests {
		_, _, err := handshake(t, tt.user, tt.domain, tt.password)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "Passw0rd") {
			t.Errorf("%s: error shows the password", tt.name)
		}
	}
}

func TestTamperedMessage(t *testing.T) {
	c, res, err := handshake(t, "Administrator", "", "Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	sealed, sig, _ := c.SecuritySession().Wrap([]byte("<s:Envelope/>"))
	sealed[3] ^= 1
	if _, err := res.Session.Unseal(sealed, sig); err == nil {
		t.Fatal("tampered message accepted")
	}
	// A replayed message (old sequence number) is refused too.
	c, res, _ = handshake(t, "Administrator", "", "Passw0rd!")
	sealed, sig, _ = c.SecuritySession().Wrap([]byte("one"))
	if _, err := res.Session.Unseal(sealed, sig); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Session.Unseal(sealed, sig); err == nil {
		t.Fatal("replayed message accepted")
	}
}

func TestBadMIC(t *testing.T) {
	c, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("Administrator", "Passw0rd!"), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	s := NewServer(Config{Computer: "WIN2003", Password: func(string) (string, bool) { return "Passw0rd!", true }})
	neg, _ := c.Authenticate(nil, nil)
	ch, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	if flags := binary.LittleEndian.Uint32(ch[20:]); flags&ChallengeFlags != ChallengeFlags {
		t.Errorf("challenge flags %08x lack some of %08x", flags, uint32(ChallengeFlags))
	}
	auth, _ := c.Authenticate(ch, nil)
	auth[72] ^= 1 // the MIC field (bodgit sends one: the CHALLENGE carries a timestamp)
	if _, err := s.Authenticate(auth); !errors.Is(err, ErrBadMIC) {
		t.Fatalf("err %v, want ErrBadMIC", err)
	}
}

func TestAuthenticateConsumesChallenge(t *testing.T) {
	s := vectorServer(t)
	nt := append(unhex(t, vecNTProofStr), unhex(t, vecTemp)...)
	msg := authenticateMessage(vecFlags, nil, nt, "Domain", "User", "COMPUTER", unhex(t, vecEncryptedKey))
	if _, err := s.Authenticate(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(msg); !errors.Is(err, ErrState) {
		t.Fatalf("replayed AUTHENTICATE: %v, want ErrState", err)
	}
	// A failed attempt consumes the challenge too: no second guess against it.
	s = vectorServer(t)
	if _, err := s.Authenticate(authenticateMessage(vecFlags, nil, nt, "Domain", "Guest", "COMPUTER", nil)); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("first attempt: %v", err)
	}
	if _, err := s.Authenticate(msg); !errors.Is(err, ErrState) {
		t.Fatalf("second attempt: %v, want ErrState", err)
	}
}

func TestKeyExchangeWithoutKeyIsMalformed(t *testing.T) {
	s := vectorServer(t)
	nt := append(unhex(t, vecNTProofStr), unhex(t, vecTemp)...)
	if vecFlags&FlagKeyExch == 0 {
		t.Fatal("the vector flags must ask for KEY_EXCH")
	}
	_, err := s.Authenticate(authenticateMessage(vecFlags, nil, nt, "Domain", "User", "COMPUTER", nil))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("KEY_EXCH without EncryptedRandomSessionKey: %v, want ErrMalformed", err)
	}
}
