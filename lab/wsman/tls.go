package wsman

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// TLS profiles of the HTTPS listener.
const (
	// ProfileModern: TLS 1.2+, Go's default suites, an ECDSA P-256 certificate signed with SHA-256.
	ProfileModern = "modern"
	// ProfileServer2003: what Schannel on an unpatched Windows Server 2003 offers: TLS 1.0 at most,
	// RSA key exchange only, RC4 and 3DES suites, a self-signed 1024-bit RSA certificate signed with SHA-1.
	ProfileServer2003 = "server2003"
)

// Server2003Suites are the cipher suites of ProfileServer2003, in Schannel's 2003 preference order
// (RC4 first). Go implements them but offers none by default, so a client must list them.
var Server2003Suites = []uint16{tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}

// Cert is a listener certificate, exposed so clients can pin it.
type Cert struct {
	DER         []byte
	PEM         []byte
	Fingerprint string // lower-case hex SHA-256 of DER
	tlsCert     tls.Certificate
}

type certKey struct{ profile, hostname string }

var (
	certMu    sync.Mutex
	certCache = map[certKey]*Cert{}
	keyCache  = map[string]crypto.Signer{} // one key per profile: signing is cheap, RSA keygen is not
)

// TLSConfig returns a server *tls.Config for profile ("modern" or "server2003") with a self-signed
// certificate for hostname (a DNS name or an IP). Certificates are generated once per profile and
// hostname and cached, and all hosts of a profile share one key, so 200 hosts stay cheap.
func TLSConfig(profile, hostname string) (*tls.Config, *Cert, error) {
	cert, err := Certificate(profile, hostname)
	if err != nil {
		return nil, nil, err
	}
	// Client certificates are requested, not required or verified (Auth "certificate" accepts any).
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.tlsCert}, ClientAuth: tls.RequestClientCert}
	switch profile {
	case ProfileModern:
		cfg.MinVersion = tls.VersionTLS12
	case ProfileServer2003:
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		cfg.CipherSuites = Server2003Suites
	}
	return cfg, cert, nil
}

// ClientConfig returns a client *tls.Config that can talk to the profile and trusts only this
// certificate (pinned by its SHA-256 fingerprint). For server2003 it sets MaxVersion TLS 1.0 and the
// RC4/3DES suites explicitly: a default Go client refuses that server.
func (c *Cert) ClientConfig(profile string) *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // replaced by the fingerprint check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("tls: no server certificate")
			}
			sum := sha256.Sum256(raw[0])
			if hex.EncodeToString(sum[:]) != c.Fingerprint {
				return fmt.Errorf("tls: certificate fingerprint %x does not match the pinned one", sum)
			}
			return nil
		},
	}
	if profile == ProfileServer2003 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		cfg.CipherSuites = Server2003Suites
	}
	return cfg
}

// Certificate returns the cached certificate of profile and hostname, creating it on first use.
func Certificate(profile, hostname string) (*Cert, error) {
	if profile != ProfileModern && profile != ProfileServer2003 {
		return nil, fmt.Errorf("tls profile %q: want %q or %q", profile, ProfileModern, ProfileServer2003)
	}
	certMu.Lock()
	defer certMu.Unlock()
	if c := certCache[certKey{profile, hostname}]; c != nil {
		return c, nil
	}
	key := keyCache[profile]
	if key == nil {
		var err error
		if profile == ProfileServer2003 {
			key, err = rsa.GenerateKey(rand.Reader, 1024) // IIS 6-era certificates (SelfSSL) were 1024-bit RSA (inference)
		} else {
			key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			return nil, fmt.Errorf("tls profile %s: generate key: %w", profile, err)
		}
		keyCache[profile] = key
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{hostname}
	}
	if profile == ProfileServer2003 {
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA // makecert/selfssl-era certificates are SHA-1 signed
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tls profile %s: create certificate for %s: %w", profile, hostname, err)
	}
	sum := sha256.Sum256(der)
	c := &Cert{DER: der, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Fingerprint: hex.EncodeToString(sum[:]),
		tlsCert:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	certCache[certKey{profile, hostname}] = c
	return c, nil
}
