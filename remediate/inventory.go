package remediate

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Default WinRM 2.0 ports (docs/facts.md §6.1).
const (
	defaultHTTPPort  = 5985
	defaultHTTPSPort = 5986
)

// Inventory is a parsed host list.
type Inventory struct {
	File  string
	Hosts []InventoryHost // in file order
	// Groups are the [group] names in order of first appearance.
	Groups []string
}

// InventoryHost is one host line with its settings resolved.
type InventoryHost struct {
	// Host is the name or address as written, without brackets or port ("web01",
	// "10.0.0.5", "::1"); Entry is the host field exactly as written ("[::1]:5985").
	Host  string
	Entry string
	Port  int
	HTTPS bool
	// Auth is negotiate, basic, kerberos or certificate; "" = the tool's default.
	Auth string
	// TLS is verify or legacy; "" = the tool's default (verify).
	TLS string
	// TLSFingerprint is a SHA-256 certificate fingerprint, lower-case hex without colons.
	TLSFingerprint string
	User           string
	// Settings are the key=value settings as written on the line.
	Settings map[string]string
	// Group is the [group] the line is in, "" before any group header.
	Group string
	Line  int
}

// Addr is host:port for dialing ("[::1]:5985").
func (h InventoryHost) Addr() string {
	if strings.Contains(h.Host, ":") {
		return "[" + h.Host + "]:" + strconv.Itoa(h.Port)
	}
	return h.Host + ":" + strconv.Itoa(h.Port)
}

// InventoryError is one problem in an inventory file.
type InventoryError struct {
	File  string
	Line  int    // 1-based; 0 for the file as a whole
	Field string // the setting or part at fault ("port", "host", "group"); may be ""
	Msg   string
}

// Error formats the problem as file:line: field: msg.
func (e *InventoryError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// InventoryErrors is every problem of one inventory, in line order; ParseInventory
// reports them all at once so one edit fixes the file.
type InventoryErrors []*InventoryError

// Error joins the problems, one a line.
func (es InventoryErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives errors.As access to each *InventoryError.
func (es InventoryErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxInventorySize bounds what ParseInventory reads.
const maxInventorySize = 16 << 20

var (
	groupRe    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	hostnameRe = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
	userRe     = regexp.MustCompile(`^[^\s"'\\]+(\\[^\s"'\\]+)?$|^[^\s"'@]+@[^\s"'@]+$`)
	hex64Re    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// secretKeys are settings that would put a secret in the file; they are refused without
// echoing their value.
var secretKeys = map[string]bool{
	"password": true, "pass": true, "passwd": true, "ansible_password": true,
	"ansible_winrm_password": true, "ansible_ssh_pass": true, "hash": true, "nthash": true,
}

// ParseInventory reads a host list: one host a line as name, address or name:port,
// [IPv6] or [IPv6]:port, followed by key=value settings (port, https, auth, tls,
// tls_fingerprint, user; values may be quoted); # and ; start comments; [group] lines open
// an Ansible-INI-style group that the following hosts belong to (waves use them).
// Default port: 5985, or 5986 with https=true. A host listed twice (same name, any case,
// and port) is an error. name labels errors. On any problem it returns nil and
// InventoryErrors with every problem and its line.
func ParseInventory(name string, r io.Reader) (*Inventory, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInventorySize+1))
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", name, err)
	}
	if len(data) > maxInventorySize {
		return nil, InventoryErrors{{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxInventorySize)}}
	}
	text, err := inventoryText(data)
	if err != nil {
		return nil, InventoryErrors{{File: name, Msg: err.Error()}}
	}
	p := &invParser{inv: &Inventory{File: name}, seen: map[string]int{}, groups: map[string]bool{}}
	for i, line := range strings.Split(text, "\n") {
		p.line(i+1, strings.TrimRight(line, "\r"))
	}
	if !p.failed() && len(p.inv.Hosts) == 0 {
		p.errf(0, "", "no hosts")
	}
	if p.failed() {
		return nil, p.problems()
	}
	return p.inv, nil
}

// inventoryText decodes the file: UTF-8 (BOM allowed) or UTF-16LE with BOM, as Notepad
// saves "Unicode" files.
func inventoryText(data []byte) (string, error) {
	if len(data) >= 2 && data[0] == 0xFF && data[1] == 0xFE {
		b := data[2:]
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		return string(utf16.Decode(u)), nil
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if !utf8.Valid(data) {
		return "", fmt.Errorf("not UTF-8 text")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", fmt.Errorf("binary data (NUL bytes), not a host list")
	}
	return string(data), nil
}

type invParser struct {
	inv    *Inventory
	group  string
	seen   map[string]int // host key -> line
	groups map[string]bool
	errs   InventoryErrors
	more   int // problems past maxReported, counted only
}

// maxReported is how many problems an inventory reports one by one; the rest are counted,
// so that a garbage file of millions of tokens gives a screenful, not millions of lines.
const maxReported = 20

func (p *invParser) errf(line int, field, format string, args ...any) {
	if len(p.errs) >= maxReported {
		p.more++
		return
	}
	p.errs = append(p.errs, &InventoryError{File: p.inv.File, Line: line, Field: cut(field, 40), Msg: fmt.Sprintf(format, args...)})
}

// failed reports whether any problem was found (also past maxReported).
func (p *invParser) failed() bool { return len(p.errs) > 0 }

// problems returns the problems, with a last one counting those not listed.
func (p *invParser) problems() InventoryErrors {
	if p.more > 0 {
		return append(p.errs, &InventoryError{File: p.inv.File, Msg: fmt.Sprintf("and %d more problems", p.more)})
	}
	return p.errs
}

// quote quotes a value from the file for a message, cut to a readable length.
func quote(s string) string { return strconv.Quote(cut(s, 60)) }

// cut shortens s to at most n runes, marking the cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + fmt.Sprintf("…(%d characters)", len(r))
}

func (p *invParser) line(n int, l string) {
	toks, err := tokenize(l)
	if err != nil {
		p.errf(n, "", "%v", err)
		return
	}
	if len(toks) == 0 {
		return
	}
	if strings.HasPrefix(toks[0], "[") {
		joined := strings.Join(toks, " ")
		if strings.HasSuffix(joined, "]") && !isIPv6(joined[1:len(joined)-1]) {
			p.groupHeader(n, joined[1:len(joined)-1])
			return
		}
		if strings.HasSuffix(toks[0], "]") && !isIPv6(toks[0][1:len(toks[0])-1]) {
			p.errf(n, "group", "unexpected %s after the group header", quote(toks[1]))
			return
		}
	}
	p.host(n, toks)
}

// hostKey is the host as duplicates compare: an address in its canonical form ([::1] and
// [0:0::1] are one host), a name in lower case.
func hostKey(host string) string {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String()
	}
	return strings.ToLower(host)
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

func (p *invParser) groupHeader(n int, name string) {
	if i := strings.LastIndexByte(name, ':'); i >= 0 && (name[i+1:] == "vars" || name[i+1:] == "children") {
		p.errf(n, "group", "[%s]: group sections like :%s are not supported; put settings on the host lines", name, name[i+1:])
		p.group = name[:i]
		return
	}
	if !groupRe.MatchString(name) {
		p.errf(n, "group", "%s is not a group name (letters, digits, _ . -)", quote(name))
		return
	}
	p.group = name
	if !p.groups[name] {
		p.groups[name] = true
		p.inv.Groups = append(p.inv.Groups, name)
	}
}

// tokenize splits a line on blanks, keeping quoted values together and dropping comments
// (# or ; at the start of a token).
func tokenize(l string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inTok := false
	quote := byte(0)
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			cur.WriteByte(c)
		case c == ' ' || c == '\t':
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
			}
		case (c == '#' || c == ';') && !inTok:
			return toks, nil
		case c == '"' || c == '\'':
			quote = c
			inTok = true
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

// parsePort reads a TCP port: decimal digits only, 1..65535.
func parsePort(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 65535 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%s is not a number 1..65535", quote(s))
	}
	return v, nil
}

// splitHostPort parses the host field: name, name:port, IPv4, IPv4:port, [IPv6],
// [IPv6]:port.
func splitHostPort(s string) (host string, port int, err error) {
	portOf := func(ps string) (int, error) {
		v, err := parsePort(ps)
		if err != nil {
			return 0, fmt.Errorf("port %w", err)
		}
		return v, nil
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("%s: missing ]", quote(s))
		}
		host = s[1:end]
		addr, perr := netip.ParseAddr(host)
		if perr != nil || !addr.Is6() {
			return "", 0, fmt.Errorf("%s is not an IPv6 address", quote(host))
		}
		rest := s[end+1:]
		if rest == "" {
			return host, 0, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", 0, fmt.Errorf("%s: want [address]:port", quote(s))
		}
		port, err = portOf(rest[1:])
		return host, port, err
	}
	switch strings.Count(s, ":") {
	case 0:
		host = s
	case 1:
		i := strings.IndexByte(s, ':')
		host = s[:i]
		if port, err = portOf(s[i+1:]); err != nil {
			return "", 0, err
		}
	default:
		if _, perr := netip.ParseAddr(s); perr == nil {
			return "", 0, fmt.Errorf("IPv6 address %s must be in brackets: [%s] or [%s]:5985", s, s, s)
		}
		return "", 0, fmt.Errorf("%s is not a host name, address or host:port", quote(s))
	}
	if host == "" {
		return "", 0, fmt.Errorf("%s: empty host name", quote(s))
	}
	if addr, perr := netip.ParseAddr(host); perr == nil {
		if !addr.Is4() {
			return "", 0, fmt.Errorf("%s is not an IPv4 address", quote(host))
		}
		return host, port, nil
	}
	if len(host) > 253 || !hostnameRe.MatchString(host) || strings.Contains(host, "..") {
		return "", 0, fmt.Errorf("%s is not a host name", quote(host))
	}
	return host, port, nil
}

func (p *invParser) host(n int, toks []string) {
	before := len(p.errs)
	h := InventoryHost{Entry: toks[0], Group: p.group, Line: n, Settings: map[string]string{}}
	host, port, err := splitHostPort(toks[0])
	if err != nil {
		p.errf(n, "host", "%v", err)
	}
	h.Host, h.Port = host, port
	for _, t := range toks[1:] {
		eq := strings.IndexByte(t, '=')
		if eq <= 0 {
			p.errf(n, "", "%s: want key=value settings after the host (port, https, auth, tls, tls_fingerprint, user)", quote(t))
			continue
		}
		key, val := strings.ToLower(t[:eq]), t[eq+1:]
		if secretKeys[key] || strings.Contains(key, "password") {
			p.errf(n, key, "secrets do not belong in the inventory; use --password-env or the prompt")
			continue
		}
		if _, dup := h.Settings[key]; dup {
			p.errf(n, key, "set twice")
			continue
		}
		h.Settings[key] = val
		switch key {
		case "port":
			v, err := parsePort(val)
			if err != nil {
				p.errf(n, key, "%v", err)
				continue
			}
			if h.Port != 0 && h.Port != v {
				p.errf(n, key, "%d contradicts the port %d in %s", v, h.Port, toks[0])
				continue
			}
			h.Port = v
		case "https":
			switch strings.ToLower(val) {
			case "true":
				h.HTTPS = true
			case "false":
				h.HTTPS = false
			default:
				p.errf(n, key, "%s: want true or false", quote(val))
				continue
			}
		case "auth":
			if v := NormalizeAuth(val); v != "" {
				h.Auth = v
			} else {
				p.errf(n, key, "%s: want negotiate (or ntlm), basic, kerberos or certificate", quote(val))
			}
		case "tls":
			switch v := strings.ToLower(val); v {
			case "verify", "legacy":
				h.TLS = v
			default:
				p.errf(n, key, "%s: want verify or legacy", quote(val))
			}
		case "tls_fingerprint":
			fp := strings.ToLower(val)
			if strings.Contains(fp, ":") {
				parts := strings.Split(fp, ":")
				ok := len(parts) == 32
				for _, part := range parts {
					ok = ok && len(part) == 2
				}
				if !ok {
					p.errf(n, key, "want 64 hex digits of a SHA-256 fingerprint, with a colon between every two or none")
					continue
				}
				fp = strings.Join(parts, "")
			}
			if !hex64Re.MatchString(fp) {
				p.errf(n, key, "want 64 hex digits of a SHA-256 fingerprint, with a colon between every two or none")
				continue
			}
			h.TLSFingerprint = fp
		case "user":
			if val == "" || len(val) > 256 || !userRe.MatchString(val) {
				p.errf(n, key, "%s: want user, DOMAIN\\user or user@domain", quote(val))
				continue
			}
			h.User = val
		default:
			p.errf(n, key, "unknown setting (want port, https, auth, tls, tls_fingerprint, user)")
		}
	}
	if h.Port == 0 {
		h.Port = defaultHTTPPort
		if h.HTTPS {
			h.Port = defaultHTTPSPort
		}
	}
	// TLS settings only mean something over HTTPS; say so rather than guess.
	if h.TLS != "" && !h.HTTPS {
		p.errf(n, "tls", "applies only with https=true")
	}
	if h.TLSFingerprint != "" && !h.HTTPS {
		p.errf(n, "tls_fingerprint", "applies only with https=true")
	}
	if len(p.errs) > before || p.more > 0 {
		return
	}
	key := hostKey(h.Host) + "|" + strconv.Itoa(h.Port)
	if first, dup := p.seen[key]; dup {
		p.errf(n, "host", "%s is listed twice (first at line %d)", h.Addr(), first)
		return
	}
	p.seen[key] = n
	p.inv.Hosts = append(p.inv.Hosts, h)
}
