package checks

import (
	"iter"
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

// maxProperties bounds the properties of one wmic instance: the probe asks for two or three.
// A property past it starts a new instance, as a repeated one does.
const maxProperties = 32

// wmiInstances yields the instances of wmic /format:list output, one at a time (the same
// map, cleared, for each: a consumer copies what it keeps): Name=Value
// lines, instances separated by blank lines, line ends CRLF or \r\r\n, any number of blank
// lines before, between and after. A property that repeats inside an instance, or one past
// maxProperties, also starts a new instance, so a capture whose blank lines were lost still
// splits correctly. Lines that are not Name=Value (the first-run banner "Please wait while
// WMIC is being installed.", "No Instance(s) Available.", errors) are skipped: they are
// localized.
func wmiInstances(text string) iter.Seq[wmiInstance] {
	return func(yield func(wmiInstance) bool) {
		var cur wmiInstance
		for l := range lines(text) {
			l = strings.TrimLeft(l, " \t\uFEFF")
			if l == "" {
				if len(cur) > 0 && !yield(cur) {
					return
				}
				clear(cur)
				continue
			}
			eq := strings.IndexByte(l, '=')
			if eq <= 0 || !isPropertyName(l[:eq]) {
				continue
			}
			name, value := l[:eq], l[eq+1:]
			if _, dup := cur[name]; dup || len(cur) >= maxProperties {
				if !yield(cur) {
					return
				}
				clear(cur)
			}
			if cur == nil {
				cur = wmiInstance{}
			}
			cur[name] = value
		}
		if len(cur) > 0 {
			yield(cur)
		}
	}
}

// firstInstance returns the first instance of wmic output, if any.
func firstInstance(text string) (wmiInstance, bool) {
	for in := range wmiInstances(text) {
		return in, true
	}
	return nil, false
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
// (docs/facts.md §5.3); a value without braces is taken as a single element. At most max elements
// are returned; more reports whether there were others.
func parseWMIArray(s string, max int) (out []string, more bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	if !strings.HasPrefix(s, "{") {
		return []string{s}, false
	}
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	add := func(e string) bool {
		if len(out) >= max {
			more = true
			return false
		}
		out = append(out, e)
		return true
	}
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
				add(s[j:]) // unterminated: take the rest
				break
			}
			if !add(s[j:end]) {
				break
			}
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
			add(strings.TrimSpace(s[i:]))
			break
		}
		if !add(strings.TrimSpace(s[i : i+c])) {
			break
		}
		i += c + 1
	}
	return out, more
}

// parseUintField parses a wmic numeric property (FreeSpace, Size): decimal digits.
func parseUintField(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
