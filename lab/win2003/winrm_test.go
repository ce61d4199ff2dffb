package win2003_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/masterzen/winrm"
)

var _ wsman.Host = (*win2003.Host)(nil)

// winrmRig builds a host of the scenario on a manual clock behind a real WinRM listener
// (lab/wsman, Basic over HTTP) the way the fleet does: while the host is down the listener drops
// every connection, and going down resets the server's shells and closes its connections, within
// the power change (Options.OnPowerChange), before anyone waiting on PowerChanged wakes.
func winrmRig(t *testing.T, scenario string, seed int64) *rig {
	t.Helper()
	var srv *wsman.Server
	var ts *httptest.Server
	r := newRig(t, scenario, seed, func(up bool) {
		if !up {
			srv.Reset()
			ts.CloseClientConnections()
		}
	})
	h := r.h
	srv = &wsman.Server{Host: h, Hostname: h.ComputerName(), Auth: []string{"basic"}, AllowUnencrypted: true, Password: "Passw0rd!"}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !h.Up() {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		srv.ServeHTTP(w, req)
	})
	ts = httptest.NewUnstartedServer(handler)
	srv.Configure(ts.Config)
	// One connection a request: a connection kept alive across the power-off would be closed
	// under the client, whose next request would fail whenever it picked it up before noticing.
	ts.Config.SetKeepAlivesEnabled(false)
	ts.Start()
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close(); srv.Reset() })
	hostS, portS, _ := net.SplitHostPort(ts.Listener.Addr().String())
	port, _ := strconv.Atoi(portS)
	params := winrm.NewParameters("PT60S", "en-US", 100*1024)
	c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(hostS, port, false, false, nil, nil, nil, 0), "Administrator", "Passw0rd!", params)
	if err != nil {
		t.Fatal(err)
	}
	r.run = func(t *testing.T, cmdline string, stdin []byte) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		var code int
		var err error
		if stdin != nil {
			code, err = c.RunWithContextWithInput(context.Background(), cmdline, &out, &errb, bytes.NewReader(stdin))
		} else {
			code, err = c.RunWithContext(context.Background(), cmdline, &out, &errb)
		}
		if err != nil { // a transport error shows as rc -1
			return out.String(), "winrm: " + err.Error(), -1
		}
		return out.String(), errb.String(), code
	}
	return r
}

// TestWinRMProbeAndRemediation runs the probe and the whole remediation over real WinRM
// (lab/wsman + masterzen/winrm): affected + reboot heals, without reboot stays broken, other-cause
// stays broken.
func TestWinRMProbeAndRemediation(t *testing.T) {
	cases := []struct {
		scenario string
		reboot   bool
		wantRC   string
		healed   bool
	}{
		{"affected", true, "3010", true},
		{"affected", false, "3010", false},
		{"other-cause", true, "0", false},
	}
	for _, tc := range cases {
		t.Run(tc.scenario+"/reboot="+strconv.FormatBool(tc.reboot), func(t *testing.T) {
			r := winrmRig(t, tc.scenario, 21)
			out, _, rc := r.run(t, checks.ProbeCommand(), nil)
			if rc != 0 {
				t.Fatalf("probe over WinRM: rc=%d", rc)
			}
			checkCapture(t, tc.scenario, "winrm", []byte(out))
			rcs, n, warm := remediate(t, r, tc.reboot)
			if rcs != tc.wantRC {
				t.Errorf("installer exit code %s, want %s", rcs, tc.wantRC)
			}
			if healed := n == 0 && warm == "200"; healed != tc.healed {
				t.Errorf("healed=%v (new 1009: %d, warm-up %s), want %v", healed, n, warm, tc.healed)
			}
		})
	}
}
