package checks

import (
	"strconv"
	"strings"
)

// regQuery is what one reg query printed: its keys with their values. Other lines (the
// header, "ERROR: ..." in the host's language) are skipped: callers use the exit code, never
// those words.
type regQuery struct {
	Keys []regKey
	// Dropped counts the key and value lines past maxRegKeys and maxRegValues.
	Dropped int
}

// Bounds of a parsed reg query. The SP3 updates key of a patched 2003 host has a few hundred
// subkeys, CurrentVersion a few dozen values.
const (
	maxRegKeys   = 4096
	maxRegValues = 256
)

// regKey is one key line and the value lines under it. A subkey listed by a query has no
// values.
type regKey struct {
	Path   string
	Values []regValue
}

// regValue is one value line.
type regValue struct {
	Name string // "" for the default value (reg.exe 3.0 prints <NO NAME>)
	Type string // REG_SZ, REG_DWORD, ...
	Data string // as printed
}

// Value returns the named value (case-insensitive) of the first key that has it.
func (q *regQuery) Value(name string) (regValue, bool) {
	for _, k := range q.Keys {
		for _, v := range k.Values {
			if strings.EqualFold(v.Name, name) {
				return v, true
			}
		}
	}
	return regValue{}, false
}

// number returns a REG_DWORD/REG_QWORD value's number (printed 0x..., or decimal).
func (v regValue) number() (uint64, bool) {
	s := strings.TrimSpace(v.Data)
	if s == "" {
		return 0, false
	}
	var n uint64
	var err error
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		n, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		n, err = strconv.ParseUint(s, 10, 64)
	}
	return n, err == nil
}

// parseRegQuery parses reg query output: the reg.exe 3.0 layout of XP/2003 (a
// "! REG.EXE VERSION 3.0" header, docs/facts.md §5.1, checks/testdata/samples/reg-query-regexe-v3*.txt) and the
// later one without it; key lines start with HKEY_ (or a short root); value lines are
// indented "name TYPE data" with tabs or runs of spaces between, so the REG_* type token is
// the pivot: the name is what comes before it (names may hold spaces, <NO NAME> is the
// default value), the data what comes after.
func parseRegQuery(text string) *regQuery {
	q := &regQuery{}
	full := false // keys past maxRegKeys: their values are dropped with them
	for l := range lines(text) {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if strings.HasPrefix(l, "! REG.EXE VERSION") {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' && isRegKeyLine(l) {
			if full = len(q.Keys) >= maxRegKeys; full {
				q.Dropped++
				continue
			}
			q.Keys = append(q.Keys, regKey{Path: l})
			continue
		}
		if v, ok := parseRegValue(l); ok {
			if len(q.Keys) == 0 {
				q.Keys = append(q.Keys, regKey{}) // a value line before any key line
			}
			k := &q.Keys[len(q.Keys)-1]
			if full || len(k.Values) >= maxRegValues {
				q.Dropped++
				continue
			}
			k.Values = append(k.Values, v)
		}
	}
	return q
}

func isRegKeyLine(l string) bool {
	if len(l) >= 5 && strings.EqualFold(l[:5], "HKEY_") {
		return true
	}
	for _, r := range []string{"HKLM", "HKCU", "HKCR", "HKU", "HKCC"} {
		if len(l) >= len(r) && strings.EqualFold(l[:len(r)], r) && (len(l) == len(r) || l[len(r)] == '\\') {
			return true
		}
	}
	return false
}

func parseRegValue(l string) (regValue, bool) {
	// Find the first whitespace-delimited token that is a registry type.
	i := 0
	for i < len(l) {
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		j := i
		for j < len(l) && l[j] != ' ' && l[j] != '\t' {
			j++
		}
		if j > i && isRegType(l[i:j]) {
			name := strings.TrimSpace(l[:i])
			if name == "<NO NAME>" {
				name = ""
			}
			data := strings.TrimLeft(l[j:], " \t")
			return regValue{Name: name, Type: l[i:j], Data: data}, true
		}
		i = j
	}
	return regValue{}, false
}

func isRegType(s string) bool {
	if len(s) <= 4 || !strings.HasPrefix(s, "REG_") {
		return false
	}
	for i := 4; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
