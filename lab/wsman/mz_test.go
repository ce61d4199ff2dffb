package wsman

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

func TestStdin1MiBThroughFindstr(t *testing.T) {
	srv := basicServer()
	_, host, port := start(t, srv)
	input := make([]byte, 1<<20)
	_, _ = rand.Read(input)

	// masterzen's Send chunk is EnvelopeSize-1000 raw bytes; 100 KiB keeps the base64 envelope under
	// the server's 150 KB (docs/winrm-protocol.md §1.6, §6).
	params := winrm.NewParameters("PT60S", "en-US", 100*1024)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", params)
	var stdout, stderr bytes.Buffer
	code, err := c.RunWithContextWithInput(context.Background(), `findstr "^"`, &stdout, &stderr, bytes.NewReader(input))
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, err %v", code, err)
	}
	if !bytes.Equal(stdout.Bytes(), input) {
		t.Fatalf("stdout: %d bytes, want the %d input bytes", stdout.Len(), len(input))
	}
	st := srv.Stats()
	if st.TooLarge != 0 {
		t.Errorf("%d requests got 413", st.TooLarge)
	}
	if st.Sends < 10 {
		t.Errorf("only %d Sends for 1 MiB", st.Sends)
	}
	t.Logf("1 MiB stdin: %+v", st)
}

func TestStdinDefaultParametersGet413(t *testing.T) {
	srv := basicServer()
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil) // EnvelopeSize 153600 → 204 784-byte Send
	var stdout, stderr bytes.Buffer
	_, _ = c.RunWithContextWithInput(context.Background(), `findstr "^"`, &stdout, &stderr, bytes.NewReader(make([]byte, 200_000)))
	if st := srv.Stats(); st.TooLarge == 0 {
		t.Fatalf("no 413: %+v", st)
	}
	if stdout.Len() == 200_000 {
		t.Error("the oversized stdin arrived anyway")
	}
}

// gatedHost runs "wait": it blocks until release is closed, then prints "released".
type gatedHost struct{ release chan struct{} }

func (h *gatedHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	select {
	case <-h.release:
		fmt.Fprint(stdout, "released\r\n")
		return 7
	case <-ctx.Done():
		return exitTerminated
	}
}

func TestReceiveTimedOutThenRetry(t *testing.T) {
	h := &gatedHost{release: make(chan struct{})}
	var receives atomic.Int32
	srv := basicServer()
	srv.Host = h
	// Receives 1 and 2 long-poll 1 ms and time out; the 3rd releases the command.
	srv.ReceiveTimeout = func(time.Duration) time.Duration {
		if receives.Add(1) == 3 {
			close(h.release)
		}
		return time.Millisecond
	}
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	stdout, stderr, code, err := c.RunWithContextWithString(context.Background(), "wait", "")
	if err != nil || code != 7 || stdout != "released\r\n" || stderr != "" {
		t.Fatalf("got %q %q %d %v", stdout, stderr, code, err)
	}
	if st := srv.Stats(); st.TimedOut < 2 {
		t.Errorf("want ≥2 TimedOut faults, stats %+v", st)
	}
}

func TestTimeoutOnNthReceive(t *testing.T) {
	srv := basicServer()
	srv.TimeoutOnReceive = 1
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	stdout, _, code, err := c.RunWithContextWithString(context.Background(), "echo after timeout", "")
	if err != nil || code != 0 || stdout != "after timeout\r\n" {
		t.Fatalf("got %q %d %v", stdout, code, err)
	}
	if st := srv.Stats(); st.TimedOut != 1 || st.Receives < 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestCancelMidCommand(t *testing.T) {
	srv := basicServer()
	srv.Second = time.Hour // ping would take 999 hours unless terminated
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := sh.ExecuteWithContext(ctx, "ping -n 1000 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := io.ReadAtLeast(cmd.Stdout, buf, 10); err != nil { // the first reply line is out
		t.Fatal(err)
	}
	cancel() // masterzen sends Signal terminate
	go func() { _, _ = io.Copy(io.Discard, cmd.Stdout) }()
	go func() { _, _ = io.Copy(io.Discard, cmd.Stderr) }()
	cmd.Wait()
	if st := srv.Stats(); st.Signals < 1 {
		t.Errorf("no Signal: %+v", st)
	}
	// The shell still works after the termination.
	again, err := sh.ExecuteWithContext(context.Background(), "echo again")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	go func() { _, _ = io.Copy(io.Discard, again.Stderr) }()
	_, _ = out.ReadFrom(again.Stdout)
	again.Wait()
	if out.String() != "again\r\n" || again.ExitCode() != 0 {
		t.Errorf("next command: %q exit %d", out.String(), again.ExitCode())
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
}

// soapPost sends one SOAP body with Basic credentials and returns the status, headers and body.
func soapPost(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth("Administrator", "Passw0rd!")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func wantFault(t *testing.T, what string, status int, h http.Header, body string, parts ...string) {
	t.Helper()
	if status != 500 || h.Get("Content-Type") != "application/soap+xml;charset=UTF-8" {
		t.Errorf("%s: status %d, content type %q", what, status, h.Get("Content-Type"))
	}
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s: body lacks %q:\n%s", what, p, body)
		}
	}
}

func TestShellQuota(t *testing.T) {
	srv := basicServer()
	ts, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	var shells []*winrm.Shell
	for i := 0; i < 5; i++ {
		sh, err := c.CreateShell()
		if err != nil {
			t.Fatalf("shell %d: %v", i+1, err)
		}
		shells = append(shells, sh)
	}
	// masterzen's Basic transport returns 500 fault bodies as successes (http.go Post sets err in a
	// defer on unnamed results), and CreateShell then yields an empty ShellId: check the wire instead.
	status, h, body := soapPost(t, ts.URL+"/wsman", winrm.NewOpenShellRequest(ts.URL+"/wsman", winrm.DefaultParameters).String())
	wantFault(t, "6th shell", status, h, body, `<s:Value>w:QuotaLimit</s:Value>`, `Code="2150859173"`,
		"maximum number of 5 concurrent shells")
	if st := srv.Stats(); st.Shells != 5 {
		t.Errorf("%d shells open", st.Shells)
	}
	_ = shells[0].Close()
	if _, err := c.CreateShell(); err != nil || srv.Stats().Shells != 5 {
		t.Fatalf("after closing one: %v", err)
	}
}

func TestUnknownShellAndReset(t *testing.T) {
	srv := basicServer()
	ts, host, port := start(t, srv)
	url := ts.URL + "/wsman"
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	_, err := c.NewShell("0B1C9A2D-0000-0000-0000-000000000000").ExecuteWithContext(context.Background(), "echo x")
	var ece *winrm.ExecuteCommandError
	if !errors.As(err, &ece) || !strings.Contains(ece.Body, `Code="2150858843"`) || !strings.Contains(ece.Body, "w:InvalidSelectors") {
		t.Fatalf("unknown shell: %v", err)
	}
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String())
	id, _ := winrm.ParseOpenShellResponse(body)
	if status != 200 || id == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	srv.Reset() // the host rebooted
	if _, err := sh.ExecuteWithContext(context.Background(), "echo x"); !errors.As(err, &ece) || !strings.Contains(ece.Body, "2150858843") {
		t.Fatalf("after reset: %v", err)
	}
	status, h, body := soapPost(t, url, winrm.NewDeleteShellRequest(url, id, winrm.DefaultParameters).String())
	wantFault(t, "delete after reset", status, h, body, "w:InvalidSelectors", `Code="2150858843"`,
		"faultDetail/UnexpectedSelectors", "ShellId "+id+" failed because the shell was not found")
}

func TestBasicRefused(t *testing.T) {
	tests := []struct {
		name string
		srv  *Server
		user string
		pass string
	}{
		{"wrong password", basicServer(), "Administrator", "wrong"},
		{"wrong domain", basicServer(), `CONTOSO\Administrator`, "Passw0rd!"},
		{"basic over http", &Server{Auth: []string{"basic"}, Password: "Passw0rd!"}, "Administrator", "Passw0rd!"},
		{"basic disabled", &Server{AllowUnencrypted: true, Password: "Passw0rd!"}, "Administrator", "Passw0rd!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, host, port := start(t, tt.srv)
			_, err := mzClient(t, host, port, tt.user, tt.pass, nil).CreateShell()
			// A Windows 401 has no SOAP content type: masterzen's famous "401 - invalid content type" (§1.5).
			if err == nil || !strings.Contains(err.Error(), "401 - invalid content type") {
				t.Fatalf("err %v", err)
			}
		})
	}
	// Domain-qualified forms of the local account are accepted.
	srv := basicServer()
	_, host, port := start(t, srv)
	for _, u := range []string{`WIN2003\administrator`, `.\Administrator`, "Administrator@win2003"} {
		if _, _, _, err := mzClient(t, host, port, u, "Passw0rd!", nil).RunWithContextWithString(context.Background(), "echo ok", ""); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestDroppedConnectionAndInjected500(t *testing.T) {
	srv := basicServer()
	srv.DropConnection = func(n int64, r *http.Request) bool { return n == 3 } // Create, Command, then the 1st Receive
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	var out, errb bytes.Buffer
	code, err := c.RunWithContext(context.Background(), "echo x", &out, &errb)
	if err == nil || code != 16001 { // masterzen maps EOF to 16001 (docs/winrm-protocol.md §1.4)
		t.Errorf("drop: code %d err %v", code, err)
	}
	if st := srv.Stats(); st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}

	srv2 := basicServer()
	srv2.Fail500On = 1
	ts, _, _ := start(t, srv2)
	status, h, body := soapPost(t, ts.URL+"/wsman", winrm.NewOpenShellRequest(ts.URL+"/wsman", winrm.DefaultParameters).String())
	wantFault(t, "injected 500", status, h, body, "w:InternalError")
	status, _, _ = soapPost(t, ts.URL+"/wsman", winrm.NewOpenShellRequest(ts.URL+"/wsman", winrm.DefaultParameters).String())
	if status != 200 {
		t.Errorf("second request: %d", status)
	}
}

// pinnedTransport is a masterzen Transporter using Basic over a given TLS client config (masterzen's own
// transport cannot set MaxVersion or cipher suites, so it cannot reach the server2003 profile).
type pinnedTransport struct {
	tls  *tls.Config
	url  string
	hc   *http.Client
	user string
	pass string
}

func (p *pinnedTransport) Transport(e *winrm.Endpoint) error {
	p.url = fmt.Sprintf("https://%s:%d/wsman", e.Host, e.Port)
	p.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: p.tls}}
	return nil
}

func (p *pinnedTransport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	req, _ := http.NewRequest("POST", p.url, strings.NewReader(m.String()))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(p.user, p.pass)
	resp, err := p.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("http error %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

func TestHTTPSProfiles(t *testing.T) {
	for _, profile := range []string{ProfileModern, ProfileServer2003} {
		t.Run(profile, func(t *testing.T) {
			srv := &Server{Auth: []string{"basic"}, Password: "Passw0rd!"} // HTTPS: Basic allowed without AllowUnencrypted
			cfg, cert, err := TLSConfig(profile, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewUnstartedServer(srv)
			ts.TLS = cfg
			ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
			srv.Configure(ts.Config)
			ts.StartTLS()
			t.Cleanup(ts.Close)
			host, port := splitHostPort(t, ts.Listener.Addr().String())

			// A default Go client: modern works with the certificate as CA; server2003 is refused.
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(cert.PEM)
			def := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			_, err = def.Post(ts.URL+"/wsman", "application/soap+xml;charset=UTF-8", strings.NewReader(""))
			if profile == ProfileServer2003 && err == nil {
				t.Fatal("a default Go client reached the server2003 profile")
			}
			if profile == ProfileModern && err != nil {
				t.Fatalf("default client: %v", err)
			}

			params := *winrm.DefaultParameters
			params.TransportDecorator = func() winrm.Transporter {
				return &pinnedTransport{tls: cert.ClientConfig(profile), user: "Administrator", pass: "Passw0rd!"}
			}
			c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, port, true, false, nil, nil, nil, 0), "Administrator", "Passw0rd!", &params)
			if err != nil {
				t.Fatal(err)
			}
			stdout, _, code, err := c.RunWithContextWithString(context.Background(), "hostname", "")
			if err != nil || code != 0 || stdout != "WIN2003\r\n" {
				t.Fatalf("got %q %d %v", stdout, code, err)
			}
			if profile == ProfileModern { // masterzen's own transport with the certificate as CA
				c2, _ := winrm.NewClientWithParameters(winrm.NewEndpoint(host, port, true, false, cert.PEM, nil, nil, 0), "Administrator", "Passw0rd!", winrm.DefaultParameters)
				if _, _, _, err := c2.RunWithContextWithString(context.Background(), "echo tls", ""); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentShells runs several clients at once (go test -race exercises the locking).
func TestConcurrentShells(t *testing.T) {
	srv := basicServer()
	_, host, port := start(t, srv)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil) // may t.Fatal: not in the goroutine
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, _, _, err := c.RunWithContextWithString(context.Background(), fmt.Sprintf("echo %d", i), "")
			if err != nil || out != fmt.Sprintf("%d\r\n", i) {
				t.Errorf("%d: %q %v", i, out, err)
			}
		}(i)
	}
	wg.Wait()
}

func TestFaultKnobs(t *testing.T) {
	// DropEveryN: every 2nd request loses its connection; Latency delays every reply.
	srv := basicServer()
	srv.DropEveryN = 2
	srv.Latency = time.Millisecond
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	create := winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String()
	if status, _, _ := soapPost(t, url, create); status != 200 {
		t.Fatalf("request 1: %d", status)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(create))
	req.SetBasicAuth("Administrator", "Passw0rd!")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request 2 was not dropped: %d", resp.StatusCode)
	}
	// Fail500Rate 1: every request is an injected fault.
	srv2 := basicServer()
	srv2.Fail500Rate = 1
	ts2, _, _ := start(t, srv2)
	status, h, body := soapPost(t, ts2.URL+"/wsman", create)
	wantFault(t, "rate", status, h, body, "w:InternalError")
	if st := srv2.Stats(); st.Faults != 1 || st.Shells != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Without ConnContext the NTLM context is keyed by RemoteAddr (one per live TCP connection).
func TestNTLMWithoutConnContext(t *testing.T) {
	srv := ntlmServer()
	srv.Logf = t.Logf
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	host, port := splitHostPort(t, ts.Listener.Addr().String())
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", encryptionParams(t))
	stdout, _, code, err := c.RunWithContextWithString(context.Background(), "echo fallback", "")
	if err != nil || code != 0 || stdout != "fallback\r\n" {
		t.Fatalf("got %q %d %v", stdout, code, err)
	}
}

func TestClientCertificate(t *testing.T) {
	srv := &Server{Auth: []string{"certificate"}}
	cfg, _, err := TLSConfig(ProfileModern, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = cfg
	srv.Configure(ts.Config)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	host, port := splitHostPort(t, ts.Listener.Addr().String())

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Administrator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})

	params := *winrm.DefaultParameters
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientAuthRequest{} }
	c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, port, true, true, nil, certPEM, keyPEM, 0), "", "", &params)
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, code, err := c.RunWithContextWithString(context.Background(), "echo cert", "")
	if err != nil || code != 0 || stdout != "cert\r\n" {
		t.Fatalf("got %q %d %v", stdout, code, err)
	}
	// Without a certificate the same header gets 401.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", ts.URL+"/wsman", strings.NewReader(winrm.NewOpenShellRequest(ts.URL+"/wsman", winrm.DefaultParameters).String()))
	req.Header.Set("Authorization", certificateAuthz)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no client certificate: %d", resp.StatusCode)
	}
}
