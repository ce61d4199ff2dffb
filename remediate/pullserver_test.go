package remediate

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPullServer: a granted URL serves its one file, with ranges for resuming; a wrong token,
// a revoked one, another name under a good token and anything else are refused.
func TestPullServer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, x86ENU)
	content := strings.Repeat("0123456789", 1000)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := StartPullServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url, revoke := s.Grant("web01", x86ENU, path, nil)
	get := func(u string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(url); code != 200 || body != content {
		t.Errorf("whole file: %d, %d bytes", code, len(body))
	}
	if code, body := get(url, "Range", "bytes=9990-"); code != 206 || body != content[9990:] {
		t.Errorf("resume: %d %q", code, body)
	}
	served := s.Served()
	if code, _ := get(url, "Range", "bytes=10000-"); code != http.StatusRequestedRangeNotSatisfiable || s.Served() != served {
		t.Errorf("a range past the end: %d, served %d bytes more", code, s.Served()-served)
	}
	token := Token(url)
	base := "http://" + s.URLHost + "/"
	for _, tt := range []struct {
		url  string
		want int
	}{
		{base + strings.Repeat("f", 32) + "/" + x86ENU, 403},
		{base + token + "/secret.txt", 404},
		{base + token + "/../secret.txt", 404},
		{base + token + "/..%2fsecret.txt", 404}, // escaped: the path is decoded before it is split
		{base + token + "/..%5csecret.txt", 404}, // Windows' separator is only a character here
		{base + token + "/" + x86ENU + "/", 404},
		{base + strings.ToUpper(token) + "/" + x86ENU, 403},
		{base + token, 404},
		{base, 404},
	} {
		if code, _ := get(tt.url); code != tt.want {
			t.Errorf("%s: %d, want %d", tt.url, code, tt.want)
		}
	}
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	revoke()
	if code, _ := get(url); code != 403 {
		t.Errorf("revoked token reused: %d, want 403", code)
	}
	if s.Served() < int64(len(content)) {
		t.Errorf("served %d bytes", s.Served())
	}
	if _, err := StartPullServer(":0", nil); err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("wildcard address: %v", err)
	}
}
