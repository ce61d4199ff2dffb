package remote

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// startTLS serves srv over HTTPS with a lab TLS profile and returns the certificate to pin.
func startTLS(t *testing.T, srv *wsman.Server, profile string) (string, int, *wsman.Cert) {
	t.Helper()
	cfg, cert, err := wsman.TLSConfig(profile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = cfg
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.Configure(ts.Config)
	ts.StartTLS()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	host, port := hostPort(t, ts.Listener.Addr())
	return host, port, cert
}

func httpsBasic(host string, port int) Target {
	tg := basicTarget(host, port)
	tg.HTTPS, tg.AllowUnencrypted = true, false
	return tg
}

func TestTLSModern(t *testing.T) {
	srv := basicServer()
	srv.AllowUnencrypted = false
	host, port, cert := startTLS(t, srv, wsman.ProfileModern)

	t.Run("unknown CA refused", func(t *testing.T) {
		_, err := Dial(context.Background(), httpsBasic(host, port))
		checkErr(t, err, ClassTLS, ErrTLS)
	})
	t.Run("CA PEM accepted", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.CAPEM = cert.PEM
		s := dial(t, tg)
		if r := run(t, s, "echo tls"); string(r.Stdout) != "tls\r\n" {
			t.Fatalf("stdout %q", r.Stdout)
		}
	})
	t.Run("pinned fingerprint accepted", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.Fingerprint = strings.ToUpper(cert.Fingerprint)
		run(t, dial(t, tg), "echo pinned")
	})
	t.Run("wrong fingerprint refused", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.Fingerprint = strings.Repeat("00", 32)
		_, err := Dial(context.Background(), tg)
		checkErr(t, err, ClassTLS, ErrTLS)
		if !errors.Is(err, errPinMismatch) {
			t.Fatalf("not a pin mismatch: %v", err)
		}
	})
}

func TestTLSServer2003(t *testing.T) {
	srv := basicServer()
	srv.AllowUnencrypted = false
	host, port, cert := startTLS(t, srv, wsman.ProfileServer2003)

	t.Run("refused by default even when pinned", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.Fingerprint = cert.Fingerprint
		_, err := Dial(context.Background(), tg)
		checkErr(t, err, ClassTLS, ErrTLS)
	})
	t.Run("legacy without pin is a config error", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.LegacyTLS = true
		_, err := Dial(context.Background(), tg)
		checkErr(t, err, ClassConfig, ErrConfig)
	})
	t.Run("legacy with pin accepted", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.LegacyTLS = true
		tg.TLS.Fingerprint = cert.Fingerprint
		if w := tg.Warnings(); len(w) != 1 {
			t.Fatalf("warnings %q", w)
		}
		if r := run(t, dial(t, tg), "hostname"); string(r.Stdout) != "WIN2003\r\n" {
			t.Fatalf("stdout %q", r.Stdout)
		}
	})
	t.Run("legacy with wrong pin refused", func(t *testing.T) {
		tg := httpsBasic(host, port)
		tg.TLS.LegacyTLS = true
		tg.TLS.Fingerprint = strings.Repeat("ab", 32)
		_, err := Dial(context.Background(), tg)
		checkErr(t, err, ClassTLS, ErrTLS)
	})
}
