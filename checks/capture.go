package checks

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"
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

// Bounds of what ParseCapture keeps, whatever it reads. Probe v1 has 13 sections; the
// problems of a capture are a handful of marker oddities. Past a bound, one more problem
// says how much was left out.
const (
	maxSections        = 64
	maxCaptureProblems = 50
)

// ParseCapture splits probe output into sections. It accepts output captured over WinRM
// (ANSI), a file written by the .cmd form (ANSI markers around UTF-16LE wmic sections) and a
// capture saved entirely as UTF-16LE (e.g. by PowerShell redirection). Text around sections
// is ignored. A capture cut short keeps the sections it has (the last one marked
// incomplete); the missing ones are simply absent. Input without any v1 marker gives
// ErrNotCapture; input whose markers are all of another probe version gives an error that
// names that version. Its memory is proportional to the input: section texts and a bounded
// number of sections and problems.
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
	c := &Capture{}
	dropped := 0
	note := func(format string, a ...any) {
		if len(c.Problems) < maxCaptureProblems {
			c.Problems = append(c.Problems, fmt.Sprintf(format, a...))
		} else {
			dropped++
		}
	}
	other, others, v1 := "", 0, 0
	seen := map[string]bool{}
	ignored := 0 // sections past maxSections
	var open *marker
	closeOpen := func(endAt int, complete bool, m *marker) {
		name := open.name
		defer func() { open = nil }()
		if complete && !m.rcKnown {
			note("section %s: end marker has no numeric exit code", name)
		}
		if !complete {
			note("section %s: cut short (no end marker)", name)
		}
		switch {
		case seen[name]:
			note("section %s: appears more than once; the first is used", name)
			return
		case len(c.Sections) >= maxSections:
			ignored++
			return
		}
		seen[name] = true
		s := &Section{Name: name, Complete: complete}
		if complete {
			s.RC, s.RCKnown = m.rc, m.rcKnown
		}
		s.Text, s.Encoding = decodeText(data[open.end:endAt])
		c.Sections = append(c.Sections, s)
	}
	for m := range markers(data) {
		if m.version != "v1" {
			if others == 0 {
				other = m.version
			}
			others++
			continue
		}
		v1++
		switch {
		case m.begin && open != nil:
			closeOpen(m.start, false, nil)
			open = &m
		case m.begin:
			open = &m
		case open != nil && open.name == m.name:
			closeOpen(m.start, true, &m)
		case open != nil:
			note("section %s: end marker of %s inside it", open.name, m.name)
		default:
			note("section %s: end marker without a begin marker", m.name)
		}
	}
	if v1 == 0 {
		if others > 0 {
			return nil, fmt.Errorf("%w: capture has %s markers, this build reads v1", errUnsupportedVersion, other)
		}
		return nil, ErrNotCapture
	}
	if open != nil {
		closeOpen(len(data), false, nil)
	}
	if others > 0 {
		c.Problems = slices.Insert(c.Problems, 0, fmt.Sprintf("ignored %d markers of probe version %s", others, other))
	}
	if ignored > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("ignored %d sections past the first %d", ignored, maxSections))
	}
	if dropped > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d more problems not listed", dropped))
	}
	return c, nil
}

// markers yields every well-formed marker. A marker may follow anything (a UTF-16LE body
// ends in a NUL byte, a command's output may lack a final line end); it ends at its closing
// ## plus optional blanks and one line end.
func markers(data []byte) iter.Seq[marker] {
	return func(yield func(marker) bool) {
		pos := 0
		for {
			i := bytes.Index(data[pos:], []byte(markerPrefix))
			if i < 0 {
				return
			}
			start := pos + i
			pos = start + len(markerPrefix)
			m, ok := parseMarker(data, start)
			if !ok {
				continue
			}
			if !yield(m) {
				return
			}
			pos = m.end
		}
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
	// Up to five fields, without allocating: captures have a marker every few lines.
	var fields [5][]byte
	n := 0
	for b := rest[:closing]; ; n++ {
		if b = bytes.TrimLeft(b, " \t"); len(b) == 0 {
			break
		}
		if n == len(fields) {
			return marker{}, false
		}
		i := bytes.IndexAny(b, " \t")
		if i < 0 {
			i = len(b)
		}
		fields[n], b = b[:i], b[i:]
	}
	m := marker{start: start}
	if n < 3 || !isMarkerWord(fields[0]) || fields[0][0] != 'v' || !isMarkerWord(fields[2]) {
		return m, false
	}
	m.version = "v1" // without an allocation in the usual case
	if string(fields[0]) != m.version {
		m.version = string(fields[0])
	}
	m.name = strings.ToLower(string(fields[2]))
	switch string(fields[1]) {
	case "begin":
		if n != 3 {
			return m, false
		}
		m.begin = true
	case "end":
		if n != 4 || !bytes.HasPrefix(fields[3], []byte("rc=")) {
			return m, false
		}
		// cmd prints ERRORLEVEL as a signed 32-bit number; accept the unsigned form too.
		if rc, err := strconv.ParseInt(string(fields[3][3:]), 10, 64); err == nil && rc >= -1<<31 && rc <= 1<<32-1 {
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

func isMarkerWord(s []byte) bool {
	if len(s) == 0 || len(s) > 32 {
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

// maxLine bounds a line of a section: a longer line is cut there (and the cut recorded as a
// problem). reg.exe prints a REG_BINARY value on one line, a few KB for the largest value of
// CurrentVersion (DigitalProductId4); the other lines the probe reads are under 300 bytes.
const maxLine = 16 << 10

// rawLines yields the lines of text, accepting CRLF, CRCRLF (wmic) and LF, trimming trailing
// CRs and blanks. They are substrings of text: nothing is copied.
func rawLines(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for {
			i := strings.IndexByte(text, '\n')
			line := text
			if i >= 0 {
				line = text[:i]
			}
			if !yield(strings.TrimRight(line, "\r \t")) || i < 0 {
				return
			}
			text = text[i+1:]
		}
	}
}

// lines is rawLines with each line cut at maxLine.
func lines(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for l := range rawLines(text) {
			if !yield(l[:min(len(l), maxLine)]) {
				return
			}
		}
	}
}

// longLines counts the lines of text that lines cuts.
func longLines(text string) int {
	n := 0
	for l := range rawLines(text) {
		if len(l) > maxLine {
			n++
		}
	}
	return n
}
