package wsman

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/masterzen/winrm"
)

// start serves srv on loopback with per-connection state and returns the listener's host and port.
func start(t testing.TB, srv *Server) (*httptest.Server, string, int) {
	t.Helper()
	if srv.Logf == nil {
		srv.Logf = t.Logf
	}
	ts := httptest.NewUnstartedServer(srv)
	srv.Configure(ts.Config)
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		srv.Reset()
	})
	host, port := splitHostPort(t, ts.Listener.Addr().String())
	return ts, host, port
}

func splitHostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// basicServer is a server offering Basic over plain HTTP (AllowUnencrypted), password "Passw0rd!".
func basicServer() *Server {
	return &Server{Auth: []string{"basic"}, AllowUnencrypted: true, Password: "Passw0rd!"}
}

func mzClient(t testing.TB, host string, port int, user, pass string, params *winrm.Parameters) *winrm.Client {
	t.Helper()
	if params == nil {
		params = winrm.DefaultParameters
	}
	c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 0), user, pass, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBasicManyCommandsOneShell(t *testing.T) {
	srv := basicServer()
	_, host, port := start(t, srv)
	c := mzClient(t, host, port, "Administrator", "Passw0rd!", nil)
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		cmd            string
		stdout, stderr string
		code           int
	}{
		{"echo hello", "hello\r\n", "", 0},
		{"hostname", "WIN2003\r\n", "", 0},
		{"echo out & echo err 1>&2 & exit /b 3", "out\r\n", "err\r\n", 3},
		{"nosuch.exe", "", "'nosuch.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 9009},
		{"exit /b 123", "", "", 123},
		{`cmd /c "echo a" & echo b`, "a\r\nb\r\n", "", 0}, // only the child cmd ends at its line's end
	}
	for _, tt := range tests {
		cmd, err := sh.ExecuteWithContext(ctx, tt.cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.cmd, err)
		}
		var out, errb bytes.Buffer
		done := make(chan struct{})
		go func() { defer close(done); _, _ = out.ReadFrom(cmd.Stdout) }()
		_, _ = errb.ReadFrom(cmd.Stderr)
		cmd.Wait()
		<-done
		if out.String() != tt.stdout || errb.String() != tt.stderr || cmd.ExitCode() != tt.code {
			t.Errorf("%s: got (%q, %q, %d), want (%q, %q, %d)", tt.cmd, out.String(), errb.String(), cmd.ExitCode(), tt.stdout, tt.stderr, tt.code)
		}
		if err := cmd.Close(); err != nil {
			t.Errorf("%s: signal after done: %v", tt.cmd, err)
		}
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.Shells != 0 || st.Commands != int64(len(tests)) {
		t.Errorf("stats: %+v", st)
	}
}
