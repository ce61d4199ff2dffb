package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Redacted replaces a secret in everything the journal writes.
const Redacted = "[redacted]"

// redactor replaces secrets in every value on its way into the file. Each secret is matched
// as given and as it reads inside a JSON string (json.Marshal escapes <, > and & and any quote
// or backslash), since facts, evidence and options are stored as JSON.
type redactor struct {
	r *strings.Replacer // nil when there is nothing to redact
}

func newRedactor(secrets []string) *redactor {
	seen := map[string]bool{}
	var forms []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(s) == nil {
			b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			add(string(b[1 : len(b)-1]))
		}
	}
	if len(forms) == 0 {
		return &redactor{}
	}
	// The Replacer prefers the earlier of two matches at one place: longest first, so that a
	// secret containing another is replaced whole.
	sort.SliceStable(forms, func(a, b int) bool { return len(forms[a]) > len(forms[b]) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

func (x *redactor) string(s string) string {
	if x.r == nil {
		return s
	}
	return x.r.Replace(s)
}

func (x *redactor) bytes(b []byte) []byte {
	if x.r == nil {
		return b
	}
	return []byte(x.r.Replace(string(b)))
}

// args redacts the statement arguments that carry text. Every value reaches SQL through here,
// so no column can be forgotten.
func (x *redactor) args(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = x.string(v)
		case []byte:
			out[i] = x.bytes(v)
		case timeText:
			out[i] = string(v)
		case nil, int, int64:
			out[i] = v
		default:
			// A new argument type must be added above, not slip through unredacted.
			panic(fmt.Sprintf("journal: unredacted argument type %T", a))
		}
	}
	return out
}

// capOutput keeps at most max bytes of b (max < 0: all of it): a quarter from the head, the
// rest from the tail, where a failing installer or script says why, with a marker line
// between them. Cuts fall on line ends when one is near. The secrets were redacted before, so
// a cut cannot leave half a secret behind.
func capOutput(b []byte, max int) []byte {
	if max < 0 || len(b) <= max {
		return b
	}
	headLen := max / 4
	tailLen := max - headLen
	head := b[:headLen]
	if i := bytes.LastIndexByte(head, '\n'); i >= headLen/2 {
		head = head[:i+1]
	}
	tail := b[len(b)-tailLen:]
	if i := bytes.IndexByte(tail, '\n'); i >= 0 && i < tailLen/2 {
		tail = tail[i+1:]
	}
	out := make([]byte, 0, len(head)+len(tail)+64)
	out = append(out, head...)
	if len(head) > 0 && head[len(head)-1] != '\n' {
		out = append(out, '\n')
	}
	out = fmt.Appendf(out, "[journal: %d bytes left out]\n", len(b)-len(head)-len(tail))
	return append(out, tail...)
}
