package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Namespaces of the reply elements this client reads, as Windows binds them (docs/winrm-protocol.md
// §2 "Wire-format observations", §3 "General shape").
const (
	nsSoap     = "http://www.w3.org/2003/05/soap-envelope"                         // s
	nsAddr     = "http://schemas.xmlsoap.org/ws/2004/08/addressing"                // a
	nsWsman    = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"                  // w
	nsShell    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"         // rsp
	nsFault    = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"            // f
	nsWmiError = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError" // p on newer hosts' faults

	actionCommandResponse = nsShell + "/CommandResponse"
	stateDone             = nsShell + "/CommandState/Done"
)

// Bounds of a reply envelope. A Windows reply is a few elements deep (a fault with a provider
// detail, the deepest, about ten) and its elements average about a hundred bytes of markup
// (the captured replies; a short stream chunk is over fifty), so a reply of n bytes has far
// fewer than minElements+n/bytesPerElement elements. Checked token by token, the bounds stop a
// nested or element bomb before it costs more than a small multiple of the reply's size.
const (
	maxReplyDepth   = 32
	minElements     = 256
	bytesPerElement = 16
	maxReplyAttrs   = 64
	// maxKeptText is how much of a text field other than a stream is kept (IDs, action, fault
	// reason); its full length is still counted for the error that quotes it.
	maxKeptText = 1 << 10
)

// field is a text value of a reply: its first maxKeptText bytes and its full length.
type field struct {
	b []byte
	n int
}

func (f *field) add(p []byte) {
	f.n += len(p)
	if room := maxKeptText - len(f.b); room > 0 {
		f.b = append(f.b, p[:min(room, len(p))]...)
	}
}

// text is the kept value without surrounding blanks.
func (f *field) text() string { return strings.TrimSpace(string(f.b)) }

// quoted renders the value for an error message.
func (f *field) quoted() string { return quoteLen(string(f.b), f.n) }

// envelope is what one pass over a reply found.
type envelope struct {
	action    field
	fault     *Fault
	shellID   field // the first w:Selector Name="ShellId"
	hasShell  bool
	commandID field // the first rsp:CommandId
	hasCmd    bool
	streams   int  // rsp:Stream elements, data or not
	output    int  // decoded stdout and stderr bytes
	state     bool // an rsp:CommandState was present
	done      bool
	exitCode  field // rsp:ExitCode of the CommandState
	hasExit   bool
}

// readEnvelope reads a reply in one streaming pass with encoding/xml, within the bounds above.
// It collects what Create, Command, Receive and fault replies carry; the base64 data of
// rsp:Stream Name="stdout"/"stderr" is decoded, in document order, into stdout and stderr
// (nil: discarded). Elements are matched by namespace and local name, whatever the prefixes.
func readEnvelope(body []byte, stdout, stderr io.Writer) (*envelope, error) {
	env := &envelope{}
	maxElems := minElements + len(body)/bytesPerElement
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var stack []xml.Name
	var f Fault
	var reason, subcode, machine, errCode field
	var into *field            // text field being read
	var stream, decoded []byte // base64 text of the rsp:Stream being read, and its data
	var streamTo io.Writer
	inStream, inFault := false, false
	elems := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reply is not well-formed xml: %s", quote(err.Error()))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elems++
			switch {
			case len(stack) >= maxReplyDepth:
				return nil, fmt.Errorf("%w: xml nested deeper than %d elements", ErrReplyLimit, maxReplyDepth)
			case elems > maxElems:
				return nil, fmt.Errorf("%w: more than %d xml elements in a %d-byte reply", ErrReplyLimit, maxElems, len(body))
			case len(t.Attr) > maxReplyAttrs:
				return nil, fmt.Errorf("%w: an xml element with more than %d attributes", ErrReplyLimit, maxReplyAttrs)
			}
			var parent xml.Name
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			if len(stack) == 0 && t.Name != (xml.Name{Space: nsSoap, Local: "Envelope"}) {
				return nil, fmt.Errorf("reply is not a soap envelope (root element %s)", quote(t.Name.Local))
			}
			stack = append(stack, t.Name)
			into = nil
			switch t.Name {
			case xml.Name{Space: nsAddr, Local: "Action"}:
				if parent == (xml.Name{Space: nsSoap, Local: "Header"}) && env.action.n == 0 {
					into = &env.action
				}
			case xml.Name{Space: nsSoap, Local: "Fault"}:
				inFault = inFault || parent == xml.Name{Space: nsSoap, Local: "Body"}
			case xml.Name{Space: nsSoap, Local: "Value"}:
				if inFault && parent.Local == "Subcode" && subcode.n == 0 {
					into = &subcode
				}
			case xml.Name{Space: nsSoap, Local: "Text"}:
				if inFault && parent.Local == "Reason" && reason.n == 0 {
					into = &reason
				}
			case xml.Name{Space: nsFault, Local: "WSManFault"}:
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "Code":
						if v, err := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 32); err == nil && f.Code == 0 {
							f.Code = uint32(v)
						}
					case "Machine":
						if machine.n == 0 {
							machine.add([]byte(a.Value))
						}
					}
				}
			case xml.Name{Space: nsWmiError, Local: "error_Code"}:
				if inFault && errCode.n == 0 {
					into = &errCode
				}
			case xml.Name{Space: nsWsman, Local: "Selector"}:
				if !env.hasShell && attr(t, "Name") == "ShellId" {
					env.hasShell, into = true, &env.shellID
				}
			case xml.Name{Space: nsShell, Local: "CommandId"}:
				if !env.hasCmd {
					env.hasCmd, into = true, &env.commandID
				}
			case xml.Name{Space: nsShell, Local: "Stream"}:
				env.streams++
				inStream, stream = true, stream[:0]
				switch attr(t, "Name") {
				case "stdout":
					streamTo = stdout
				case "stderr":
					streamTo = stderr
				default:
					streamTo = nil
				}
			case xml.Name{Space: nsShell, Local: "CommandState"}:
				env.state = true
				env.done = env.done || strings.TrimSpace(attr(t, "State")) == stateDone
			case xml.Name{Space: nsShell, Local: "ExitCode"}:
				if parent == (xml.Name{Space: nsShell, Local: "CommandState"}) && !env.hasExit {
					env.hasExit, into = true, &env.exitCode
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			into = nil
			if inStream && t.Name == (xml.Name{Space: nsShell, Local: "Stream"}) {
				inStream = false
				var err error
				if decoded, err = decodeStream(stream, decoded, streamTo); err != nil {
					return nil, err
				}
				env.output += len(decoded)
			}
		case xml.CharData:
			switch {
			case inStream:
				stream = append(stream, t...)
			case into != nil:
				into.add(t)
			}
		}
	}
	if elems == 0 {
		return nil, errors.New("reply is empty")
	}
	if inFault {
		f.Subcode, f.Reason, f.Machine = subcode.text(), reason.text(), machine.text()
		if f.Code == 0 {
			if v, err := strconv.ParseUint(errCode.text(), 10, 32); err == nil {
				f.Code = uint32(v)
			}
		}
		env.fault = &f
	}
	return env, nil
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// decodeStream decodes the base64 data of one rsp:Stream into buf's storage, writes it to w
// (nil: only checked) and returns it.
func decodeStream(text, buf []byte, w io.Writer) ([]byte, error) {
	text = bytes.TrimSpace(text)
	if n := base64.StdEncoding.DecodedLen(len(text)); cap(buf) < n {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf[:cap(buf)], text)
	if err != nil {
		return nil, errors.New("receive reply has a stream that is not base64")
	}
	if w != nil && n > 0 {
		_, _ = w.Write(buf[:n])
	}
	return buf[:n], nil
}

// readReply is readEnvelope for a reply that must not be a fault: a fault is returned as
// the *Fault.
func readReply(body []byte, stdout, stderr io.Writer) (*envelope, error) {
	env, err := readEnvelope(body, stdout, stderr)
	if err == nil && env.fault != nil {
		return nil, env.fault
	}
	return env, err
}

// id returns the field as a shell or command ID, or an error that quotes it after what.
func (f *field) id(what string) (string, error) {
	id := f.text()
	if f.n > len(f.b) || !validID(id) {
		return "", fmt.Errorf("%s %s", what, f.quoted())
	}
	return id, nil
}

// parseShellID reads the ShellId of a Create reply: the w:Selector Name="ShellId" of its
// x:ResourceCreated (a reply without one is refused, not taken as an empty ID).
func parseShellID(reply []byte) (string, error) {
	env, err := readReply(reply, nil, nil)
	switch {
	case err != nil:
		return "", err
	case !env.hasShell:
		return "", errors.New("create reply has no w:Selector ShellId")
	}
	return env.shellID.id("create reply has a malformed ShellId")
}

// parseCommandID reads the rsp:CommandId of a Command reply, whose a:Action must be
// CommandResponse (as masterzen requires).
func parseCommandID(reply []byte) (string, error) {
	env, err := readReply(reply, nil, nil)
	switch {
	case err != nil:
		return "", err
	case env.action.text() != actionCommandResponse:
		return "", fmt.Errorf("command reply has action %s, not CommandResponse", env.action.quoted())
	}
	return env.commandID.id("command reply has a missing or malformed CommandId")
}

// received is what one Receive reply said.
type received struct {
	done     bool
	exitCode int
	output   int // stdout and stderr bytes it carried
}

// parseReceive reads a Receive reply: stream data goes to stdout and stderr in document order;
// Done and the exit code come from rsp:CommandState (masterzen's semantics, with errors for
// what masterzen ignored: bad base64, a non-numeric exit code). A fault in the reply is
// returned as the *Fault.
func parseReceive(reply []byte, stdout, stderr io.Writer) (received, error) {
	env, err := readReply(reply, stdout, stderr)
	switch {
	case err != nil:
		return received{}, err
	case env.streams == 0 && !env.state:
		return received{}, errors.New("receive reply has neither streams nor a command state")
	}
	r := received{done: env.done, output: env.output}
	if env.done && env.hasExit {
		code, err := strconv.ParseInt(env.exitCode.text(), 10, 64)
		if err != nil || env.exitCode.n > len(env.exitCode.b) || code < -1<<31 || code > 1<<32-1 {
			return received{}, fmt.Errorf("receive reply has a malformed ExitCode %s", env.exitCode.quoted())
		}
		r.exitCode = int(code)
	}
	return r, nil
}
