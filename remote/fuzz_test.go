package remote

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bodgit/ntlmssp"
	"github.com/iisremedy/iisremedy/lab/ntlm"
)

// Seeds are added in code (a few captured replies and the shapes of lab/hostile's), so the
// fuzz targets run on them as unit tests.

// allocated returns the bytes f allocated on the heap (approximately: the runtime accounts
// by span, and other goroutines count too).
func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// allocBound is what reading n bytes may allocate: a small multiple of n (encoding/xml's
// tokens, base64 output) plus a constant.
func allocBound(n int) uint64 { return 64*uint64(n) + 4<<20 }

// checkText holds an error's text to the bounds of quoted host values.
func checkText(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); len(msg) > 2*maxErrorText || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\r\n\x1b") {
		t.Fatalf("error text of %d bytes, or not printable: %.300q", len(msg), msg)
	}
}

// FuzzReadEnvelope feeds replies to the Create, Command, Receive and fault readers.
func FuzzReadEnvelope(f *testing.F) {
	for _, name := range []string{"masterzen_create_shell_response.xml", "masterzen_command_response.xml",
		"masterzen_receive_response_stdout_stderr_running.xml", "pywinrm_receive_response_stdout_done_exitcode_0.xml",
		"masterzen_receive_fault_timedout_500.xml", "rubywinrm_create_fault_quota_maxshellsperuser_wmierror.xml"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`<s:Envelope xmlns:s="` + nsSoap + `"><s:Body>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope xmlns:s="` + nsSoap + `">` + strings.Repeat("<a/>", 100) + `</s:Envelope>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var out, errb bytes.Buffer
		var r received
		var rerr error
		if n := allocated(func() { r, rerr = parseReceive(body, &out, &errb) }); n > allocBound(len(body)) {
			t.Fatalf("parseReceive allocated %d bytes for %d", n, len(body))
		}
		checkText(t, rerr)
		if rerr == nil && (out.Len()+errb.Len() != r.output || r.output > len(body)) {
			t.Fatalf("%d+%d bytes of output counted %d, from a %d-byte reply", out.Len(), errb.Len(), r.output, len(body))
		}
		id, err := parseShellID(body)
		checkText(t, err)
		if err == nil && !validID(id) {
			t.Fatalf("shell id %q", id)
		}
		id, err = parseCommandID(body)
		checkText(t, err)
		if err == nil && !validID(id) {
			t.Fatalf("command id %q", id)
		}
		e := replyError("receive", "h", 500, nil, body)
		checkText(t, e)
		if e.Class != ClassProtocol && e.Code == 0 && e.Class != ClassFault {
			t.Fatalf("500 read as %v", e)
		}
	})
}

// receiveReply renders a Receive reply carrying stdout and stderr in chunks of size.
func receiveReply(stdout, stderr []byte, size int, done bool, code int32) []byte {
	var b strings.Builder
	b.WriteString(`<s:Envelope xmlns:s="` + nsSoap + `" xmlns:rsp="` + nsShell + `"><s:Body><rsp:ReceiveResponse>`)
	for _, st := range []struct {
		name string
		data []byte
	}{{"stdout", stdout}, {"stderr", stderr}} {
		for rest := st.data; len(rest) > 0; rest = rest[min(size, len(rest)):] {
			b.WriteString(`<rsp:Stream Name="` + st.name + `" CommandId="C">` + base64.StdEncoding.EncodeToString(rest[:min(size, len(rest))]) + `</rsp:Stream>`)
		}
		b.WriteString(`<rsp:Stream Name="` + st.name + `" CommandId="C" End="true"/>`)
	}
	state := "Running"
	if done {
		state = "Done"
	}
	b.WriteString(`<rsp:CommandState CommandId="C" State="` + nsShell + `/CommandState/` + state + `">`)
	if done {
		b.WriteString(`<rsp:ExitCode>` + strconv.Itoa(int(code)) + `</rsp:ExitCode>`)
	}
	b.WriteString(`</rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>`)
	return []byte(b.String())
}

// FuzzReceiveStreams round-trips stream data, Done and the exit code through a Receive reply.
func FuzzReceiveStreams(f *testing.F) {
	f.Add([]byte("hello\r\n"), []byte("err\r\n"), uint8(3), true, int32(7))
	f.Add([]byte{}, []byte{}, uint8(1), false, int32(0))
	f.Add([]byte("\x00\xff<&>]]>"), []byte("é"), uint8(2), true, int32(-1073741510))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, size uint8, done bool, code int32) {
		var out, errb bytes.Buffer
		r, err := parseReceive(receiveReply(stdout, stderr, int(size)+1, done, code), &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), stdout) || !bytes.Equal(errb.Bytes(), stderr) || r.done != done ||
			done && r.exitCode != int(code) || r.output != len(stdout)+len(stderr) {
			t.Fatalf("got %+v %q %q", r, out.Bytes(), errb.Bytes())
		}
	})
}

// FuzzCheckHead feeds reply heads to the NTLM transport's head bounds.
func FuzzCheckHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate TlRMTVNTUAACAAAA\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n"))
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		err := checkHead(bufio.NewReaderSize(bytes.NewReader(head), maxHeaderBytes))
		checkText(t, err)
		if err != nil {
			return
		}
		// An accepted head is within the bounds.
		end := bytes.Index(head, []byte("\n\r\n"))
		if e2 := bytes.Index(head, []byte("\n\n")); end < 0 || e2 >= 0 && e2 < end {
			end = e2
		}
		lines := strings.Split(string(head[:end+1]), "\n")
		if end < 0 || end > maxHeaderBytes || len(lines) > maxHeaders+2 || len(lines[0]) > maxStatusLine+1 {
			t.Fatalf("head of %d bytes, %d lines accepted", end, len(lines))
		}
		for _, l := range lines {
			if len(l) > maxHeaderLine+1 {
				t.Fatalf("header line of %d bytes accepted", len(l))
			}
		}
	})
}

// challengeFor runs the lab's NTLM acceptor up to its CHALLENGE for a bodgit client.
func challengeFor(t testing.TB) (*ntlmssp.Client, *ntlm.Server, []byte) {
	cl, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("Administrator", testPassword), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	negotiate, err := cl.Authenticate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := ntlm.NewServer(ntlm.Config{Computer: "WIN2003", Password: func(string) (string, bool) { return testPassword, true }})
	challenge, err := srv.Challenge(negotiate)
	if err != nil {
		t.Fatal(err)
	}
	return cl, srv, challenge
}

// FuzzNTLMChallenge feeds CHALLENGE tokens, in WWW-Authenticate lines, to findChallenge,
// checkChallenge and then to bodgit/ntlmssp, as a handshake does.
func FuzzNTLMChallenge(f *testing.F) {
	_, _, challenge := challengeFor(f)
	f.Add("Negotiate", challenge)
	f.Add("NTLM", challenge[:40])
	f.Add(`Basic realm="WSMAN", Negotiate`, []byte{})
	f.Fuzz(func(t *testing.T, prefix string, token []byte) {
		values := []string{prefix, "Negotiate " + base64.StdEncoding.EncodeToString(token)}
		got, err := findChallenge(values)
		checkText(t, err)
		if err != nil {
			return
		}
		if !strings.Contains(prefix, "Negotiate ") && !strings.Contains(prefix, "NTLM ") && !bytes.Equal(got, token) {
			t.Fatalf("token %x read as %x", token, got)
		}
		if err := checkChallenge(got); err != nil {
			checkText(t, err)
			return
		}
		cl, _, _ := challengeFor(t)
		_, _ = cl.Authenticate(got, nil) // must not panic on anything checkChallenge let through
	})
}

// FuzzUnseal feeds multipart/encrypted bodies to unseal; they must fail (the fuzzer cannot
// forge a signature) without a panic.
func FuzzUnseal(f *testing.F) {
	_, sess := sessionPair(f)
	sealed, sig := sess.Seal([]byte("<s:Envelope/>"))
	f.Add(frame(sig, sealed))
	f.Add([]byte(encBoundary + "\tContent-Type: " + encProtocol + "\r\n\tOriginalContent: type=x;Length=4\r\n" + encBoundary + encOctetLine + "\x10\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		client, _ := sessionPair(t)
		var plain []byte
		var err error
		if n := allocated(func() { plain, err = unseal(client, body) }); n > allocBound(len(body)) {
			t.Fatalf("unseal allocated %d bytes for %d", n, len(body))
		}
		checkText(t, err)
		if err == nil {
			t.Fatalf("forged frame accepted: %q", plain)
		}
	})
}

// FuzzSealRoundTrip seals messages as the lab host does and unseals them; a flipped bit
// anywhere in the sealed part or signature is refused.
func FuzzSealRoundTrip(f *testing.F) {
	f.Add([]byte("<s:Envelope/>"), uint16(0), false)
	f.Add([]byte(strings.Repeat("x", 5000)), uint16(4000), true)
	f.Fuzz(func(t *testing.T, msg []byte, at uint16, flip bool) {
		client, server := sessionPair(t)
		sealed, sig := server.Seal(msg)
		body := frame(sig, sealed)
		part := bytes.Index(body, []byte(encOctetLine)) + len(encOctetLine) + 4
		if flip {
			body[part+int(at)%(len(sig)+len(sealed))] ^= 0x01
		}
		plain, err := unseal(client, body)
		switch {
		case flip && err == nil:
			t.Fatal("tampered frame accepted")
		case !flip && (err != nil || !bytes.Equal(plain, msg)):
			t.Fatalf("round trip: %q, %v", plain, err)
		}
	})
}

// sessionPair authenticates a bodgit client to the lab's acceptor and returns both sessions.
func sessionPair(t testing.TB) (*ntlmssp.SecuritySession, *ntlm.Session) {
	cl, srv, challenge := challengeFor(t)
	authenticate, err := cl.Authenticate(challenge, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Authenticate(authenticate)
	if err != nil {
		t.Fatal(err)
	}
	return cl.SecuritySession(), res.Session
}

// TestCheckHeadBounds pins each bound of checkHead.
func TestCheckHeadBounds(t *testing.T) {
	cases := []struct {
		name, head string
		limit      bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"status line", "HTTP/1.1 200 " + strings.Repeat("A", maxStatusLine) + "\r\n\r\n", true},
		{"header line", "HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate " + strings.Repeat("A", maxHeaderLine) + "\r\n\r\n", true},
		{"header count", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxHeaders+1) + "\r\n", true},
		{"header count ok", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxHeaders) + "\r\n", false},
		{"total", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", 70) + "\r\n", true},
	}
	for _, c := range cases {
		err := checkHead(bufio.NewReaderSize(strings.NewReader(c.head), maxHeaderBytes))
		if got := errors.Is(err, ErrReplyLimit); got != c.limit || !c.limit && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A head cut short is the transport's failure, not a bound.
	if err := checkHead(bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\nX: y"), maxHeaderBytes)); errors.Is(err, ErrReplyLimit) || err == nil {
		t.Errorf("cut head: %v", err)
	}
}

// TestChallengeStructure: a CHALLENGE whose fields point outside it is refused before bodgit
// reads it.
func TestChallengeStructure(t *testing.T) {
	_, _, challenge := challengeFor(t)
	if err := checkChallenge(challenge); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), challenge...)
	binary.LittleEndian.PutUint32(bad[44:], uint32(len(bad))) // TargetInfo offset at the end
	if err := checkChallenge(bad); err == nil {
		t.Fatal("target info outside the message accepted")
	}
}
