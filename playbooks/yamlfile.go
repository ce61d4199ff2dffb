package playbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var yamlLine = regexp.MustCompile(`line (\d+)`)

// ParseYAML returns the root node of a single-document YAML file; what names the kind of file
// in messages ("playbook", "waves file").
func ParseYAML(file string, data []byte, what string) (root *yaml.Node, err error) {
	defer func() {
		// The YAML library is not ours; a panic inside it must not take the tool down.
		if r := recover(); r != nil {
			root, err = nil, Errors{{File: file, Msg: fmt.Sprintf("not valid YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "empty " + what}}
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0]+": ")
			if yamlParserProblem(msg) {
				line++
			}
		}
		return nil, Errors{{File: file, Line: line, Msg: "not valid YAML: " + msg}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "more than one YAML document"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, Errors{{File: file, Line: doc.Line, Msg: "empty " + what}}
	}
	return doc.Content[0], nil
}

// yamlParserProblem reports the YAML library's parser (not scanner) errors, whose line it
// gives counting from 0 where the scanner's count from 1 (go.yaml.in/yaml/v3 decode.go fail).
func yamlParserProblem(msg string) bool {
	for _, p := range []string{
		"did not find expected <", "did not find expected node content", "did not find expected '-' indicator",
		"did not find expected key", "did not find expected ',' or", "found undefined tag handle",
		"found duplicate %", "found incompatible YAML document",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// YAMLDecoder reads a YAML node tree into typed values, collecting every problem with its
// line and field rather than stopping at the first: playbooks are read with it, and so are the
// tool's other declarative files (waves).
type YAMLDecoder struct {
	File string
	Errs Errors
}

// Errf records a problem at n.
func (d *YAMLDecoder) Errf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.Errs = append(d.Errs, &Error{File: d.File, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// FieldFunc reads the value of one mapping key; field is its dotted path.
type FieldFunc func(v *yaml.Node, field string)

// Mapping checks n is a mapping and calls each handler with its value. Unknown and
// duplicate keys are errors; so are missing required keys.
func (d *YAMLDecoder) Mapping(n *yaml.Node, field string, handlers map[string]FieldFunc, required ...string) {
	if !d.Kind(n, field, yaml.MappingNode, "a mapping") {
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := join(field, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.Errf(k, field, "keys must be plain names")
			continue
		}
		if seen[k.Value] {
			d.Errf(k, sub, "duplicate field")
			continue
		}
		seen[k.Value] = true
		h, ok := handlers[k.Value]
		if !ok {
			d.Errf(k, sub, "unknown field")
			continue
		}
		if v.Kind == yaml.AliasNode {
			d.Errf(v, sub, "YAML aliases are not supported")
			continue
		}
		h(v, sub)
	}
	for _, r := range required {
		if !seen[r] {
			d.Errf(n, join(field, r), "missing")
		}
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// Kind checks n is of kind k (want describes it for the message).
func (d *YAMLDecoder) Kind(n *yaml.Node, field string, k yaml.Kind, want string) bool {
	if n.Kind == yaml.AliasNode {
		d.Errf(n, field, "YAML aliases are not supported")
		return false
	}
	if n.Kind == k {
		return true
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.Errf(n, field, "missing value, want %s", want)
		return false
	}
	d.Errf(n, field, "want %s", want)
	return false
}

// List calls each for every element of a sequence.
func (d *YAMLDecoder) List(n *yaml.Node, field string, each func(v *yaml.Node, field string)) {
	if !d.Kind(n, field, yaml.SequenceNode, "a list") {
		return
	}
	for i, v := range n.Content {
		each(v, fmt.Sprintf("%s[%d]", field, i))
	}
}

// Str reads a scalar.
func (d *YAMLDecoder) Str(n *yaml.Node, field string) (string, bool) {
	if !d.Kind(n, field, yaml.ScalarNode, "a string") {
		return "", false
	}
	if n.Tag == "!!null" {
		d.Errf(n, field, "missing value")
		return "", false
	}
	return n.Value, true
}

// Text reads a non-empty string into dst.
func (d *YAMLDecoder) Text(n *yaml.Node, field string, dst *string) {
	s, ok := d.Str(n, field)
	if !ok {
		return
	}
	if strings.TrimSpace(s) == "" {
		d.Errf(n, field, "empty")
		return
	}
	*dst = s
}

// Integer reads an integer in min..max.
func (d *YAMLDecoder) Integer(n *yaml.Node, field string, min, max int64) (int64, bool) {
	s, ok := d.Str(n, field)
	if !ok {
		return 0, false
	}
	if n.Tag != "!!int" {
		d.Errf(n, field, "%q is not an integer", s)
		return 0, false
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		d.Errf(n, field, "%q is not an integer", s)
		return 0, false
	}
	if v < min || v > max {
		d.Errf(n, field, "%d out of range %d..%d", v, min, max)
		return 0, false
	}
	return v, true
}

// Duration reads a duration like 90s or 1h30m in min..max into dst.
func (d *YAMLDecoder) Duration(n *yaml.Node, field string, min, max time.Duration, dst *time.Duration) {
	s, ok := d.Str(n, field)
	if !ok {
		return
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Errf(n, field, "%q is not a duration (e.g. 90s, 45m, 1h30m)", s)
		return
	}
	if v < min || v > max {
		d.Errf(n, field, "%s out of range %s..%s", v, min, max)
		return
	}
	*dst = v
}

// Strings reads a list of strings, each passed to check (nil = all kept).
func (d *YAMLDecoder) Strings(n *yaml.Node, field string, check func(v *yaml.Node, field, s string) bool) []string {
	var out []string
	d.List(n, field, func(v *yaml.Node, f string) {
		s, ok := d.Str(v, f)
		if !ok {
			return
		}
		if check != nil && !check(v, f, s) {
			return
		}
		out = append(out, s)
	})
	return out
}
