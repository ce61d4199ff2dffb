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

// Server2003Suites returns the cipher suites of ProfileServer2003, in Schannel's 2003 preference
// order (RC4 first; docs/facts.md §7). Go implements them but offers none by default, so a client
// must list them.
func Server2003Suites() []uint16 {
	return []uint16{tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}
}

// Cert is a listener certificate, exposed so clients can pin it.
type Cert struct {
	DER         []byte
	PEM         []byte
	Fingerprint string // lower-case hex SHA-256 of DER
	tlsCert     tls.Certificate
}

type certKey struct{ profile, hostname string }

// Certs makes the listeners' certificates: once per profile and hostname, all of a profile
// signed with one key (signing is cheap, RSA key generation is not), so 200 hosts stay cheap.
// Its zero value is ready; a fleet keeps one for all its hosts.
type Certs struct {
	mu    sync.Mutex
	certs map[certKey]*Cert
	keys  map[string]crypto.Signer
}

// TLSConfig returns a server *tls.Config for profile ("modern" or "server2003") with a new
// self-signed certificate for hostname; see Certs.TLSConfig.
func TLSConfig(profile, hostname string) (*tls.Config, *Cert, error) {
	return new(Certs).TLSConfig(profile, hostname)
}

// TLSConfig returns a server *tls.Config for profile ("modern" or "server2003") with a self-signed
// certificate for hostname (a DNS name or an IP).
func (cs *Certs) TLSConfig(profile, hostname string) (*tls.Config, *Cert, error) {
	cert, err := cs.Certificate(profile, hostname)
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
		cfg.CipherSuites = Server2003Suites()
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
		cfg.CipherSuites = Server2003Suites()
	}
	return cfg
}

// Certificate returns the certificate of profile and hostname, creating it on first use.
func (cs *Certs) Certificate(profile, hostname string) (*Cert, error) {
	if profile != ProfileModern && profile != ProfileServer2003 {
		return nil, fmt.Errorf("tls profile %q: want %q or %q", profile, ProfileModern, ProfileServer2003)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.certs == nil {
		cs.certs, cs.keys = map[certKey]*Cert{}, map[string]crypto.Signer{}
	}
	if c := cs.certs[certKey{profile, hostname}]; c != nil {
		return c, nil
	}
	key := cs.keys[profile]
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
		cs.keys[profile] = key
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
	cs.certs[certKey{profile, hostname}] = c
	return c, nil
}
