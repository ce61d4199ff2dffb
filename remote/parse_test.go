package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// sample returns the payload of a captured reply in /work/shared/samples/soap (line 1 is provenance).
func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/work/shared/samples/soap", name))
	if err != nil {
		t.Skipf("sample not available: %v", err)
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

func TestParsersNeverPanic(t *testing.T) {
	inputs := [][]byte{nil, []byte("<"), []byte("<a>"), []byte("not xml"), []byte("<?xml version='1.0'?>"),
		[]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault/></s:Body></s:Envelope>`)}
	for _, in := range inputs {
		_ = scanEnvelope(in)
		_, _ = parseShellID(in)
		_, _ = parseCommandID(in)
		_, _, _ = parseReceive(in, &bytes.Buffer{}, &bytes.Buffer{})
		_ = replyError("op", "h", 500, in)
	}
}
