package checks

import (
	"strconv"
	"strings"
)

// wmiInstance is one instance printed by wmic ... /format:list: property name → value as
// printed (names as wmic prints them; look them up with Get, which ignores case).
type wmiInstance map[string]string

// get returns a property by name, ignoring case.
func (in wmiInstance) get(name string) (string, bool) {
	if v, ok := in[name]; ok {
		return v, true
	}
	for k, v := range in {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// parseWMICList parses wmic /format:list output: Name=Value lines, instances separated by
// blank lines, line ends CRLF or \r\r\n, any number of blank lines before, between and
// after. A property that repeats inside an instance also starts a new instance, so a
// capture whose blank lines were lost still splits correctly. Lines that are not
// Name=Value (the first-run banner "Please wait while WMIC is being installed.", "No
// Instance(s) Available.", errors) are skipped: they are localized.
func parseWMICList(text string) []wmiInstance {
	var out []wmiInstance
	var cur wmiInstance
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	for _, l := range lines(text) {
		l = strings.TrimLeft(l, " \t\uFEFF")
		if l == "" {
			flush()
			continue
		}
		eq := strings.IndexByte(l, '=')
		if eq <= 0 || !isPropertyName(l[:eq]) {
			continue
		}
		name, value := l[:eq], l[eq+1:]
		if _, dup := cur[name]; dup {
			flush()
		}
		if cur == nil {
			cur = wmiInstance{}
		}
		cur[name] = value
	}
	flush()
	return out
}

func isPropertyName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseWMIArray parses an array property as wmic /format:list prints it, e.g.
// InsertionStrings={"DefaultAppPool","1234","ffffffff"}; elements may be unquoted
// ({1,2}). A quoted element ends at a quote followed by a comma, the closing brace or the
// end, so commas and quotes inside names survive. The rendering is [NC] unconfirmed on 2003
// (docs/facts.md §5.3); a value without braces is taken as a single element.
func parseWMIArray(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if !strings.HasPrefix(s, "{") {
		return []string{s}
	}
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	var out []string
	i := 0
	for i <= len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '"' {
			j := i + 1
			end := -1
			for k := j; k < len(s); k++ {
				if s[k] != '"' {
					continue
				}
				r := strings.TrimLeft(s[k+1:], " \t")
				if r == "" || r[0] == ',' {
					end = k
					break
				}
			}
			if end < 0 {
				out = append(out, s[j:]) // unterminated: take the rest
				break
			}
			out = append(out, s[j:end])
			i = end + 1
			if c := strings.IndexByte(s[i:], ','); c >= 0 {
				i += c + 1
			} else {
				break
			}
			continue
		}
		c := strings.IndexByte(s[i:], ',')
		if c < 0 {
			out = append(out, strings.TrimSpace(s[i:]))
			break
		}
		out = append(out, strings.TrimSpace(s[i:i+c]))
		i += c + 1
	}
	return out
}

// parseUintField parses a wmic numeric property (FreeSpace, Size): decimal digits.
func parseUintField(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
