package remediate

import (
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseList(t *testing.T) {
	got := parseList([]byte("1048576 ABC.exe\r\n12 install.marker\r\nnot a line\r\n-3 bad\r\n"))
	if len(got) != 2 || got["abc.exe"] != 1048576 || got["install.marker"] != 12 {
		t.Errorf("parseList = %v", got)
	}
}

// TestSchtasksDate: the start date in the order and with the separator of the host's locale
// (docs/facts.md §5.5): month first on an English host, day first on a Spanish one.
func TestSchtasksDate(t *testing.T) {
	day := time.Date(2010, 6, 21, 9, 0, 0, 0, time.UTC)
	english, spanish := "    iDate    REG_SZ    0\r\n    sDate    REG_SZ    /\r\n", "    iDate\tREG_SZ\t1\r\n    sDate\tREG_SZ\t/\r\n"
	for _, tt := range []struct{ out, want string }{
		{english, "06/21/2010"},
		{spanish, "21/06/2010"},
		{"    iDate    REG_SZ    2\r\n    sDate    REG_SZ    -\r\n", "2010-06-21"},
		{"ERROR: The system was unable to find the specified registry key or value.", "06/21/2010"},
	} {
		order, sep := parseIntl([]byte(tt.out))
		if got := schtasksDate(day, order, sep); got != tt.want {
			t.Errorf("%q: %s, want %s", tt.out, got, tt.want)
		}
	}
	cmd := taskCreateCmd("install", `C:\iisremedy\install.cmd`, day, dateDMY, "/")
	want := `schtasks /delete /tn "iisremedy-install" /f >nul 2>&1 & schtasks /create /tn "iisremedy-install" /tr "C:\iisremedy\install.cmd" /sc once /st 09:00:00 /sd 21/06/2010 /ru SYSTEM`
	if cmd != want {
		t.Errorf("create:\n%s\nwant\n%s", cmd, want)
	}
}

func TestTaskMarkerAndQuery(t *testing.T) {
	batch := taskBatch(`C:\iisremedy\install.marker`, "R1 plan=abc", []string{`"C:\iisremedy\x.exe" /quiet /norestart`})
	if !strings.HasPrefix(batch, "@echo off\r\n>\"C:\\iisremedy\\install.marker\" echo run=R1 plan=abc started\r\n") ||
		!strings.HasSuffix(batch, ">>\"C:\\iisremedy\\install.marker\" echo exit=%ERRORLEVEL%\r\n") {
		t.Errorf("batch:\n%s", batch)
	}
	m := parseMarker([]byte("run=R1 plan=abc started\r\nexit=3010\r\n"))
	if m.RunID != "R1" || !m.Started || !m.Done || m.Exit != 3010 {
		t.Errorf("marker %+v", m)
	}
	if m := parseMarker([]byte("run=R2 plan=abc started\r\n")); !m.Started || m.Done {
		t.Errorf("running marker %+v", m)
	}
	q := []byte(`"iisremedy-install","Never","Running"` + "\r\n" + `"other","Never",""` + "\r\n")
	if !taskRunning(q, "install") || taskRunning(q, "share") {
		t.Error("taskRunning")
	}
}

func TestParseHash(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		strings.ToUpper(sha) + "\r\n": sha,
		"SHA-1 hash of file C:\\x.part:\r\n5a 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00 11 22 33\r\nCertUtil: -hashfile command completed successfully.\r\n": "5a112233445566778899aabbccddeeff00112233",
		// The staged file's own name is a SHA-256: never taken for the hash.
		"SHA1 hash of file C:\\iisremedy\\" + sha + ".part:\r\n5a 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00 11 22 33\r\n": "5a112233445566778899aabbccddeeff00112233",
		"CertUtil: Unknown arg: -hashfile\r\n": "",
	} {
		if got := parseHash([]byte(in)); got != want {
			t.Errorf("parseHash(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSites(t *testing.T) {
	out := "\r\r\n\r\r\nName=W3SVC/1\r\r\nServerAutoStart=TRUE\r\r\nServerBindings={\":80:\",\"10.0.0.5:8080:www.contoso.com\"}\r\r\nServerComment=Default Web Site\r\r\n\r\r\n\r\r\n" +
		"Name=W3SVC/2\r\r\nServerAutoStart=FALSE\r\r\nServerBindings={\":81:\"}\r\r\nServerComment=Stopped\r\r\n\r\r\n" +
		"Name=W3SVC/3\r\r\nServerAutoStart=TRUE\r\r\nServerBindings={instance of ServerBinding\r\n{\r\n\tHostname = \"intranet\";\r\n\tIP = \"\";\r\n\tPort = \"8081\";\r\n};}\r\r\nServerComment=Intranet\r\r\n"
	got := parseSites([]byte(out))
	want := []site{{"W3SVC/1 (Default Web Site)", 80, ""}, {"W3SVC/1 (Default Web Site)", 8080, "www.contoso.com"}, {"W3SVC/3 (Intranet)", 8081, "intranet"}}
	if len(got) != len(want) {
		t.Fatalf("parseSites = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("site %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestLineEncoder: base64 lines of pushLine raw bytes, each decodable on its own, the last
// one shorter; resuming at a line boundary continues the same text.
func TestLineEncoder(t *testing.T) {
	raw := make([]byte, 2*pushLine+1000)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	text, err := io.ReadAll(&lineEncoder{src: strings.NewReader(string(raw)), raw: make([]byte, pushLine)})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\r\n"), "\r\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	var back []byte
	for _, l := range lines {
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, b...)
	}
	if string(back) != string(raw) {
		t.Error("the lines do not decode to the input")
	}
}

// TestLineEncoderPacesBeforeProgress: under a rate limit, text is paced before it is handed
// out, and a line counts as sent only once its last text has been paced: the transfer's
// progress never runs ahead of what the limit let go.
func TestLineEncoderPacesBeforeProgress(t *testing.T) {
	raw := make([]byte, 2*pushLine+1000)
	textOf := func(rawN int64) int64 { // the text of the lines of rawN raw bytes
		text := rawN / pushLine * int64(base64.StdEncoding.EncodedLen(pushLine)+2)
		if rest := rawN % pushLine; rest > 0 {
			text += int64(base64.StdEncoding.EncodedLen(int(rest)) + 2)
		}
		return text
	}
	var paced, reported int64 // text paced; raw bytes reported
	enc := &lineEncoder{src: strings.NewReader(string(raw)), raw: make([]byte, pushLine),
		pace: func(n int) error { paced += int64(n); return nil },
		progress: func(n int64) {
			reported += n
			if paced < textOf(reported) {
				t.Errorf("%d raw bytes reported sent when %d bytes of text were paced", reported, paced)
			}
		}}
	buf := make([]byte, 40<<10) // less than a line: a line goes in two reads
	var text int64
	for {
		n, err := enc.Read(buf)
		text += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if paced != text || reported != int64(len(raw)) {
		t.Errorf("paced %d of %d bytes of text; reported %d of %d raw bytes", paced, text, reported, len(raw))
	}
	stop := errors.New("cancelled")
	enc = &lineEncoder{src: strings.NewReader("abc"), raw: make([]byte, pushLine), pace: func(int) error { return stop },
		progress: func(int64) { t.Error("progress without pacing") }}
	if n, err := enc.Read(buf); n != 0 || err != stop {
		t.Errorf("a pace that fails: %d, %v", n, err)
	}
}

func TestSafeNamesAndPaths(t *testing.T) {
	for _, ok := range []string{"DefaultAppPool", "Sales Pool (2)", "Pool-é"} {
		if !safeName(ok) {
			t.Errorf("safeName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", `a"b`, "a'b", "a%PATH%", "a!b", `a\b`, "a\x1bb"} {
		if safeName(bad) {
			t.Errorf("safeName(%q) = true", bad)
		}
	}
	if CheckWorkDir(`D:\iisremedy`) != nil || CheckWorkDir(`C:\Program Files\x`) == nil || CheckWorkDir(`C:\a"&b`) == nil || CheckWorkDir(`relative`) == nil {
		t.Error("CheckWorkDir")
	}
}
