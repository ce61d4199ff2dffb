package checks

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestProbeCommand(t *testing.T) {
	t.Parallel()
	cmd := ProbeCommand()
	if strings.ContainsAny(cmd, "\r\n") {
		t.Fatal("ProbeCommand spans several lines")
	}
	if len(cmd) >= 8191 {
		t.Fatalf("ProbeCommand is %d characters, cmd.exe's limit is 8191", len(cmd))
	}
	const prefix = `cmd /v:on /c "set "P=!SystemRoot:~2!"&set "P=!P:\=\\!"&echo ##iisremedy-probe v1 begin hostname##&hostname&echo ##iisremedy-probe v1 end hostname rc=!ERRORLEVEL!##&echo ##iisremedy-probe v1 begin os##&reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"&echo ##iisremedy-probe v1 end os rc=!ERRORLEVEL!##&`
	if !strings.HasPrefix(cmd, prefix) {
		t.Errorf("ProbeCommand does not start with the contract's form:\n%s", cmd)
	}
	if !strings.HasSuffix(cmd, `end powershell rc=!ERRORLEVEL!##"<nul`) {
		t.Errorf("ProbeCommand ends with %q", cmd[len(cmd)-40:])
	}
	// The WinRM shell's own cmd.exe parses the line first: an & outside its quotes would run the
	// rest there, without delayed expansion. Its quote state toggles at every quote.
	inQuotes := false
	for i, c := range cmd {
		switch {
		case c == '"':
			inQuotes = !inQuotes
		case c == '&' && !inQuotes:
			t.Errorf("& at %d is outside the outer quotes: ...%s", i, cmd[max(0, i-40):i+1])
		case c == '^' && !inQuotes:
			t.Errorf("^ at %d escapes a character of the outer line", i)
		}
	}
	if !strings.Contains(cmd, `&echo ##iisremedy-probe v1 begin inetsrv##&wmic datafile where "Drive='!SystemDrive!' and Path='!P!\\system32\\inetsrv\\'" get Name,Version /format:list&echo ##iisremedy-probe v1 end inetsrv rc=!ERRORLEVEL!##&`) {
		t.Errorf("inetsrv section differs from the contract")
	}
	if strings.Contains(cmd, "%") {
		t.Errorf("ProbeCommand uses %%VAR%%, which cmd /c expands once for the whole line")
	}
	// Sections in order.
	last := -1
	for _, s := range ProbeSections() {
		i := strings.Index(cmd, "v1 begin "+s+"##")
		if i <= last {
			t.Errorf("section %s out of order", s)
		}
		last = i
	}
	want := []string{"hostname", "os", "arch", "lang", "iis", "w3svc", "inetsrv", "hotfixes", "events", "apppools", "boot", "disk", "powershell"}
	if got := ProbeSections(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ProbeSections = %v, want %v", got, want)
	}
}

func TestProbeScript(t *testing.T) {
	t.Parallel()
	s := ProbeScript()
	if strings.Count(s, "\n") != strings.Count(s, "\r\n") {
		t.Error("ProbeScript has line ends other than CRLF")
	}
	ls := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	if ls[0] != "@echo off" {
		t.Errorf("first line %q", ls[0])
	}
	if !strings.Contains(s, "\r\nsetlocal EnableDelayedExpansion\r\n") {
		t.Error("no setlocal EnableDelayedExpansion")
	}
	for _, ps := range probeV1 {
		block := "echo ##iisremedy-probe v1 begin " + ps.name + "##\r\n" + ps.command + "\r\necho ##iisremedy-probe v1 end " + ps.name + " rc=!ERRORLEVEL!##\r\n"
		if !strings.Contains(s, block) {
			t.Errorf("section %s not as expected", ps.name)
		}
	}
	if !strings.Contains(s, `DeviceID='%SystemDrive%'`) {
		t.Error("disk section does not use %SystemDrive%")
	}
}

func TestParseCaptureNotCapture(t *testing.T) {
	t.Parallel()
	seed, err := os.ReadFile("testdata/not-a-capture.txt")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty":                 nil,
		"seed write-up":         seed,
		"binary":                {0xFF, 0xFE, 0, 0, 1, 2, 3},
		"prefix without syntax": []byte("##iisremedy-probe\n##iisremedy-probe v1 begin\n##iisremedy-probe v1 sideways x##\n"),
		"html":                  []byte("<html><body>##iisremedy-probe v1 begin x y##</body></html>"),
	} {
		if _, err := ParseCapture(in); !errors.Is(err, ErrNotCapture) {
			t.Errorf("%s: err = %v, want ErrNotCapture", name, err)
		}
	}
	_, err = ParseCapture([]byte("##iisremedy-probe v2 begin os##\r\nx\r\n##iisremedy-probe v2 end os rc=0##\r\n"))
	if !errors.Is(err, errUnsupportedVersion) {
		t.Errorf("v2 capture: err = %v, want errUnsupportedVersion", err)
	}
}

func TestParseCaptureSections(t *testing.T) {
	t.Parallel()
	in := "C:\\>probe.cmd\r\n" +
		"##iisremedy-probe v1 begin hostname##\r\nWEB01\r\n##iisremedy-probe v1 end hostname rc=0##\r\n" +
		"noise between sections\r\n" +
		"##iisremedy-probe v1 begin iis##\r\n##iisremedy-probe v1 end iis rc=1##\r\n" +
		"##iisremedy-probe v1 begin w3svc##  \r\r\nx\r\n##iisremedy-probe v1 end w3svc rc=-1073741819##\n" +
		"##iisremedy-probe v1 begin hostname##\r\nDUP\r\n##iisremedy-probe v1 end hostname rc=0##\r\n" +
		"##iisremedy-probe v1 end os rc=0##\r\n" +
		"##iisremedy-probe v1 begin boot##\r\nLastBootUp"
	c, err := ParseCapture([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sections) != 4 {
		t.Fatalf("got %d sections, want 4", len(c.Sections))
	}
	h := c.Section("hostname")
	if h.Text != "WEB01\r\n" || h.RC != 0 || !h.RCKnown || !h.Complete || h.Encoding != "ansi" {
		t.Errorf("hostname = %+v", h)
	}
	if s := c.Section("iis"); s.Text != "" || s.RC != 1 {
		t.Errorf("iis = %+v", s)
	}
	if s := c.Section("w3svc"); s.Text != "x\r\n" || s.RC != -1073741819 {
		t.Errorf("w3svc = %+v", s)
	}
	if s := c.Section("boot"); s.Complete || s.Text != "LastBootUp" {
		t.Errorf("boot = %+v", s)
	}
	probs := strings.Join(c.Problems, "\n")
	for _, want := range []string{"hostname: appears more than once", "os: end marker without a begin marker", "boot: cut short"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems %q lack %q", probs, want)
		}
	}
}

func TestParseCaptureEncodings(t *testing.T) {
	t.Parallel()
	list := "\r\r\n\r\r\nFreeSpace=5368709120\r\r\nSize=21474836480\r\r\n\r\r\n\r\r\n"
	wrap := func(body []byte) []byte {
		var b bytes.Buffer
		b.WriteString("##iisremedy-probe v1 begin disk##\r\n")
		b.Write(body)
		b.WriteString("##iisremedy-probe v1 end disk rc=0##\r\n")
		return b.Bytes()
	}
	tests := []struct {
		name    string
		data    []byte
		wantEnc string
		banner  bool
	}{
		{"ansi", wrap([]byte(list)), "ansi", false},
		{"utf-16le with BOM", wrap(append([]byte{0xFF, 0xFE}, utf16le(list)...)), "utf-16le", false},
		{"utf-16le without BOM", wrap(utf16le(list)), "utf-16le", false},
		{"banner replaces BOM", wrap(append([]byte("Please wait while WMIC is being installed.\r\n"), utf16le(list)...)), "ansi+utf-16le", true},
		{"banner without line end", wrap(append([]byte("Please wait while WMIC is being installed."), utf16le(list)...)), "ansi+utf-16le", true},
		{"localized banner then BOM", wrap(append([]byte("Bitte warten Sie, während WMIC installiert wird.\r\n\xFF\xFE"), utf16le(list)...)), "ansi+utf-16le", true},
		{"odd byte cut short", wrap(append(append([]byte{0xFF, 0xFE}, utf16le(list)...), 'x')), "utf-16le", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCapture(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			s := c.Section("disk")
			if s == nil || s.Encoding != tt.wantEnc {
				t.Fatalf("section = %+v, want encoding %s", s, tt.wantEnc)
			}
			l := instances(s.Text)
			if len(l) != 1 || len(l[0]) != 2 || l[0]["FreeSpace"] != "5368709120" || l[0]["Size"] != "21474836480" {
				t.Errorf("instances = %#v (text %q)", l, s.Text)
			}
			if hasBanner := strings.HasPrefix(s.Text, "Please wait") || strings.HasPrefix(s.Text, "Bitte warten"); tt.banner != hasBanner {
				t.Errorf("banner kept = %v, want %v (text %q)", hasBanner, tt.banner, s.Text)
			}
		})
	}
}

func TestParseCaptureWholeFileUTF16(t *testing.T) {
	t.Parallel()
	text := string(baseHost().capture())
	data := append([]byte{0xFF, 0xFE}, utf16le(text)...)
	c, err := ParseCapture(data)
	if err != nil {
		t.Fatal(err)
	}
	f := c.Facts()
	if len(f.Problems) != 0 || f.Hostname != "WEB01" || len(f.Files) == 0 {
		t.Errorf("facts = %+v", f)
	}
}

func TestParseCaptureWindows1252(t *testing.T) {
	t.Parallel()
	c, err := ParseCapture([]byte("##iisremedy-probe v1 begin hostname##\r\nSERVEUR-\xC9T\xC9\r\n##iisremedy-probe v1 end hostname rc=0##\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Section("hostname").Text; got != "SERVEUR-ÉTÉ\r\n" {
		t.Errorf("text = %q", got)
	}
}

func TestDecodeUTF16NonASCII(t *testing.T) {
	t.Parallel()
	in := "\r\r\nName=c:\\inetpub\\日本語 𝄞.dll\r\r\n"
	got, enc := decodeText(append([]byte{0xFF, 0xFE}, utf16le(in)...))
	if got != in || enc != "utf-16le" {
		t.Errorf("decodeText = %q, %s", got, enc)
	}
	// A lone surrogate becomes U+FFFD, never a panic.
	got, _ = decodeText([]byte{0xFF, 0xFE, 0x00, 0xD8, 'a', 0})
	if got != "\uFFFDa" {
		t.Errorf("lone surrogate: %q", got)
	}
}
