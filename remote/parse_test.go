package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample returns the payload of a captured Windows reply kept in lab/wsman/testdata/soap
// (line 1 is provenance).
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "lab", "wsman", "testdata", "soap", name))
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

func TestScanFaultSamples(t *testing.T) {
	cases := []struct {
		file    string
		code    uint32
		class   Class
		subcode string
	}{
		{"masterzen_receive_fault_timedout_500.xml", CodeTimedOut, ClassTimeout, "w:TimedOut"},
		{"pywinrm_receive_fault_timedout_500.xml", CodeTimedOut, ClassTimeout, "w:TimedOut"},
		{"rubywinrm_create_fault_quota_maxshellsperuser_wmierror.xml", CodeQuotaShells, ClassQuota, "w:QuotaLimit"},
		{"pywinrm_delete_fault_shell_not_found_500.xml", CodeShellNotFound, ClassFault, "w:InvalidSelectors"},
		{"masterzen_command_fault_filename_too_long_500.xml", 2147942606, ClassFault, "w:InternalError"},
	}
	for _, c := range cases {
		env, err := readEnvelope(sample(t, c.file), nil, nil)
		if err != nil || env.fault == nil {
			t.Errorf("%s: no fault found (%v)", c.file, err)
			continue
		}
		if env.fault.Code != c.code || faultClass(env.fault) != c.class || env.fault.Subcode != c.subcode {
			t.Errorf("%s: got %+v class %v", c.file, env.fault, faultClass(env.fault))
		}
		e := replyError("receive", "h", 500, nil, sample(t, c.file))
		if e.Code != c.code || e.Class != c.class {
			t.Errorf("%s: replyError %v", c.file, e)
		}
	}
}

func TestParseSamples(t *testing.T) {
	id, err := parseShellID(sample(t, "masterzen_create_shell_response.xml"))
	if err != nil || id == "" {
		t.Fatalf("shell id %q, %v", id, err)
	}
	if _, err := parseShellID([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><rsp:ShellId xmlns:rsp="x">123</rsp:ShellId></s:Body></s:Envelope>`)); err == nil {
		t.Fatal("a Create reply without w:Selector ShellId was accepted (winrmtest-style)")
	}
	cid, err := parseCommandID(sample(t, "masterzen_command_response.xml"))
	if err != nil || cid == "" {
		t.Fatalf("command id %q, %v", cid, err)
	}
	var out, errb bytes.Buffer
	r, err := parseReceive(sample(t, "masterzen_receive_response_done_exitcode_123.xml"), &out, &errb)
	if err != nil || !r.done || r.exitCode != 123 {
		t.Fatalf("got %+v, err %v", r, err)
	}
	r, err = parseReceive(sample(t, "pywinrm_receive_response_stdout_done_exitcode_0.xml"), &out, &errb)
	if err != nil || !r.done || r.exitCode != 0 || !strings.HasSuffix(out.String(), "hello world \r\n") || r.output != out.Len() {
		t.Fatalf("got %+v %q, err %v", r, out.String(), err)
	}
	out.Reset()
	r, err = parseReceive(sample(t, "masterzen_receive_response_stdout_stderr_running.xml"), &out, &errb)
	if err != nil || r.done || out.Len() == 0 || errb.Len() == 0 {
		t.Fatalf("got %+v %q %q, err %v", r, out.String(), errb.String(), err)
	}
	// A TimedOut fault in a 200 reply is recognised by its code.
	_, err = parseReceive(sample(t, "pywinrm_receive_fault_timedout_500.xml"), &out, &errb)
	if re := parseFailure("receive", "h", err); re.Code != CodeTimedOut || re.Class != ClassTimeout {
		t.Fatalf("timed out fault read as %v", re)
	}
}

// TestHostileRepliesAreErrors feeds replies a broken or hostile host could send: each parser
// returns an error (never a panic, never an empty ID taken for a real one).
func TestHostileRepliesAreErrors(t *testing.T) {
	inputs := []string{"", "<", "<a>", "not xml", "<?xml version='1.0'?>", "<a></b>",
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault/></s:Body></s:Envelope>`,
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`,
		strings.Replace(string(sample(t, "masterzen_create_shell_response.xml")), ">", ">\x00", 1),
		strings.Replace(string(sample(t, "masterzen_command_response.xml")), "</rsp:CommandId>", "&quot;&lt;x</rsp:CommandId>", 1),
	}
	for _, in := range inputs {
		if id, err := parseShellID([]byte(in)); err == nil {
			t.Errorf("parseShellID(%.60q) = %q, want an error", in, id)
		}
		if id, err := parseCommandID([]byte(in)); err == nil {
			t.Errorf("parseCommandID(%.60q) = %q, want an error", in, id)
		}
		if env, err := readEnvelope([]byte(in), nil, nil); err == nil && env.fault != nil && env.fault.Code != 0 {
			t.Errorf("readEnvelope(%.60q) found fault code %d", in, env.fault.Code)
		}
		if e := replyError("receive", "h", 500, nil, []byte(in)); e.Code != 0 || e.Class != ClassProtocol && e.Class != ClassFault {
			t.Errorf("replyError(500, %.60q) = %v, want a protocol error or a fault without code", in, e)
		}
		if r, err := parseReceive([]byte(in), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("parseReceive(%.60q) = %+v, want an error", in, r)
		}
	}
}

// TestRedactKeepsSentinels: a short password can occur in any error text; redacting it must
// not break the decisions taken on the error (413 adaptation, cancellation, fault codes).
func TestRedactKeepsSentinels(t *testing.T) {
	e := replyError("send", "h", 413, nil, nil)
	got := redact(e, "e") // "e" occurs in the 413 text
	if strings.Contains(got.Error(), "e") && !strings.Contains(got.Error(), "[redacted]") {
		t.Fatalf("not redacted: %v", got)
	}
	var re *Error
	if !errors.As(got, &re) || re.Code != CodeEnvelopeTooLarge || re.Class != ClassFault {
		t.Fatalf("class or code lost: %#v", got)
	}
	if !errors.Is(got, ErrEnvelopeTooLarge) || !errors.Is(got, ErrFault) {
		t.Fatalf("sentinels lost: %v", got)
	}
	plain := redact(fmt.Errorf("dial secret-host: %w", context.Canceled), "secret")
	if strings.Contains(plain.Error(), "secret") || !errors.Is(plain, context.Canceled) {
		t.Fatalf("plain error: %v, is canceled %v", plain, errors.Is(plain, context.Canceled))
	}
	if errors.Unwrap(plain) != nil {
		t.Fatal("the unredacted text is reachable through Unwrap")
	}
}
