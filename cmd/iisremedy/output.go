package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
)

// hostReport is one host in the output of detect and diagnose. Its JSON form is the documented
// schema (README.md, "JSON output"); it only grows compatibly.
type hostReport struct {
	Host     string            `json:"host"`
	Verdict  playbooks.Verdict `json:"verdict"`
	Evidence []string          `json:"evidence"`
	Notes    []string          `json:"notes,omitempty"`
	Advice   string            `json:"advice,omitempty"`
	Facts    *checks.Facts     `json:"facts,omitempty"`
	Error    *string           `json:"error"`
}

func reportsFromFindings(findings []remediate.HostFinding) []hostReport {
	out := make([]hostReport, len(findings))
	for i, f := range findings {
		out[i] = newHostReport(f.Host.Entry, f.Finding, f.Facts, f.Err)
	}
	return out
}

func newHostReport(host string, f checks.Finding, facts *checks.Facts, err error) hostReport {
	r := hostReport{Host: host, Verdict: f.Verdict, Evidence: f.Evidence, Notes: f.Notes, Advice: f.Advice, Facts: facts}
	if r.Evidence == nil {
		r.Evidence = []string{}
	}
	if err != nil {
		msg := err.Error()
		r.Error = &msg
	}
	return r
}

func writeFindings(w io.Writer, format string, findings []remediate.HostFinding) error {
	return writeReports(w, format, reportsFromFindings(findings))
}

func writeReports(w io.Writer, format string, reports []hostReport) error {
	switch format {
	case "json":
		return writeJSON(w, struct {
			Hosts []hostReport `json:"hosts"`
		}{reports})
	case "markdown":
		return writeMarkdown(w, reports)
	default:
		return writeTable(w, reports)
	}
}

// writeTable prints one line per host: the verdict and the finding it rests on, which is the
// last sentence of the evidence (the earlier ones are the facts that lead to it; -o json and
// -o markdown carry them all).
func writeTable(w io.Writer, reports []hostReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tVERDICT\tFINDING")
	for _, r := range reports {
		finding := ""
		if n := len(r.Evidence); n > 0 {
			finding = r.Evidence[n-1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(r.Host), printable(string(r.Verdict)), printable(finding))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", summaryLine(reports))
	return nil
}

// summaryLine counts hosts per verdict, in the order of the table in docs/design.md §5.4.
func summaryLine(reports []hostReport) string {
	counts := map[playbooks.Verdict]int{}
	for _, r := range reports {
		counts[r.Verdict]++
	}
	order := []playbooks.Verdict{playbooks.Affected, playbooks.Mismatch, playbooks.AtRisk, playbooks.OtherCause,
		playbooks.Healthy, playbooks.NotApplicable, playbooks.Unreachable, playbooks.AuthFailed, playbooks.ProbeFailed,
		playbooks.Skipped}
	var parts []string
	for _, v := range order {
		if counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], v))
			if v == playbooks.Skipped {
				parts[len(parts)-1] += " (interrupted)"
			}
			delete(counts, v)
		}
	}
	var rest []string
	for v, n := range counts {
		rest = append(rest, fmt.Sprintf("%d %s", n, printable(string(v))))
	}
	sort.Strings(rest)
	parts = append(parts, rest...)
	return fmt.Sprintf("%s: %s", plural(len(reports), "host"), strings.Join(parts, ", "))
}

// writeMarkdown prints a report for change review: a summary, then each host with its evidence.
// Every text from a host is escaped for Markdown, so a host cannot inject markup, HTML or
// terminal sequences into the document.
func writeMarkdown(w io.Writer, reports []hostReport) error {
	var b strings.Builder
	b.WriteString("# iisremedy detection report\n\n")
	b.WriteString(summaryLine(reports) + "\n\n")
	b.WriteString("| host | verdict | evidence |\n|---|---|---|\n")
	for _, r := range reports {
		ev := make([]string, len(r.Evidence))
		for i, e := range r.Evidence {
			ev[i] = markdownText(e)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", markdownText(r.Host), markdownText(string(r.Verdict)), strings.Join(ev, "<br>"))
	}
	for _, r := range reports {
		if len(r.Notes) == 0 && r.Advice == "" {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", markdownText(r.Host))
		if r.Advice != "" {
			fmt.Fprintf(&b, "Advice: %s\n\n", markdownText(r.Advice))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", markdownText(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdownText makes text safe anywhere in a Markdown line, table cells included: printable,
// with the characters that open markup, links or HTML escaped.
func markdownText(s string) string {
	var b strings.Builder
	for _, r := range printable(s) {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\\', '|', '`', '*', '_', '[', ']', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printable shows text from a host safely on a terminal: control characters (C0, DEL, C1),
// the characters that reorder or hide text (bidi controls, zero-width and line separators)
// and bytes that are not UTF-8 become visible escapes (\x1b, \u202e), so a hostile host can
// neither move the cursor, retitle or recolour the terminal, nor disguise what it wrote.
func printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || hidden(r) {
			return true
		}
	}
	return false
}

// hidden reports characters a terminal or browser acts on instead of showing: C1 controls
// (U+009B is a CSI on many terminals), bidi embeddings, overrides, isolates and marks,
// zero-width characters, line and paragraph separators and the BOM.
func hidden(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f,
		r == 0x061c, r == 0x180e,
		r >= 0x200b && r <= 0x200f,
		r >= 0x2028 && r <= 0x202e,
		r >= 0x2060 && r <= 0x2069,
		r == 0xfeff:
		return true
	}
	return false
}

// writeJSON writes v as indented JSON in which the characters printable escapes appear as
// \uXXXX escapes: the same strings to a JSON reader, nothing a terminal acts on when the
// document is shown raw. (encoding/json already escapes <, >, &, U+2028 and U+2029.)
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := buf.Bytes()
	if bytes.ContainsFunc(out, func(r rune) bool { return hidden(r) || r == 0x7f }) {
		var b bytes.Buffer
		for _, r := range string(out) {
			if hidden(r) || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
		out = b.Bytes()
	}
	_, err := w.Write(out)
	return err
}
