package win2003_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

// The staging contract (remediate's stage step) over the host model: the work folder listing,
// the push by PowerShell and by findstr + certutil, the pull by PowerShell and by the VBScript,
// the proofs, the share, a full disk.

const work = `C:\iisremedy`

func stageHost(t *testing.T, scenario string, mod func(*win2003.Options)) *win2003.Host {
	t.Helper()
	opts := win2003.Options{Seed: 5, Clock: win2003.NewManualClock(win2003.DefaultStart), RequestInterval: -1}
	if mod != nil {
		mod(&opts)
	}
	h, err := win2003.NewScenario(scenario, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustRun(t *testing.T, h *win2003.Host, cmdline string, stdin []byte) string {
	t.Helper()
	out, e, rc := exec(t, h, cmdline, stdin)
	if rc != 0 {
		t.Fatalf("%s: rc=%d out=%q err=%q", cmdline, rc, out, e)
	}
	return out
}

// TestForListsSizesAndNames: the engine's listing prints "SIZE NAME" per file of the folder in
// the folder's order, nothing for an empty or missing folder; the other FOR modifiers too.
func TestForListsSizesAndNames(t *testing.T) {
	h := stageHost(t, "affected", nil)
	if out, e, rc := exec(t, h, listCmd(work), nil); out != "" || e != "" || rc != 0 {
		t.Errorf("missing folder: %q %q rc=%d", out, e, rc)
	}
	mustRun(t, h, `if not exist "`+work+`\" mkdir "`+work+`"`, nil)
	mustRun(t, h, `if not exist "`+work+`\" mkdir "`+work+`"`, nil) // a second time: nothing to do, exit 0
	if out, _, rc := exec(t, h, listCmd(work), nil); out != "" || rc != 0 {
		t.Errorf("empty folder: %q rc=%d", out, rc)
	}
	mustRun(t, h, `findstr "^" > "`+work+`\b.part"`, []byte("0123456789\r\n"))
	mustRun(t, h, `findstr "^" > "`+work+`\A.b64"`, []byte("abc\r\n"))
	if out := mustRun(t, h, listCmd(work), nil); out != "5 A.b64\r\n12 b.part\r\n" {
		t.Errorf("listing %q", out)
	}
	out := mustRun(t, h, `for %F in ("`+work+`\b.*") do @echo [%~fF] [%~dF] [%~pF] [%~nF] [%~xF] [%~F] [%F]`, nil)
	if out != `[C:\iisremedy\b.part] [C:] [\iisremedy\] [b] [.part] [C:\iisremedy\b.part] ["C:\iisremedy\b.part"]`+"\r\n" {
		t.Errorf("modifiers: %q", out)
	}
	// a batch file doubles the percent signs
	mustRun(t, h, `findstr "^" > "`+work+`\list.cmd"`, crlf("@echo off\nfor %%F in (\""+work+"\\*.part\") do echo %%~zF %%~nxF\n"))
	if out := mustRun(t, h, work+`\list.cmd`, nil); out != "12 b.part\r\n" {
		t.Errorf("batch listing %q", out)
	}
}

// TestPushPowerShellStreams: the decoder applies each base64 line as it arrives; killed
// mid-line it leaves every whole line written and nothing of the cut one; resumed with
// SetLength it goes on from there and the file proves to be the installer.
func TestPushPowerShellStreams(t *testing.T) {
	h := stageHost(t, "affected", nil)
	img := win2003.NewInstallerImage("x86", "0409", 0)
	part := work + `\` + img.SHA256 + ".part"
	mustRun(t, h, `mkdir `+work, nil)
	const raw = 48 << 10
	lines := strings.SplitAfter(string(pushLines(img.Open(), raw)), "\r\n")

	pr, pw := io.Pipe()
	ctx, kill := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- h.Exec(ctx, psDecodeCmd(part, 0), pr, io.Discard, io.Discard) }()
	// A pipe write returns once the decoder has read it; the decoder reads again only when it
	// has applied every whole line it holds. So once the start of line 4 is taken, lines 1-3
	// are on disk.
	if _, err := io.WriteString(pw, lines[0]+lines[1]+lines[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, lines[3][:100]); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, h, listCmd(work), nil); out != fmt.Sprintf("%d %s.part\r\n", 3*raw, img.SHA256) {
		t.Errorf("while streaming: %q, want three lines' bytes", out)
	}
	kill() // the shell is deleted: the process dies mid-line
	pw.CloseWithError(errors.New("killed"))
	if rc := <-done; rc == 0 {
		t.Errorf("killed decoder exit code 0")
	}
	if out := mustRun(t, h, listCmd(work), nil); out != fmt.Sprintf("%d %s.part\r\n", 3*raw, img.SHA256) {
		t.Errorf("after the kill: %q, want the three whole lines only", out)
	}
	// resume from the third line: SetLength(2 lines) cuts, the rest is appended
	rest := strings.Join(lines[2:], "")
	if out, e, rc := exec(t, h, psDecodeCmd(part, 2*raw), []byte(rest)); rc != 0 {
		t.Fatalf("resumed decoder: rc=%d %q %q", rc, out, e)
	}
	if out := mustRun(t, h, psHashCmd(part), nil); out != strings.ToUpper(img.SHA256)+"\r\n" {
		t.Errorf("hash after resume %q, want %s", out, img.SHA256)
	}
	// bad base64: .NET's exception, as PowerShell 2.0 prints it; the lines before stay
	_, e, rc := exec(t, h, psDecodeCmd(work+`\bad.part`, 0), []byte(lines[0]+"!!!!\r\n"))
	if rc != 1 || !strings.HasPrefix(e, `Exception calling "FromBase64String" with "1" argument(s): "Invalid character in a Base-64 string."`+"\r\nAt line:1 char:") ||
		!strings.Contains(e, "FromBase64String <<<< ($l)") || !strings.Contains(e, "FullyQualifiedErrorId : DotNetMethodException") {
		t.Errorf("bad base64: rc=%d %q", rc, e)
	}
	if out := mustRun(t, h, `for %F in ("`+work+`\bad.part") do @echo %~zF`, nil); out != strconv.Itoa(raw)+"\r\n" {
		t.Errorf("bad.part size %q, want one line's bytes", out)
	}
}

// TestPushCertutil: findstr appends base64 lines as they come; certutil -f -decode writes the
// binary over an existing file, which without -f is an error.
func TestPushCertutil(t *testing.T) {
	h := stageHost(t, "no-powershell", nil)
	img := win2003.NewInstallerImage("x86", "0409", 0)
	b64, part := work+`\`+img.SHA256+".b64", work+`\`+img.SHA256+".part"
	mustRun(t, h, `mkdir `+work, nil)
	text := pushLines(img.Open(), 48<<10)
	half := bytes.Index(text[len(text)/2:], []byte("\r\n")) + len(text)/2 + 2
	mustRun(t, h, `findstr "^" >> "`+b64+`"`, text[:half])
	mustRun(t, h, `findstr "^" >> "`+b64+`"`, text[half:])
	mustRun(t, h, `echo old> "`+part+`"`, nil)
	out, _, rc := exec(t, h, `certutil -decode "`+b64+`" "`+part+`"`, nil)
	if rc != -2147024816 || out != "CertUtil: -decode command FAILED: 0x80070050 (WIN32: 80)\r\nCertUtil: The file exists.\r\n" {
		t.Errorf("decode over an existing file without -f: rc=%d %q", rc, out)
	}
	out = mustRun(t, h, `certutil -f -decode "`+b64+`" "`+part+`"`, nil)
	if out != fmt.Sprintf("Input Length = %d\r\nOutput Length = %d\r\nCertUtil: -decode command completed successfully.\r\n", len(text), img.Size) {
		t.Errorf("decode: %q", out)
	}
	mustRun(t, h, `del /q "`+b64+`"`, nil)
	out = mustRun(t, h, `certutil -hashfile "`+part+`"`, nil)
	if !strings.Contains(out, spaced(img.SHA1)) {
		t.Errorf("certutil -hashfile %q, want SHA-1 %s", out, img.SHA1)
	}
	// no PowerShell on this host
	if _, e, rc := exec(t, h, psHashCmd(part), nil); rc != 9009 || !strings.Contains(e, "'powershell' is not recognized") {
		t.Errorf("powershell on a host without it: rc=%d %q", rc, e)
	}
}

func spaced(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

// imageServer serves an image with ranges, as the engine's pull server does, and records the
// Range header of each request; cut, when set, ends the first response after that many bytes.
type imageServer struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
}

func serveImage(t *testing.T, img win2003.InstallerImage, cut int64) *imageServer {
	t.Helper()
	data, _ := io.ReadAll(img.Open())
	s := &imageServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		first := len(s.ranges) == 1
		s.mu.Unlock()
		if r.URL.Path == "/forbidden" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		if first && cut > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(data[:cut])
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		http.ServeContent(w, r, img.Name, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// TestPullPowerShellRanged: a real HTTP GET from the host; a cut leaves what arrived, the next
// run asks for the rest with a Range from the file's length; an HTTP error is .NET's exception.
func TestPullPowerShellRanged(t *testing.T) {
	h := stageHost(t, "affected", nil)
	img := win2003.NewInstallerImage("x86", "0409", 0)
	srv := serveImage(t, img, 300000)
	part := work + `\` + img.SHA256 + ".part"
	mustRun(t, h, `mkdir `+work, nil)
	_, e, rc := exec(t, h, psPullCmd(srv.URL+"/tok/"+img.Name, part), nil)
	if rc != 1 || !strings.HasPrefix(e, `Exception calling "Read" with "3" argument(s):`) {
		t.Errorf("cut download: rc=%d %q", rc, e)
	}
	if out := mustRun(t, h, `for %F in ("`+part+`") do @echo %~zF`, nil); out != "300000\r\n" {
		t.Errorf("after the cut: %q bytes", out)
	}
	mustRun(t, h, psPullCmd(srv.URL+"/tok/"+img.Name, part), nil)
	if got := srv.seen(); len(got) != 2 || got[0] != "" || got[1] != "bytes=300000-" {
		t.Errorf("Range headers %q, want none then bytes=300000-", got)
	}
	if out := mustRun(t, h, psHashCmd(part), nil); out != strings.ToUpper(img.SHA256)+"\r\n" {
		t.Errorf("hash %q", out)
	}
	_, e, rc = exec(t, h, psPullCmd(srv.URL+"/forbidden", work+`\x.part`), nil)
	if rc != 1 || !strings.HasPrefix(e, `Exception calling "GetResponse" with "0" argument(s): "The remote server returned an error: (403) Forbidden."`) {
		t.Errorf("403: rc=%d %q", rc, e)
	}
}

// TestPullVBScriptChunks: pull.vbs fetches ranged chunks into base.pNNNNN, skips whole chunks
// on a rerun, exits 2 on a bad status and 1 without a server; copy /b concatenates the chunks in
// name order, and the result proves to be the installer.
func TestPullVBScriptChunks(t *testing.T) {
	h := stageHost(t, "no-powershell", nil)
	img := win2003.NewInstallerImage("x86", "0409", 0)
	srv := serveImage(t, img, 0)
	base := work + `\` + img.SHA256
	script := work + `\pull.vbs`
	mustRun(t, h, `mkdir `+work, nil)
	mustRun(t, h, `findstr "^" > "`+script+`"`, crlf(pullScript))
	const chunk = 300000
	url := srv.URL + "/tok/" + img.Name
	mustRun(t, h, cscriptPullCmd(script, url, base, img.Size, chunk), nil)
	want := fmt.Sprintf("%d %s.p00001\r\n%d %s.p00002\r\n%d %s.p00003\r\n%d %s.p00004\r\n", chunk, img.SHA256, chunk, img.SHA256, chunk, img.SHA256, img.Size-3*chunk, img.SHA256)
	want += fmt.Sprintf("%d pull.vbs\r\n", len(crlf(pullScript)))
	if out := mustRun(t, h, listCmd(work), nil); out != want {
		t.Errorf("chunks:\n%q\nwant\n%q", out, want)
	}
	if got := srv.seen(); len(got) != 4 || got[1] != "bytes=300000-599999" || got[3] != fmt.Sprintf("bytes=900000-%d", img.Size-1) {
		t.Errorf("ranges %q", got)
	}
	// resume: only the missing chunk is fetched again
	mustRun(t, h, `del /q "`+base+`.p00002"`, nil)
	mustRun(t, h, cscriptPullCmd(script, url, base, img.Size, chunk), nil)
	if got := srv.seen(); len(got) != 5 || got[4] != "bytes=300000-599999" {
		t.Errorf("ranges after resume %q", got)
	}
	out := mustRun(t, h, `copy /b /y "`+base+`.p*" "`+base+`.part"`, nil)
	wantCopy := base + ".p00001\r\n" + base + ".p00002\r\n" + base + ".p00003\r\n" + base + ".p00004\r\n        1 file(s) copied.\r\n"
	if out != wantCopy {
		t.Errorf("copy /b:\n%q\nwant\n%q", out, wantCopy)
	}
	mustRun(t, h, `del /q "`+base+`.p0*"`, nil)
	if out := mustRun(t, h, `certutil -hashfile "`+base+`.part"`, nil); !strings.Contains(out, spaced(img.SHA1)) {
		t.Errorf("hash of the concatenation %q, want %s", out, img.SHA1)
	}
	// The pattern p* matches the part file too: a destination among the sources is emptied
	// first, and copy says so.
	mustRun(t, h, cscriptPullCmd(script, url, base, img.Size, chunk), nil)
	out = mustRun(t, h, `copy /b /y "`+base+`.p*" "`+base+`.part"`, nil)
	if !strings.Contains(out, base+".part\r\nContent of destination lost before copy\r\n") {
		t.Errorf("copy onto one of its sources: %q", out)
	}
	if out := mustRun(t, h, `certutil -hashfile "`+base+`.part"`, nil); !strings.Contains(out, spaced(img.SHA1)) {
		t.Errorf("hash after copying over a source %q", out)
	}
	if _, _, rc := exec(t, h, cscriptPullCmd(script, srv.URL+"/forbidden", work+`\f`, 10, chunk), nil); rc != 2 {
		t.Errorf("403: rc=%d, want 2", rc)
	}
	srv.Close()
	if _, _, rc := exec(t, h, cscriptPullCmd(script, url, work+`\g`, 10, chunk), nil); rc != 1 {
		t.Errorf("no server: rc=%d, want 1", rc)
	}
}

// TestProofs: the proof of a staged file by each means, per Quirks.CertutilHashfile, then the
// move into place.
func TestProofs(t *testing.T) {
	img := win2003.NewInstallerImage("x86", "0409", 0)
	stage := func(h *win2003.Host) string {
		part := work + `\` + img.SHA256 + ".part"
		mustRun(t, h, `mkdir `+work, nil)
		mustRun(t, h, `findstr "^" > "`+work+`\i.b64"`, pushLines(img.Open(), 48<<10))
		mustRun(t, h, `certutil -f -decode "`+work+`\i.b64" "`+part+`"`, nil)
		return part
	}
	for _, tc := range []struct {
		mode, want string
		rc         int
	}{
		{"sha1", "SHA1 hash of file %s:\r\n" + spaced(img.SHA1) + "\r\nCertUtil: -hashfile command completed successfully.\r\n", 0},
		{"none", "CertUtil: Unknown arg: -hashfile\r\n", -2147024809},
		{"algorithms", "SHA1 hash of file %s:\r\n" + spaced(img.SHA1) + "\r\nCertUtil: -hashfile command completed successfully.\r\n", 0},
	} {
		q := win2003.DefaultQuirks()
		q.CertutilHashfile = tc.mode
		h := stageHost(t, "no-powershell", func(o *win2003.Options) { o.Quirks = &q })
		part := stage(h)
		want := tc.want
		if strings.Contains(want, "%s") {
			want = fmt.Sprintf(want, part)
		}
		if out, _, rc := exec(t, h, `certutil -hashfile "`+part+`"`, nil); out != want || rc != tc.rc {
			t.Errorf("%s: rc=%d %q\nwant %q", tc.mode, rc, out, want)
		}
		if tc.mode == "algorithms" {
			out := mustRun(t, h, `certutil -hashfile "`+part+`" SHA256`, nil)
			if out != fmt.Sprintf("SHA256 hash of file %s:\r\n%s\r\nCertUtil: -hashfile command completed successfully.\r\n", part, spaced(img.SHA256)) {
				t.Errorf("algorithms SHA256: %q", out)
			}
		}
	}
	h := stageHost(t, "no-powershell", nil)
	part := stage(h)
	out := mustRun(t, h, datafileCmd(part), nil)
	if out != fmt.Sprintf("\r\r\n\r\r\nFileSize=%d\r\r\nVersion=5.2.3790.3959\r\r\n\r\r\n\r\r\n", img.Size) {
		t.Errorf("wmic datafile: %q", out)
	}
	if out := mustRun(t, h, datafileCmd(work+`\i.b64`), nil); !strings.Contains(out, "Version=\r\r\n") {
		t.Errorf("a file that is no installer has no version: %q", out)
	}
	exe := work + `\` + img.SHA256 + ".exe"
	if out := mustRun(t, h, `move /y "`+part+`" "`+exe+`"`, nil); out != "        1 file(s) moved.\r\n" {
		t.Errorf("move: %q", out)
	}
	if out := mustRun(t, h, listCmd(work), nil); !strings.HasPrefix(out, fmt.Sprintf("%d %s.exe\r\n", img.Size, img.SHA256)) {
		t.Errorf("after the move: %q", out)
	}
	if _, e, rc := exec(t, h, `move /y "`+part+`" "`+exe+`"`, nil); rc != 1 || e != "The system cannot find the file specified.\r\n" {
		t.Errorf("move of a missing file: rc=%d %q", rc, e)
	}
}

// freeSpace reads the system drive's free bytes as the probe's disk section does.
func freeSpace(t *testing.T, h *win2003.Host) int64 {
	t.Helper()
	out := mustRun(t, h, `wmic logicaldisk where "DeviceID='C:'" get FreeSpace /format:list < NUL`, nil)
	_, v, _ := strings.Cut(out, "FreeSpace=")
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		t.Fatalf("FreeSpace in %q", out)
	}
	return n
}

// TestDiskFull: free space goes down as files grow and up when they are deleted; a write that
// does not fit fails part-way like Windows, each program with its own words.
func TestDiskFull(t *testing.T) {
	const free = 400 << 10
	img := win2003.NewInstallerImage("x86", "0409", 0)
	h := stageHost(t, "affected", nil)
	spec := h.Spec()
	spec.FreeDisk = free
	h, err := win2003.New(spec, win2003.Options{Seed: 5, Clock: win2003.NewManualClock(win2003.DefaultStart)})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, h, `mkdir `+work, nil)
	if got := freeSpace(t, h); got != free {
		t.Fatalf("free space %d, want %d", got, free)
	}
	mustRun(t, h, `findstr "^" > `+work+`\small.txt`, bytes.Repeat([]byte("x"), 1000))
	if got := freeSpace(t, h); got != free-1000 {
		t.Errorf("free space after a 1000-byte file: %d", got)
	}
	text := pushLines(img.Open(), 48<<10)
	out, e, rc := exec(t, h, `findstr "^" >> "`+work+`\i.b64"`, text)
	if rc != 1 || e != "There is not enough space on the disk.\r\n" {
		t.Errorf("findstr on a full disk: rc=%d %q %q", rc, out, e)
	}
	if got := freeSpace(t, h); got != 0 {
		t.Errorf("free space after filling the disk: %d", got)
	}
	mustRun(t, h, `del /q "`+work+`\i.b64"`, nil)
	if got := freeSpace(t, h); got != free-1000 {
		t.Errorf("free space after the delete: %d", got)
	}
	_, e, rc = exec(t, h, psDecodeCmd(work+`\p.part`, 0), text)
	if rc != 1 || !strings.HasPrefix(e, `Exception calling "Write" with "3" argument(s): "There is not enough space on the disk."`) {
		t.Errorf("PowerShell on a full disk: rc=%d %q", rc, e)
	}
	if out := mustRun(t, h, `for %F in ("`+work+`\p.part") do @echo %~zF`, nil); out != strconv.Itoa(free-1000)+"\r\n" {
		t.Errorf("the part file keeps what fit: %q", out)
	}
	out, e, rc = exec(t, h, `copy /y "`+work+`\p.part" "`+work+`\q.part"`, nil)
	if rc != 1 || e != "There is not enough space on the disk.\r\n" || out != "        0 file(s) copied.\r\n" {
		t.Errorf("copy on a full disk: rc=%d %q %q", rc, out, e)
	}
}

// TestSetFreeSpace: a disk filled by something else after the host was built shows its new
// free space to wmic, and a write past it fails as on a full disk; files already there stay.
func TestSetFreeSpace(t *testing.T) {
	h := stageHost(t, "affected", nil)
	mustRun(t, h, `mkdir `+work, nil)
	mustRun(t, h, `findstr "^" > `+work+`\small.txt`, bytes.Repeat([]byte("x"), 1000))
	h.SetFreeSpace(3000)
	if got := freeSpace(t, h); got != 3000 || h.FreeSpace() != 3000 {
		t.Errorf("free space %d (FreeSpace %d), want 3000", got, h.FreeSpace())
	}
	if _, e, rc := exec(t, h, `findstr "^" > `+work+`\big.txt`, bytes.Repeat([]byte("y"), 4000)); rc != 1 || e != "There is not enough space on the disk.\r\n" {
		t.Errorf("write past the free space: rc=%d %q", rc, e)
	}
	mustRun(t, h, `del /q `+work+`\small.txt`, nil)
	if got := freeSpace(t, h); got != 1000 {
		t.Errorf("after filling the disk and deleting 1000 bytes: %d free, want 1000", got)
	}
}

// TestShareDoubleHop: the share's files are readable by a SYSTEM task, not by the WinRM user.
func TestShareDoubleHop(t *testing.T) {
	img := win2003.NewInstallerImage("x86", "0409", 0)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, img.Name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, img.Open()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	share := &win2003.Share{UNC: `\\LABSHARE\installers`, Dir: dir}
	r := newRigOpts(t, "affected", 6, func(o *win2003.Options) { o.Share = share })
	h := r.h
	part := work + `\` + img.SHA256 + ".part"
	copyCmd := `copy /y "\\LABSHARE\installers\` + img.Name + `" "` + part + `"`
	mustRun(t, h, `mkdir `+work, nil)
	out, e, rc := exec(t, h, copyCmd, nil)
	if rc != 1 || e != "Access is denied.\r\n" || out != "        0 file(s) copied.\r\n" {
		t.Errorf("copy from the share in the WinRM shell: rc=%d %q %q", rc, out, e)
	}
	// the task: the engine's batch with the copy as its body
	marker := work + `\share.marker`
	batch := taskBatch(marker, "R1", copyCmd+` > "`+work+`\share.log" 2>&1`, `copy /y "\\LABSHARE\installers\missing.exe" "`+work+`\m" >> "`+work+`\share.log" 2>&1`)
	mustRun(t, h, `findstr "^" > "`+work+`\share.cmd"`, []byte(batch))
	mustRun(t, h, taskCreateCmd("share", work+`\share.cmd`, "23:59:00", "06/21/2010"), nil)
	mustRun(t, h, `schtasks /run /tn "iisremedy-share"`, nil)
	r.waitTask(t, "iisremedy-share")
	if out := mustRun(t, h, psHashCmd(part), nil); out != strings.ToUpper(img.SHA256)+"\r\n" {
		t.Errorf("copied by SYSTEM: hash %q", out)
	}
	log := mustRun(t, h, `type "`+work+`\share.log"`, nil)
	if log != "        1 file(s) copied.\r\nThe system cannot find the file specified.\r\n        0 file(s) copied.\r\n" {
		t.Errorf("share.log %q", log)
	}
	// The batch's last command failed with 1: "echo exit=1>>marker" redirects handle 1, so the
	// marker gets "exit=" without the code (TestEchoHandleRedirection).
	if m := mustRun(t, h, `type "`+marker+`"`, nil); m != "run=R1 started\r\nexit=\r\n" {
		t.Errorf("marker %q", m)
	}
}
