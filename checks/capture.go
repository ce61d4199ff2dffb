package checks

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotCapture means the input has no probe v1 markers at all: it is not a probe capture.
var ErrNotCapture = errors.New("not an iisremedy probe capture (no probe v1 markers)")

// errUnsupportedVersion means the input is a probe capture of a version this build does not
// read (it has markers, none of them v1).
var errUnsupportedVersion = errors.New("unsupported iisremedy probe version")

// Capture is a probe capture split into its sections.
type Capture struct {
	Sections []*Section // in the order they appear
	// Problems are what was wrong with the markers: sections cut short, duplicated, end
	// markers without a beginning, markers of other versions.
	Problems []string
}

// Section is one section of a capture.
type Section struct {
	Name string
	// Text is what lies between the begin marker's line end and the end marker, in UTF-8:
	// UTF-16LE parts (with or without BOM, after an ASCII banner) decoded, ANSI bytes kept
	// when valid UTF-8 and read as Windows-1252 otherwise.
	Text string
	// Encoding is "ansi", "utf-16le", or "ansi+utf-16le" (an ASCII banner, then UTF-16LE).
	Encoding string
	// Complete is false when the capture ended (or the next section began) before this
	// section's end marker.
	Complete bool
	// RC is the exit code from the end marker; RCKnown is false when there was none or it
	// was not a number (e.g. delayed expansion off: rc=!ERRORLEVEL!).
	RC      int
	RCKnown bool
}

// Section returns the named section, or nil.
func (c *Capture) Section(name string) *Section {
	for _, s := range c.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// marker is one parsed marker line.
type marker struct {
	start, end int // byte range of the marker including its line end
	version    string
	begin      bool
	name       string
	rc         int
	rcKnown    bool
}

// maxCapture bounds what ParseCapture reads; a real capture is a few tens of kilobytes
// (the event section can grow with a long System log).
const maxCapture = 64 << 20

// ParseCapture splits probe output into sections. It accepts output captured over WinRM
// (ANSI), a file written by the .cmd form (ANSI markers around UTF-16LE wmic sections) and a
// capture saved entirely as UTF-16LE (e.g. by PowerShell redirection). Text around sections
// is ignored. A capture cut short keeps the sections it has (the last one marked
// incomplete); the missing ones are simply absent. Input without any v1 marker gives
// ErrNotCapture; input whose markers are all of another probe version gives an error that
// names that version.
func ParseCapture(data []byte) (*Capture, error) {
	if len(data) > maxCapture {
		return nil, fmt.Errorf("probe capture larger than %d bytes", maxCapture)
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if !bytes.Contains(data, []byte(markerPrefix)) && bytes.IndexByte(data, 0) >= 0 {
		// Perhaps the whole capture is UTF-16LE; decode it and look again.
		text, _ := decodeText(data)
		if strings.Contains(text, markerPrefix) {
			data = []byte(text)
		}
	}
	markers := findMarkers(data)
	c := &Capture{}
	var others []string
	var v1 []marker
	for _, m := range markers {
		if m.version != "v1" {
			others = append(others, m.version)
			continue
		}
		v1 = append(v1, m)
	}
	if len(v1) == 0 {
		if len(others) > 0 {
			return nil, fmt.Errorf("%w: capture has %s markers, this build reads v1", errUnsupportedVersion, others[0])
		}
		return nil, ErrNotCapture
	}
	if len(others) > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("ignored %d markers of probe version %s", len(others), others[0]))
	}
	seen := map[string]bool{}
	var open *marker
	closeOpen := func(endAt int, complete bool, m *marker) {
		body := data[open.end:endAt]
		s := &Section{Name: open.name, Complete: complete}
		if complete {
			s.RC, s.RCKnown = m.rc, m.rcKnown
			if !m.rcKnown {
				c.Problems = append(c.Problems, fmt.Sprintf("section %s: end marker has no numeric exit code", s.Name))
			}
		} else {
			c.Problems = append(c.Problems, fmt.Sprintf("section %s: cut short (no end marker)", s.Name))
		}
		s.Text, s.Encoding = decodeText(body)
		if seen[s.Name] {
			c.Problems = append(c.Problems, fmt.Sprintf("section %s: appears more than once; the first is used", s.Name))
		} else {
			seen[s.Name] = true
			c.Sections = append(c.Sections, s)
		}
		open = nil
	}
	for i := range v1 {
		m := &v1[i]
		switch {
		case m.begin && open != nil:
			closeOpen(m.start, false, nil)
			open = m
		case m.begin:
			open = m
		case open != nil && open.name == m.name:
			closeOpen(m.start, true, m)
		case open != nil:
			c.Problems = append(c.Problems, fmt.Sprintf("section %s: end marker of %s inside it", open.name, m.name))
		default:
			c.Problems = append(c.Problems, fmt.Sprintf("section %s: end marker without a begin marker", m.name))
		}
	}
	if open != nil {
		closeOpen(len(data), false, nil)
	}
	return c, nil
}

// findMarkers finds every well-formed marker. A marker may follow anything (a UTF-16LE body
// ends in a NUL byte, a command's output may lack a final line end); it ends at its closing
// ## plus optional blanks and one line end.
func findMarkers(data []byte) []marker {
	var out []marker
	pos := 0
	for {
		i := bytes.Index(data[pos:], []byte(markerPrefix))
		if i < 0 {
			return out
		}
		start := pos + i
		pos = start + len(markerPrefix)
		m, ok := parseMarker(data, start)
		if !ok {
			continue
		}
		out = append(out, m)
		pos = m.end
	}
}

func parseMarker(data []byte, start int) (marker, bool) {
	rest := data[start+len(markerPrefix):]
	// The marker text runs to the closing "##" on the same line.
	lineEnd := bytes.IndexAny(rest, "\r\n")
	if lineEnd < 0 {
		lineEnd = len(rest)
	}
	closing := bytes.Index(rest[:lineEnd], []byte("##"))
	if closing < 0 {
		return marker{}, false
	}
	fields := strings.Fields(string(rest[:closing]))
	m := marker{start: start}
	if len(fields) < 3 || !isMarkerWord(fields[0]) || fields[0][0] != 'v' {
		return m, false
	}
	m.version = fields[0]
	m.name = strings.ToLower(fields[2])
	if !isMarkerWord(m.name) {
		return m, false
	}
	switch fields[1] {
	case "begin":
		if len(fields) != 3 {
			return m, false
		}
		m.begin = true
	case "end":
		if len(fields) != 4 || !strings.HasPrefix(fields[3], "rc=") {
			return m, false
		}
		// cmd prints ERRORLEVEL as a signed 32-bit number; accept the unsigned form too.
		if rc, err := strconv.ParseInt(fields[3][3:], 10, 64); err == nil && rc >= -1<<31 && rc <= 1<<32-1 {
			m.rc, m.rcKnown = int(int32(uint32(rc))), true
		}
	default:
		return m, false
	}
	// Consume blanks and one line end (CRLF, CRCRLF, LF or CR).
	end := start + len(markerPrefix) + closing + 2
	for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
		end++
	}
	for end < len(data) && data[end] == '\r' {
		end++
	}
	if end < len(data) && data[end] == '\n' {
		end++
	}
	m.end = end
	return m, true
}

func isMarkerWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeText turns a section's bytes into UTF-8 text. wmic writes UTF-16LE with a BOM when
// its output goes to a file; on the first wmic run on a host the ASCII text "Please wait
// while WMIC is being installed." replaces the BOM (docs/facts.md §5.3). So: a BOM means UTF-16LE;
// otherwise, if from some point on every other byte is mostly NUL, the bytes before that
// point are ANSI (the banner) and the rest is UTF-16LE. The banner is found by structure,
// not by its English text.
func decodeText(b []byte) (string, string) {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		return decodeUTF16LE(b[2:]), "utf-16le"
	}
	z := bytes.IndexByte(b, 0)
	if z < 0 {
		return decodeANSI(b), "ansi"
	}
	start := z - 1
	if start < 0 {
		start = 0
	}
	if !looksUTF16LE(b[start:]) {
		return decodeANSI(b), "ansi"
	}
	prefix := b[:start]
	rest := b[start:]
	if bytes.HasSuffix(prefix, []byte{0xFF, 0xFE}) {
		prefix = prefix[:len(prefix)-2]
	}
	if len(prefix) == 0 {
		return decodeUTF16LE(rest), "utf-16le"
	}
	return decodeANSI(prefix) + decodeUTF16LE(rest), "ansi+utf-16le"
}

// looksUTF16LE reports whether at least half of the odd bytes of b are NUL: text of wmic
// output in UTF-16LE is mostly ASCII (names, numbers, paths).
func looksUTF16LE(b []byte) bool {
	n, zeros := 0, 0
	for i := 1; i < len(b); i += 2 {
		n++
		if b[i] == 0 {
			zeros++
		}
	}
	return n > 0 && zeros*2 >= n
}

func decodeUTF16LE(b []byte) string {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		b = b[2:]
	}
	var sb strings.Builder
	sb.Grow(len(b) / 2)
	// An odd trailing byte (a capture cut short) is dropped.
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(uint16(b[i]) | uint16(b[i+1])<<8)
		switch {
		case r == 0:
			continue
		case utf16.IsSurrogate(r) && i+3 < len(b):
			r2 := rune(uint16(b[i+2]) | uint16(b[i+3])<<8)
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				sb.WriteRune(d)
				i += 2
				continue
			}
			sb.WriteRune(utf8.RuneError)
		case utf16.IsSurrogate(r):
			sb.WriteRune(utf8.RuneError)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// decodeANSI keeps valid UTF-8 and reads anything else as Windows-1252. The code page of
// what a 2003 host prints through a WinRM pipe is unconfirmed (ANSI or OEM, per program and
// locale); everything the diagnosis uses (versions, codes, numbers, paths) is ASCII, so the
// choice only affects how names with accents are shown.
func decodeANSI(b []byte) string {
	if utf8.Valid(b) {
		return strings.ReplaceAll(string(b), "\x00", "")
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		switch {
		case c == 0:
		case c < 0x80:
			sb.WriteByte(c)
		case c >= 0x80 && c < 0xA0:
			sb.WriteRune(cp1252[c-0x80])
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// cp1252 maps 0x80..0x9F of Windows-1252; undefined positions map to U+FFFD.
var cp1252 = [32]rune{
	'€', '\uFFFD', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\uFFFD', 'Ž', '\uFFFD',
	'\uFFFD', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\uFFFD', 'ž', 'Ÿ',
}

// lines splits text into lines, accepting CRLF, CRCRLF (wmic) and LF, and trimming trailing
// CRs and blanks.
func lines(text string) []string {
	raw := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	out := raw[:0]
	for _, l := range raw {
		out = append(out, strings.TrimRight(l, "\r \t"))
	}
	return out
}
