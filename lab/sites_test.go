package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
)

// get requests a site of a lab host with a Host header ("" = the address) and returns the
// status, or 0 when the connection is refused or reset.
func get(t *testing.T, addr, host string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// siteAddr is the address of a host's site with that host header ("" = the default site).
func siteAddr(t *testing.T, h *lab.Host, header string) string {
	t.Helper()
	for _, s := range h.Sites {
		addr, hdr, _ := strings.Cut(s, " ")
		if hdr == header {
			return addr
		}
	}
	t.Fatalf("%s has no site for %q: %v", h.Addr, header, h.Sites)
	return ""
}

// TestSitesServeHTTP: each host serves its IIS sites over HTTP on its own address: 200 from a
// healthy host (host headers as the metabase binds them, 400 for an unknown one); on
// mismatched binaries each first request starts a worker that dies (503, W3SVC 1009) until
// Rapid-Fail Protection disables the pool (1002); a stopped pool is 503 at once; with W3SVC
// stopped nothing answers. The metabase shows the ports actually served.
func TestSitesServeHTTP(t *testing.T) {
	clock := win2003.NewManualClock(win2003.DefaultStart)
	// seed 3's healthy host has an intranet site beside the default one
	f, err := lab.Start(context.Background(), lab.Config{Hosts: 1, Scenario: "healthy", Seed: 3, Port: -1, Password: "pw", Clock: clock, FirstAddr: mustAddr("127.0.60.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := f.Hosts()[0]
	def := siteAddr(t, h, "")
	if st := get(t, def, ""); st != 200 {
		t.Errorf("healthy default site: %d", st)
	}
	if st := get(t, siteAddr(t, h, "intranet"), "intranet"); st != 200 {
		t.Errorf("healthy intranet site: %d", st)
	}
	if st := get(t, siteAddr(t, h, "intranet"), "nosuch"); st != 200 {
		t.Errorf("an unknown host name on a port with a catch-all site: %d", st)
	}
	var out bytes.Buffer
	h.Model.Exec(context.Background(), `wmic /namespace:\\root\MicrosoftIISv2 path IIsWebServerSetting get ServerBindings /format:list < NUL`, nil, &out, io.Discard)
	_, port, _ := net.SplitHostPort(def)
	if !strings.Contains(out.String(), `Port = "`+port+`";`) {
		t.Errorf("the metabase does not show the served port %s: %q", port, out.String())
	}
	h.Model.Exec(context.Background(), `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool where "Name='W3SVC/AppPools/DefaultAppPool'" call Stop < NUL`, nil, io.Discard, io.Discard)
	if st := get(t, def, ""); st != 503 {
		t.Errorf("stopped pool: %d", st)
	}
	h.Model.Exec(context.Background(), `net stop w3svc`, nil, io.Discard, io.Discard)
	if st := get(t, def, ""); st != 0 {
		t.Errorf("W3SVC stopped: %d, want no answer", st)
	}

	g, err := lab.Start(context.Background(), lab.Config{Hosts: 1, Scenario: "mismatch", Seed: 3, Port: -1, Password: "pw", Clock: clock, FirstAddr: mustAddr("127.0.61.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m := g.Hosts()[0]
	addr := siteAddr(t, m, "")
	for i := 1; i <= 5; i++ {
		if st := get(t, addr, ""); st != 503 {
			t.Errorf("request %d to a mismatched host: %d", i, st)
		}
		clock.Advance(10 * time.Second)
	}
	var codes []int
	for _, e := range m.Model.Events("W3SVC") {
		codes = append(codes, e.Code)
	}
	if len(codes) != 6 || codes[4] != 1009 || codes[5] != 1002 {
		t.Errorf("events after five failed starts: %v, want five 1009 then 1002", codes)
	}
	if st := get(t, addr, ""); st != 503 || len(m.Model.Events("W3SVC")) != 6 {
		t.Errorf("disabled pool: %d, %d events", st, len(m.Model.Events("W3SVC")))
	}
}

// TestManifestOutcomes: the manifest gives each host the outcome a correct remediation
// reaches, in the JSON shape documented on Manifest.
func TestManifestOutcomes(t *testing.T) {
	names := win2003.MixScenarios()
	f, err := lab.Start(context.Background(), lab.Config{Hosts: len(names), Scenario: "mix", Seed: 2, Port: -1, Password: "pw", FirstAddr: mustAddr("127.0.62.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{
		"affected": "remediated", "mismatch": "remediated", "x64": "remediated", "spanish": "remediated",
		"winnt-root": "remediated", "kb973917": "remediated", "pending-reboot": "remediated", "no-powershell": "remediated",
		"flaky": "remediated", "at-risk": "not-planned", "healthy": "not-planned", "other-cause": "not-planned",
		"sp1": "not-planned", "no-iis": "not-planned", "installer-fails": "failed", "never-returns": "failed",
	}
	var buf bytes.Buffer
	if err := f.WriteManifest(&buf); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Hosts []map[string]any `json:"hosts"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, h := range raw.Hosts {
		sc := h["scenario"].(string)
		if w, ok := want[sc]; !ok || h["outcome"] != w {
			t.Errorf("%s: outcome %v, want %q", sc, h["outcome"], w)
		}
		switch sc {
		case "installer-fails":
			if h["failed_step"] != "install" {
				t.Errorf("installer-fails: %v", h)
			}
		case "never-returns":
			if h["failed_step"] != "reboot" {
				t.Errorf("never-returns: %v", h)
			}
		case "at-risk":
			if h["outcome_with_at_risk"] != "remediated" || !strings.Contains(h["reason"].(string), "--include at-risk") {
				t.Errorf("at-risk: %v", h)
			}
		case "no-iis":
			if h["sites"] != nil {
				t.Errorf("no-iis has sites: %v", h["sites"])
			}
		}
	}
	if len(raw.Hosts) != len(want) {
		t.Errorf("%d hosts, want every scenario: %d", len(raw.Hosts), len(want))
	}
}

// TestWriteInstallers: the fleet's installer folder holds the images its hosts need under
// their catalogue names, and SHA256SUMS in sha256sum's format; the manifest names the share.
func TestWriteInstallers(t *testing.T) {
	dir := t.TempDir()
	f, err := lab.Start(context.Background(), lab.Config{Hosts: 2, Scenario: "spanish", Port: -1, Password: "pw",
		FirstAddr: mustAddr("127.0.63.1"), InstallersDir: dir, InstallerSize: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs := f.Images()
	if len(imgs) != 1 || imgs[0].Name != "WindowsServer2003-KB914961-SP2-x86-ESN.exe" || imgs[0].Size != 3<<20 {
		t.Fatalf("images %+v", imgs)
	}
	data, err := os.ReadFile(filepath.Join(dir, imgs[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != imgs[0].SHA256 || !bytes.HasPrefix(data, []byte("MZ")) {
		t.Errorf("installer file does not match its image")
	}
	sums, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if string(sums) != imgs[0].SHA256+"  "+imgs[0].Name+"\n" {
		t.Errorf("SHA256SUMS %q", sums)
	}
	m := f.Manifest()
	if m.Share != `\\LABSHARE\installers` || len(m.Installers) != 1 || m.Installers[0].SHA256 != imgs[0].SHA256 {
		t.Errorf("manifest share %q installers %+v", m.Share, m.Installers)
	}
	// written again: the same files, SHA256SUMS likewise
	st, _ := os.Stat(filepath.Join(dir, imgs[0].Name))
	if err := lab.WriteInstallers(dir, imgs); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(filepath.Join(dir, imgs[0].Name)); !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("an installer already there was written again")
	}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) != 2 || len(f[0]) != 64 {
			t.Errorf("SHA256SUMS line %q", sc.Text())
		}
	}
}

// TestBigInstallerStreams: a 400 MiB installer is written to disk and pulled by a host without
// either holding its bytes: the host knows it by size and hash.
func TestBigInstallerStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 400 MiB a few times")
	}
	img := win2003.NewInstallerImage("x86", "0409", 400<<20)
	dir := t.TempDir()
	if err := lab.WriteInstallers(dir, []win2003.InstallerImage{img}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 1, Clock: win2003.NewManualClock(win2003.DefaultStart), Installers: []win2003.InstallerImage{img}})
	if err != nil {
		t.Fatal(err)
	}
	part := `C:\iisremedy\` + img.SHA256 + ".part"
	run := func(cmd string) string {
		var out, errb bytes.Buffer
		if rc := h.Exec(context.Background(), cmd, nil, &out, &errb); rc != 0 {
			t.Fatalf("%s: rc=%d %q", cmd, rc, errb.String())
		}
		return out.String()
	}
	run(`mkdir C:\iisremedy`)
	run(`powershell -NoProfile -NonInteractive -InputFormat None -ExecutionPolicy Bypass -Command "$ErrorActionPreference='Stop';$f=[IO.File]::Open('` + part + `','OpenOrCreate','Write');$o=$f.Length;[void]$f.Seek($o,'Begin');$q=[Net.WebRequest]::Create('http://` + ln.Addr().String() + `/` + img.Name + `');if($o -gt 0){$q.AddRange([int]$o)};$s=$q.GetResponse().GetResponseStream();$b=New-Object byte[] 65536;while(($n=$s.Read($b,0,$b.Length)) -gt 0){$f.Write($b,0,$n)};$s.Close();$f.Close()" < NUL`)
	if out := run(`powershell -NoProfile -NonInteractive -InputFormat None -ExecutionPolicy Bypass -Command "$s=[IO.File]::OpenRead('` + part + `');$h=[Security.Cryptography.SHA256]::Create().ComputeHash($s);$s.Close();[BitConverter]::ToString($h) -replace '-',''" < NUL`); out != strings.ToUpper(img.SHA256)+"\r\n" {
		t.Errorf("hash of the pulled 400 MiB image %q", out)
	}
}
