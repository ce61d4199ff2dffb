package wsman

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// XML namespaces, bound to the prefixes Windows uses on the wire (docs/winrm-protocol.md §2.2
// "Wire-format observations"; testdata/soap/masterzen_*.xml).
const (
	nsSoap     = "http://www.w3.org/2003/05/soap-envelope"                 // s
	nsAddr     = "http://schemas.xmlsoap.org/ws/2004/08/addressing"        // a
	nsTransfer = "http://schemas.xmlsoap.org/ws/2004/09/transfer"          // x
	nsEventing = "http://schemas.xmlsoap.org/ws/2004/08/eventing"          // e
	nsEnum     = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"       // n
	nsWsman    = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"          // w
	nsShell    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell" // rsp
	nsMsWsman  = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"     // p
	nsFault    = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"    // f

	anonymous   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	resourceCmd = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"

	// Request actions (docs/winrm-protocol.md §1.2) and the response actions Windows answers with (samples).
	actionCreate    = nsTransfer + "/Create"
	actionDelete    = nsTransfer + "/Delete"
	actionCommand   = nsShell + "/Command"
	actionSend      = nsShell + "/Send"
	actionReceive   = nsShell + "/Receive"
	actionSignal    = nsShell + "/Signal"
	actionFault     = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault" // testdata/soap/*_500.xml
	actionAddrFault = nsAddr + "/fault"                                  // pywinrm_fault_mustunderstand_500.xml

	stateRunning = nsShell + "/CommandState/Running"
	stateDone    = nsShell + "/CommandState/Done"
)

// node is a namespace-resolved XML element: just enough DOM to read a WS-Man request.
type node struct {
	space, local string
	attrs        []xml.Attr
	text         strings.Builder
	children     []*node
}

// attr returns the value of the attribute with the given local name ("" if absent or n is nil,
// so that a request missing an element reads as missing values, not a panic).
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// child returns the first child element with the given namespace and local name.
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.space == space && c.local == local {
			return c
		}
	}
	return nil
}

func (n *node) all(space, local string) []*node {
	var out []*node
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.space == space && c.local == local {
			out = append(out, c)
		}
	}
	return out
}

// Text returns the character data (CDATA sections and entity-decoded text alike).
func (n *node) Text() string {
	if n == nil {
		return ""
	}
	return n.text.String()
}

// parseXML reads a document into a node tree. Depth and size are bounded by the caller's body limit.
func parseXML(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse soap request: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{space: t.Name.Space, local: t.Name.Local, attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			} else {
				return nil, fmt.Errorf("parse soap request: more than one root element")
			}
			stack = append(stack, n)
			if len(stack) > 64 {
				return nil, fmt.Errorf("parse soap request: too deeply nested")
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("parse soap request: empty document")
	}
	return root, nil
}

// request is a parsed WS-Man request: the headers of docs/winrm-protocol.md §1.1 and the body.
type request struct {
	action, messageID, resourceURI, shellID string
	maxEnvelope                             int           // w:MaxEnvelopeSize (0 = absent)
	timeout                                 time.Duration // w:OperationTimeout (0 = absent)
	notUnderstood                           *node         // first mustUnderstand="true" header we do not know
	body                                    *node         // first child of s:Body, nil when empty
}

// understood lists the header blocks the server processes; anything else carrying
// mustUnderstand="true" gets the s:MustUnderstand fault (docs/winrm-protocol.md §3.2).
var understood = map[xml.Name]bool{
	{Space: nsAddr, Local: "To"}:                true,
	{Space: nsAddr, Local: "ReplyTo"}:           true,
	{Space: nsAddr, Local: "MessageID"}:         true,
	{Space: nsAddr, Local: "Action"}:            true,
	{Space: nsWsman, Local: "MaxEnvelopeSize"}:  true,
	{Space: nsWsman, Local: "OperationTimeout"}: true,
	{Space: nsWsman, Local: "Locale"}:           true,
	{Space: nsMsWsman, Local: "DataLocale"}:     true,
	{Space: nsWsman, Local: "SelectorSet"}:      true,
	{Space: nsWsman, Local: "ResourceURI"}:      true,
	{Space: nsWsman, Local: "OptionSet"}:        true,
	{Space: nsMsWsman, Local: "SessionId"}:      true,
	{Space: nsMsWsman, Local: "OperationID"}:    true,
	{Space: nsMsWsman, Local: "SequenceId"}:     true,
}

func parseRequest(data []byte) (*request, error) {
	root, err := parseXML(data)
	if err != nil {
		return nil, err
	}
	if root.space != nsSoap || root.local != "Envelope" {
		return nil, fmt.Errorf("parse soap request: root is %s:%s, not a SOAP 1.2 envelope", root.space, root.local)
	}
	req := &request{}
	hdr := root.child(nsSoap, "Header")
	if hdr != nil {
		for _, h := range hdr.children {
			// MZ and pywinrm send mustUnderstand without a prefix (docs/winrm-protocol.md §1.1).
			if mu := h.attr("mustUnderstand"); (mu == "true" || mu == "1") && !understood[xml.Name{Space: h.space, Local: h.local}] && req.notUnderstood == nil {
				req.notUnderstood = h
			}
		}
		req.action = strings.TrimSpace(hdr.child(nsAddr, "Action").Text())
		req.messageID = strings.TrimSpace(hdr.child(nsAddr, "MessageID").Text())
		req.resourceURI = strings.TrimSpace(hdr.child(nsWsman, "ResourceURI").Text())
		for _, sel := range hdr.child(nsWsman, "SelectorSet").all(nsWsman, "Selector") {
			if sel.attr("Name") == "ShellId" {
				req.shellID = strings.TrimSpace(sel.Text())
			}
		}
		if n := hdr.child(nsWsman, "MaxEnvelopeSize"); n != nil {
			req.maxEnvelope, _ = strconv.Atoi(strings.TrimSpace(n.Text()))
		}
		if n := hdr.child(nsWsman, "OperationTimeout"); n != nil {
			req.timeout, _ = parseDuration(strings.TrimSpace(n.Text()))
		}
	}
	if b := root.child(nsSoap, "Body"); b != nil && len(b.children) > 0 {
		req.body = b.children[0]
	}
	return req, nil
}

// parseDuration reads the xs:duration forms WS-Man clients send: PT60S, PT60.000S, PT1M30S, P0DT0H0M1S.
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("parse duration %q: not an ISO 8601 duration", s)
	if !strings.HasPrefix(s, "P") {
		return 0, bad
	}
	s = s[1:]
	var total float64
	inTime, parts := false, 0
	for s != "" {
		if s[0] == 'T' {
			inTime = true
			s = s[1:]
			continue
		}
		i := strings.IndexAny(s, "YMWDHS")
		if i <= 0 {
			return 0, bad
		}
		v, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || !(v >= 0) { // also refuses NaN, which ParseFloat accepts
			return 0, bad
		}
		unit := s[i]
		s = s[i+1:]
		parts++
		switch {
		case unit == 'D' && !inTime:
			total += v * 86400
		case unit == 'W' && !inTime:
			total += v * 7 * 86400
		case unit == 'H' && inTime:
			total += v * 3600
		case unit == 'M' && inTime:
			total += v * 60
		case unit == 'S' && inTime:
			total += v
		default: // years and months have no fixed length; WS-Man never sends them
			return 0, bad
		}
	}
	if parts == 0 {
		return 0, bad
	}
	if total > 1e9 {
		total = 1e9
	}
	return time.Duration(total * float64(time.Second)), nil
}

// newUUID returns a random version-4 UUID in upper case, as Windows writes its MessageIDs,
// ShellIds and CommandIds (testdata/soap/masterzen_*.xml).
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// envelopeOpen is the s:Envelope start tag of Windows' success replies
// (testdata/soap/masterzen_command_response.xml: single line, xml:lang first, no XML declaration).
const envelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSoap + `" xmlns:a="` + nsAddr + `" xmlns:x="` + nsTransfer +
	`" xmlns:w="` + nsWsman + `" xmlns:rsp="` + nsShell + `" xmlns:p="` + nsMsWsman + `">`

// faultEnvelopeOpen is the start tag of Windows' fault replies (testdata/soap/masterzen_receive_fault_timedout_500.xml).
const faultEnvelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSoap + `" xmlns:a="` + nsAddr + `" xmlns:x="` + nsTransfer +
	`" xmlns:e="` + nsEventing + `" xmlns:n="` + nsEnum + `" xmlns:w="` + nsWsman + `" xmlns:p="` + nsMsWsman + `">`

// envelope builds a reply: Action, an upper-case MessageID, To = anonymous, RelatesTo = the request's
// MessageID, in the order of testdata/soap/masterzen_command_response.xml. extraHeader goes after RelatesTo.
func envelope(open, action, relatesTo, extraHeader, body string) []byte {
	var b strings.Builder
	b.Grow(len(open) + len(body) + 512)
	b.WriteString(open)
	b.WriteString("<s:Header><a:Action>")
	b.WriteString(action)
	b.WriteString("</a:Action><a:MessageID>uuid:")
	b.WriteString(newUUID())
	b.WriteString("</a:MessageID><a:To>" + anonymous + "</a:To>")
	if relatesTo != "" {
		b.WriteString("<a:RelatesTo>")
		b.WriteString(esc(relatesTo))
		b.WriteString("</a:RelatesTo>")
	}
	b.WriteString(extraHeader)
	b.WriteString("</s:Header>")
	if body == "" {
		b.WriteString("<s:Body/>") // testdata/soap/pywinrm_delete_shell_response.xml
	} else {
		b.WriteString("<s:Body>")
		b.WriteString(body)
		b.WriteString("</s:Body>")
	}
	b.WriteString("</s:Envelope>")
	return []byte(b.String())
}

// esc escapes text for element content and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
