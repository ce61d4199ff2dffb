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
func sample(t *testing.T, name string) []byte {
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
		sc := scanEnvelope(sample(t, c.file))
		if !sc.ok || sc.fault == nil {
			t.Errorf("%s: no fault found", c.file)
			continue
		}
		if sc.fault.Code != c.code || faultClass(sc.fault) != c.class || sc.fault.Subcode != c.subcode {
			t.Errorf("%s: got %+v class %v", c.file, sc.fault, faultClass(sc.fault))
		}
		e := replyError("receive", "h", 500, sample(t, c.file))
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
	done, code, err := parseReceive(sample(t, "masterzen_receive_response_done_exitcode_123.xml"), &out, &errb)
	if err != nil || !done || code != 123 {
		t.Fatalf("done %v code %d err %v", done, code, err)
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
		if sc := scanEnvelope([]byte(in)); sc.fault != nil && sc.fault.Code != 0 {
			t.Errorf("scanEnvelope(%.60q) found fault code %d", in, sc.fault.Code)
		}
		if e := replyError("receive", "h", 500, []byte(in)); e.Code != 0 || e.Class != ClassProtocol && e.Class != ClassFault {
			t.Errorf("replyError(500, %.60q) = %v, want a protocol error or a fault without code", in, e)
		}
		// masterzen's Receive parser ignores decode errors (receiveAll checks the envelope first);
		// garbage must at least never read as a finished command.
		if done, _, _ := parseReceive([]byte(in), &bytes.Buffer{}, &bytes.Buffer{}); done {
			t.Errorf("parseReceive(%.60q) reports Done", in)
		}
	}
}

// TestRedactKeepsSentinels: a short password can occur in any error text; redacting it must
// not break the decisions taken on the error (413 adaptation, cancellation, fault codes).
func TestRedactKeepsSentinels(t *testing.T) {
	e := replyError("send", "h", 413, nil)
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
