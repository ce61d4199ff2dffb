package wsman

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

var upperMessageID = regexp.MustCompile(`<a:MessageID>uuid:[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}</a:MessageID>`)

// wantWindowsReply checks the wire format every SOAP reply shares (docs/winrm-protocol.md §7.1).
func wantWindowsReply(t *testing.T, h http.Header, body, requestID string) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
		t.Errorf("content type %q", ct)
	}
	if h.Get("Server") != "Microsoft-HTTPAPI/2.0" {
		t.Errorf("server header %q", h.Get("Server"))
	}
	if strings.Contains(body, "\n") || strings.HasPrefix(body, "<?xml") || !strings.HasPrefix(body, `<s:Envelope xml:lang="en-US" xmlns:s=`) {
		t.Errorf("not a single-line Windows envelope: %.120s", body)
	}
	if !upperMessageID.MatchString(body) {
		t.Errorf("no upper-case MessageID: %.300s", body)
	}
	if !strings.Contains(body, "<a:RelatesTo>"+requestID+"</a:RelatesTo>") {
		t.Errorf("RelatesTo is not %s", requestID)
	}
}

var messageIDRe = regexp.MustCompile(`<a:MessageID>([^<]+)</a:MessageID>`)

func requestID(t *testing.T, req string) string {
	m := messageIDRe.FindStringSubmatch(req)
	if m == nil {
		t.Fatalf("no MessageID in %s", req)
	}
	return m[1]
}

func TestWireFormat(t *testing.T) {
	srv := basicServer()
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	p := winrm.DefaultParameters
	roundTrip := func(req string) string {
		t.Helper()
		status, h, body := soapPost(t, url, req)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		wantWindowsReply(t, h, body, requestID(t, req))
		return body
	}
	shellID, _ := winrm.ParseOpenShellResponse(roundTrip(winrm.NewOpenShellRequest(url, p).String()))

	// Entity-escaped command text (not CDATA) and rsp:Arguments joined with spaces.
	req := winrm.NewExecuteCommandRequest(url, shellID, "echo", []string{"a<b", "TAG"}, p).String()
	req = strings.Replace(req, "<![CDATA[echo]]>", "ec&#104;o", 1)
	req = strings.Replace(req, "<![CDATA[TAG]]>", "&lt;t&gt;", 1)
	cmdID, err := winrm.ParseExecuteCommandResponse(roundTrip(req))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done, code, _ := winrm.ParseSlurpOutputErrResponse(roundTrip(winrm.NewGetOutputRequest(url, shellID, cmdID, "stdout stderr", p).String()), &out, &errb)
	if !done || code != 0 || out.String() != "a<b <t>\r\n" {
		t.Errorf("escaped command: %v %d %q", done, code, out.String())
	}
	// After the first Done, the exit code reads 0 (masterzen command_test.go TestCommandExitCode).
	cmdID, _ = winrm.ParseExecuteCommandResponse(roundTrip(winrm.NewExecuteCommandRequest(url, shellID, "exit /b 5", nil, p).String()))
	for i, want := range []string{"<rsp:ExitCode>5</rsp:ExitCode>", "<rsp:ExitCode>0</rsp:ExitCode>"} {
		if body := roundTrip(winrm.NewGetOutputRequest(url, shellID, cmdID, "stdout stderr", p).String()); !strings.Contains(body, want) {
			t.Errorf("receive %d: want %s in %s", i+1, want, body)
		}
	}
	// Signal after Done succeeds (masterzen always sends it).
	roundTrip(winrm.NewSignalRequest(url, shellID, cmdID, p).String())
	// An unknown CommandId is a fault.
	status, h, body := soapPost(t, url, winrm.NewGetOutputRequest(url, shellID, "00000000-0000-0000-0000-000000000000", "stdout stderr", p).String())
	wantFault(t, "unknown command", status, h, body, "w:InvalidParameter")
	roundTrip(winrm.NewDeleteShellRequest(url, shellID, p).String())
}

func TestReceiveSplitsToMaxEnvelopeSize(t *testing.T) {
	srv := basicServer()
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	p := winrm.NewParameters("PT60S", "en-US", 8192)
	_, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, p).String())
	shellID, _ := winrm.ParseOpenShellResponse(body)
	_, _, body = soapPost(t, url, winrm.NewExecuteCommandRequest(url, shellID, `findstr "^"`, nil, p).String())
	cmdID, _ := winrm.ParseExecuteCommandResponse(body)
	input := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := 0; i < len(input); i += 4096 {
		soapPost(t, url, winrm.NewSendInputRequest(url, shellID, cmdID, input[i:i+4096], false, p).String())
	}
	soapPost(t, url, winrm.NewSendInputRequest(url, shellID, cmdID, nil, true, p).String())
	var out, errb bytes.Buffer
	replies := 0
	for done := false; !done; replies++ {
		_, _, body := soapPost(t, url, winrm.NewGetOutputRequest(url, shellID, cmdID, "stdout stderr", p).String())
		if len(body) > 8192 {
			t.Fatalf("reply of %d bytes > MaxEnvelopeSize 8192", len(body))
		}
		done, _, _ = winrm.ParseSlurpOutputErrResponse(body, &out, &errb)
	}
	if !bytes.Equal(out.Bytes(), input) || replies < 64*1024/8192 {
		t.Errorf("%d bytes in %d replies", out.Len(), replies)
	}
}

func TestHTTPErrors(t *testing.T) {
	srv := &Server{Auth: []string{"negotiate", "basic"}, Password: "Passw0rd!", AllowUnencrypted: true, MaxEnvelopeSizeKB: 10}
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"

	// 401: empty body, one WWW-Authenticate line per scheme, no SOAP content type.
	resp, err := http.Post(url, "application/soap+xml;charset=UTF-8", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || resp.ContentLength != 0 ||
		len(got) != 2 || got[0] != "Negotiate" || got[1] != `Basic realm="WSMAN"` {
		t.Errorf("401: %d %d %q", resp.StatusCode, resp.ContentLength, got)
	}

	// 413 over MaxEnvelopeSizeKB.
	big := winrm.NewSendInputRequest(url, "S", "C", bytes.Repeat([]byte{'x'}, 11*1024), false, winrm.DefaultParameters).String()
	if status, _, body := soapPost(t, url, big); status != 413 || body != "" {
		t.Errorf("413: %d %q", status, body)
	}

	// An unknown header with mustUnderstand="true".
	req := winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String()
	req = strings.Replace(req, "</env:Header>", `<w:Bogus mustUnderstand="true">x</w:Bogus></env:Header>`, 1)
	status, h, body := soapPost(t, url, req)
	if status != 500 || h.Get("Content-Type") != "application/soap+xml;charset=UTF-8" ||
		!strings.Contains(body, "<s:Value>s:MustUnderstand</s:Value>") || !strings.Contains(body, `<s:NotUnderstood qname="q:Bogus"`) {
		t.Errorf("mustUnderstand: %d %s", status, body)
	}
	// Not XML.
	status, h, body = soapPost(t, url, "<not xml")
	wantFault(t, "garbage", status, h, body, "w:SchemaValidationError")
	if st := srv.Stats(); st.TooLarge != 1 || st.Unauthorized != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestAccessDenied(t *testing.T) {
	srv := basicServer()
	srv.AccessDenied = true
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	status, h, body := soapPost(t, url, winrm.NewOpenShellRequest(url, winrm.DefaultParameters).String())
	wantFault(t, "access denied", status, h, body, `Code="2147942405"`, "Access is denied.", "w:InternalError")
}

func TestOperationQuota(t *testing.T) {
	h := &gatedHost{release: make(chan struct{})}
	srv := basicServer()
	srv.Host = h
	srv.MaxConcurrentOperationsPerUser = 1
	srv.MaxShellsPerUser = 2
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	p := winrm.DefaultParameters
	_, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, p).String())
	shellID, _ := winrm.ParseOpenShellResponse(body)
	_, _, body = soapPost(t, url, winrm.NewExecuteCommandRequest(url, shellID, "wait", nil, p).String())
	cmdID, _ := winrm.ParseExecuteCommandResponse(body)
	// A Receive long-polls (the one operation allowed); a second request meanwhile is over quota.
	started := make(chan struct{})
	srv.ReceiveTimeout = func(d time.Duration) time.Duration { close(started); return time.Hour }
	done := make(chan string)
	go func() { // not soapPost: t.Fatal must not run outside the test goroutine
		req, _ := http.NewRequest("POST", url, strings.NewReader(winrm.NewGetOutputRequest(url, shellID, cmdID, "stdout stderr", p).String()))
		req.SetBasicAuth("Administrator", "Passw0rd!")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- string(b)
	}()
	<-started
	status, hd, body := soapPost(t, url, winrm.NewOpenShellRequest(url, p).String())
	wantFault(t, "operations quota", status, hd, body, `Code="2150859174"`, "maximum number of 1 concurrent operations")
	close(h.release)
	if b := <-done; !strings.Contains(b, base64.StdEncoding.EncodeToString([]byte("released\r\n"))) {
		t.Errorf("receive: %s", b)
	}
}

// TestMalformedRequestsGetFaults sends requests a hostile or broken client could send: each
// gets a SOAP fault, never a panic or a dropped connection.
func TestMalformedRequestsGetFaults(t *testing.T) {
	srv := basicServer()
	ts, _, _ := start(t, srv)
	url := ts.URL + "/wsman"
	p := winrm.DefaultParameters
	_, _, body := soapPost(t, url, winrm.NewOpenShellRequest(url, p).String())
	shellID, err := winrm.ParseOpenShellResponse(body)
	if err != nil || shellID == "" {
		t.Fatalf("create: %v %s", err, body)
	}
	_, _, body = soapPost(t, url, winrm.NewExecuteCommandRequest(url, shellID, "echo x", nil, p).String())
	cmdID, err := winrm.ParseExecuteCommandResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	desired := regexp.MustCompile(`<rsp:DesiredStream[^>]*>[^<]*</rsp:DesiredStream>`)
	receive := winrm.NewGetOutputRequest(url, shellID, cmdID, "stdout stderr", p).String()
	if !desired.MatchString(receive) {
		t.Fatalf("no DesiredStream in %s", receive)
	}
	send := winrm.NewSendInputRequest(url, shellID, cmdID, []byte("x"), false, p).String()
	signal := winrm.NewSignalRequest(url, shellID, cmdID, p).String()
	tests := []struct {
		name, req, want string
	}{
		{"receive without DesiredStream", desired.ReplaceAllString(receive, ""), "w:InvalidParameter"},
		{"signal without CommandId", strings.Replace(signal, `CommandId="`+cmdID+`"`, "", 1), "w:InvalidParameter"},
		{"send with bad base64", strings.Replace(send, base64.StdEncoding.EncodeToString([]byte("x")), "!!!", 1), "w:SchemaValidationError"},
		{"receive with an empty body", regexp.MustCompile(`(?s)<env:Body>.*</env:Body>`).ReplaceAllString(receive, "<env:Body></env:Body>"), "w:SchemaValidationError"},
	}
	for _, tt := range tests {
		if tt.req == receive || tt.req == signal || tt.req == send {
			t.Fatalf("%s: the request was not altered", tt.name)
		}
		status, h, body := soapPost(t, url, tt.req)
		wantFault(t, tt.name, status, h, body, tt.want)
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"PT60S": time.Minute, "PT60.000S": time.Minute, "PT1.5S": 1500 * time.Millisecond,
		"PT1M30S": 90 * time.Second, "P0DT0H0M1S": time.Second, "P1D": 24 * time.Hour}
	for in, want := range good {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "60", "PT", "PTS", "PT-1S", "PTNaNS", "PT1Y", "P1M", "PTxS"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}
