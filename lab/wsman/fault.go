package wsman

import (
	"fmt"
	"time"
)

// fault is a WS-Management fault as Windows sends it (docs/winrm-protocol.md §3.1).
type fault struct {
	status  int    // HTTP status; every Windows fault seen so far is a 500
	code    string // s:Sender or s:Receiver
	subcode string // e.g. w:TimedOut
	reason  string // s:Reason/s:Text
	detail  string // optional w:FaultDetail URI
	wsman   string // f:WSManFault Code (decimal), "" = no f:WSManFault
	message string // f:Message
}

// Texts are en-US Windows strings; the trailing spaces are Windows' own.
const (
	// testdata/soap/masterzen_receive_fault_timedout_500.xml (two trailing spaces). masterzen/winrm
	// retries only when the error text contains "OperationTimeout" (docs/winrm-protocol.md §1.4).
	textTimedOut = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
	// testdata/soap/pywinrm_delete_fault_shell_not_found_500.xml (line breaks of the pretty-printed sample removed).
	textInvalidSelectors = "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "
	// testdata/soap/rubywinrm_create_fault_quota_maxshellsperuser_wmierror.xml s:Reason.
	textShellQuota = "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. "
)

func faultTimedOut() *fault {
	return &fault{status: 500, code: "s:Receiver", subcode: "w:TimedOut", reason: textTimedOut,
		wsman: "2150858793", message: textTimedOut}
}

func faultShellNotFound(id string) *fault {
	return &fault{status: 500, code: "s:Sender", subcode: "w:InvalidSelectors", reason: textInvalidSelectors,
		detail: "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors", wsman: "2150858843",
		message: "The request for the Windows Remote Shell with ShellId " + id + " failed because the shell was not found on the server. " +
			"Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. " +
			"Provide the correct ShellId or create a new shell and retry the operation. "}
}

// faultShellQuota: MaxShellsPerUser exceeded. Code 2150859173 and the numbered message come from
// testdata/soap/rubywinrm_create_fault_quota_maxshellsperuser_wmierror.xml (p:Message); that sample carries
// an MSFT_WmiError detail (newer Windows), here it is put in an f:WSManFault like the other faults (unconfirmed
// for WinRM 2.0).
func faultShellQuota(max int) *fault {
	return &fault{status: 500, code: "s:Sender", subcode: "w:QuotaLimit", reason: textShellQuota, wsman: "2150859173",
		message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", max)}
}

// faultOperationQuota: MaxConcurrentOperationsPerUser exceeded; 2150859174 and the text from
// docs/winrm-protocol.md §3.2 (masterzen/winrm#129, WinRb/winrm-fs#15); the w:QuotaLimit subcode is an inference.
func faultOperationQuota(max int) *fault {
	msg := fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent operations, which has been exceeded. Close existing operations for this user, or raise the quota for this user. ", max)
	return &fault{status: 500, code: "s:Sender", subcode: "w:QuotaLimit", reason: msg, wsman: "2150859174", message: msg}
}

// faultAccessDenied: 2147942405, s:Receiver, w:InternalError, HTTP 500 (docs/winrm-protocol.md §3.2, from the
// pywinrm error data quoted in wazuh/wazuh-ansible#581; no full XML capture exists).
func faultAccessDenied() *fault {
	return &fault{status: 500, code: "s:Receiver", subcode: "w:InternalError", reason: "Access is denied. ",
		wsman: "2147942405", message: "Access is denied. "}
}

// faultInternal is the injected "random 500": w:InternalError with E_FAIL (unconfirmed text and code).
func faultInternal() *fault {
	return &fault{status: 500, code: "s:Receiver", subcode: "w:InternalError", reason: "Unspecified error ",
		wsman: "2147500037", message: "Unspecified error "}
}

// faultInvalidParameter answers a Receive/Send/Signal naming an unknown CommandId
// (ERROR_INVALID_PARAMETER as an HRESULT; unconfirmed: no capture exists).
func faultInvalidParameter(what string) *fault {
	return &fault{status: 500, code: "s:Sender", subcode: "w:InvalidParameter", reason: "The parameter is incorrect. ",
		wsman: "2147942487", message: "The parameter is incorrect. " + what}
}

// faultActionNotSupported answers an unknown a:Action or ResourceURI (subcode per DSP0226; code unconfirmed).
func faultActionNotSupported(action string) *fault {
	msg := "The WS-Management service cannot process the request because the action is not supported: " + action + " "
	return &fault{status: 500, code: "s:Sender", subcode: "a:ActionNotSupported", reason: msg, wsman: "2150858757", message: msg}
}

// faultSchema answers a request we cannot parse (w:SchemaValidationError 2150858817, docs/winrm-protocol.md §3.2).
func faultSchema() *fault {
	msg := "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "
	return &fault{status: 500, code: "s:Sender", subcode: "w:SchemaValidationError", reason: msg, wsman: "2150858817", message: msg}
}

// render builds the fault document (shape of testdata/soap/masterzen_receive_fault_timedout_500.xml).
func (f *fault) render(relatesTo, machine string) []byte {
	body := `<s:Fault><s:Code><s:Value>` + f.code + `</s:Value><s:Subcode><s:Value>` + f.subcode +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + esc(f.reason) + `</s:Text></s:Reason><s:Detail>`
	if f.detail != "" {
		body += `<w:FaultDetail>` + f.detail + `</w:FaultDetail>`
	}
	if f.wsman != "" {
		body += `<f:WSManFault xmlns:f="` + nsFault + `" Code="` + f.wsman + `" Machine="` + esc(machine) + `"><f:Message>` +
			esc(f.message) + `</f:Message></f:WSManFault>`
	}
	body += `</s:Detail></s:Fault>`
	return envelope(faultEnvelopeOpen, actionFault, relatesTo, "", body)
}

// mustUnderstandFault renders s:MustUnderstand with the s:NotUnderstood header block
// (testdata/soap/pywinrm_fault_mustunderstand_500.xml; its reason text was edited by the sample's
// authors, the text here is unconfirmed).
func mustUnderstandFault(relatesTo string, n *node) []byte {
	hdr := `<s:NotUnderstood qname="q:` + esc(n.local) + `" xmlns:q="` + esc(n.space) + `"/>`
	body := `<s:Fault><s:Code><s:Value>s:MustUnderstand</s:Value></s:Code><s:Reason><s:Text xml:lang="en-US">` +
		`The WS-Management service cannot process a SOAP header in the request that is marked as mustUnderstand by the client.  ` +
		`This could be caused by the use of a version of the protocol which is not supported, or may be an incompatibility  ` +
		`between the client and server implementations. </s:Text></s:Reason></s:Fault>`
	return envelope(faultEnvelopeOpen, actionAddrFault, relatesTo, hdr, body)
}

// faultTimeoutTooLong refuses an OperationTimeout above MaxTimeoutms. Unconfirmed [NC]: no
// capture of this fault was found. The code is the one WinRM gives for an unusable timeout field
// (2150858767, "The XML contains an invalid timeout field in the SOAP header", quoted in
// NetDocuments-Archive/rd-winrm-plugin#3); subcode and text are the lab's.
func faultTimeoutTooLong(got, limit time.Duration) *fault {
	msg := fmt.Sprintf("The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: %s exceeds MaxTimeoutms (%d). ",
		isoSeconds(got), limit.Milliseconds())
	return &fault{status: 500, code: "s:Sender", subcode: "w:InvalidOptions", reason: msg, wsman: "2150858767", message: msg}
}
