package wsman

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// testdata/soap holds Windows replies from public client test suites,
// line 1 = provenance comment, then the payload byte for byte (docs/winrm-protocol.md §2.1).
func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "soap", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := strings.Cut(string(b), "\n")
	return payload
}

// shape lists the elements of a document in order (namespace URI, local name, sorted non-namespace
// attribute names), with consecutive repeats collapsed (several stream chunks = one).
func shape(t *testing.T, doc string) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var out []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, doc)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var attrs []string
		for _, a := range se.Attr {
			if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
				attrs = append(attrs, a.Name.Local)
			}
		}
		slices.Sort(attrs)
		e := se.Name.Space + " " + se.Name.Local + " " + strings.Join(attrs, ",")
		if len(out) == 0 || out[len(out)-1] != e {
			out = append(out, e)
		}
	}
	return out
}

func sameShape(t *testing.T, name, ours string) {
	t.Helper()
	want, got := shape(t, sample(t, name)), shape(t, ours)
	if !slices.Equal(want, got) {
		t.Errorf("%s: shape differs\n sample: %q\n   ours: %q", name, want, got)
	}
}

func TestSamplesThroughMasterzenParsers(t *testing.T) {
	for name, wantID := range map[string]string{
		"masterzen_create_shell_response":                  "67A74734-DD32-4F10-89DE-49A060483810",
		"pywinrm_create_shell_response":                    "11111111-1111-1111-1111-111111111113",
		"pywinrm_create_shell_response_with_shell_element": "5207F2DF-E6CA-4D10-8C7F-5380F01D6FDE",
		"rubywinrm_create_shell_response_v1":               "uuid:739990FF-1492-4CDD-80BB-6E07ADB06D85",
		"rubywinrm_create_shell_response_v2":               "62DE33F0-8674-43D9-B6A5-3298012CC4CD",
	} {
		if id, err := winrm.ParseOpenShellResponse(sample(t, name)); err != nil || id != wantID {
			t.Errorf("%s: %q %v", name, id, err)
		}
	}
	for name, wantID := range map[string]string{
		"masterzen_command_response":   "1A6DEE6B-EC68-4DD6-87E9-030C0048ECC4",
		"pywinrm_command_response_cmd": "11111111-1111-1111-1111-111111111111",
	} {
		if id, err := winrm.ParseExecuteCommandResponse(sample(t, name)); err != nil || id != wantID {
			t.Errorf("%s: %q %v", name, id, err)
		}
	}
	if _, err := winrm.ParseExecuteCommandResponse(sample(t, "masterzen_command_fault_filename_too_long_500")); err == nil {
		t.Error("command fault parsed as a command id")
	}
	receives := []struct {
		name           string
		done           bool
		code           int
		stdout, stderr string
	}{
		{"masterzen_receive_response_stdout_stderr_running", false, 0, "That's all folks!!!", "This is stderr, I'm pretty sure!"},
		{"masterzen_receive_response_done_exitcode_123", true, 123, "", ""},
		{"pywinrm_receive_response_stdout_done_exitcode_0", true, 0, "Microsoft Windows [Version 10.0.17763.107]\r\n(c) 2018 Microsoft Corporation. All rights reserved.\r\n\r\nC:\\Users\\rweber>echo hello world && exit\r\nhello world \r\n", ""},
		{"pywinrm_receive_response_powershell_stderr_clixml_exitcode_1", true, 1, "", "#< CLIXML\r\n"},
		{"masterzen_receive_fault_timedout_500", false, 0, "", ""},
		{"pywinrm_receive_fault_timedout_500", false, 0, "", ""},
	}
	for _, tt := range receives {
		var out, errb bytes.Buffer
		done, code, err := winrm.ParseSlurpOutputErrResponse(sample(t, tt.name), &out, &errb)
		if err != nil || done != tt.done || code != tt.code || out.String() != tt.stdout || !strings.HasPrefix(errb.String(), tt.stderr) {
			t.Errorf("%s: done %v code %d out %q err %.20q %v", tt.name, done, code, out.String(), errb.String(), err)
		}
	}
}

// Our replies have the samples' element structure and parse to the same values.
func TestOwnRepliesMatchSamples(t *testing.T) {
	rel := "uuid:D00059E8-57D6-4035-AD8D-3EDC495DA163"
	sh := &shell{id: newUUID(), owner: "Administrator", clientIP: "127.0.0.1"}
	create := string(envelope(envelopeOpen, nsTransfer+"/CreateResponse", rel, "", renderShell(sh, "http://127.0.0.1:5985/wsman", 15*time.Minute)))
	sameShape(t, "masterzen_create_shell_response", create)
	if id, err := winrm.ParseOpenShellResponse(create); err != nil || id != sh.id {
		t.Errorf("create: %q %v", id, err)
	}

	cmdID := newUUID()
	command := string(envelope(envelopeOpen, nsShell+"/CommandResponse", rel, "", `<rsp:CommandResponse><rsp:CommandId>`+cmdID+`</rsp:CommandId></rsp:CommandResponse>`))
	sameShape(t, "masterzen_command_response", command)
	if id, err := winrm.ParseExecuteCommandResponse(command); err != nil || id != cmdID {
		t.Errorf("command: %q %v", id, err)
	}

	running := string(envelope(envelopeOpen, nsShell+"/ReceiveResponse", rel, "", renderReceive(cmdID,
		&receiveResult{stdout: []byte("That's all folks!!!"), stderr: []byte("This is stderr, I'm pretty sure!")})))
	sameShape(t, "masterzen_receive_response_stdout_stderr_running", running)
	done := string(envelope(envelopeOpen, nsShell+"/ReceiveResponse", rel, "", renderReceive(cmdID,
		&receiveResult{stdout: []byte("hello world \r\n"), done: true})))
	sameShape(t, "pywinrm_receive_response_stdout_done_exitcode_0", done)
	var out, errb bytes.Buffer
	if fin, code, err := winrm.ParseSlurpOutputErrResponse(done, &out, &errb); !fin || code != 0 || err != nil || out.String() != "hello world \r\n" {
		t.Errorf("done: %v %d %v %q", fin, code, err, out.String())
	}

	timedOut := string(faultTimedOut().render(rel, "127.0.0.1"))
	sameShape(t, "masterzen_receive_fault_timedout_500", timedOut)
	if !strings.Contains(timedOut, `<s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text>`) {
		t.Errorf("timed out text: %s", timedOut)
	}
	sameShape(t, "pywinrm_delete_fault_shell_not_found_500", string(faultShellNotFound("B387C9DF-58ED-4E97-AE80-4117D8D12116").render(rel, "windows-host")))
	sameShape(t, "pywinrm_send_response", string(envelope(envelopeOpen, nsShell+"/SendResponse", rel, "", "<rsp:SendResponse/>")))
	sameShape(t, "pywinrm_signal_response", string(envelope(envelopeOpen, nsShell+"/SignalResponse", rel, "", "<rsp:SignalResponse/>")))
	sameShape(t, "pywinrm_delete_shell_response", string(envelope(envelopeOpen, nsTransfer+"/DeleteResponse", rel, "", "")))
	sameShape(t, "pywinrm_fault_mustunderstand_500", string(mustUnderstandFault(rel, &node{space: nsWsman, local: "ResourceUri"})))
}
