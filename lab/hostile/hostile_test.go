package hostile

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/masterzen/winrm"
)

func TestBehaviourNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range Behaviours() {
		if seen[b] || b == "" {
			t.Fatalf("behaviour %q listed twice or empty", b)
		}
		seen[b] = true
	}
}

// TestRedirectOnChosenAddress serves on a loopback address the test chose: a Basic Create is
// answered with a redirect, and only a client that follows it reaches the other path.
func TestRedirectOnChosenAddress(t *testing.T) {
	srv := StartAt(t, "127.0.0.2:0", Redirect, "basic")
	if srv.Host() != "127.0.0.2" || srv.Port() == 0 {
		t.Fatalf("serving on %s:%d", srv.Host(), srv.Port())
	}
	url := "http://" + srv.Host() + ":" + strconv.Itoa(srv.Port()) + "/wsman"
	body := winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(User, Password)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasSuffix(resp.Header.Get("Location"), redirectPath) {
		t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st := srv.Stats(); st.Creates != 1 || st.Redirected != 0 {
		t.Fatalf("stats %+v", st)
	}
	resp, err = client.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if srv.Stats().Redirected != 1 {
		t.Fatal("the redirect target was not counted")
	}
	tr.CloseIdleConnections()
	srv.WaitClosed(t)
}
