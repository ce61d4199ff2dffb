package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"

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
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(r.Host), r.Verdict, printable(finding))
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
		playbooks.Healthy, playbooks.NotApplicable, playbooks.Unreachable, playbooks.AuthFailed, playbooks.ProbeFailed}
	var parts []string
	for _, v := range order {
		if counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], v))
			delete(counts, v)
		}
	}
	var rest []string
	for v, n := range counts {
		rest = append(rest, fmt.Sprintf("%d %s", n, v))
	}
	sort.Strings(rest)
	parts = append(parts, rest...)
	return fmt.Sprintf("%d hosts: %s", len(reports), strings.Join(parts, ", "))
}

// writeMarkdown prints a report for change review: a summary, then each host with its evidence.
func writeMarkdown(w io.Writer, reports []hostReport) error {
	var b strings.Builder
	b.WriteString("# iisremedy detection report\n\n")
	b.WriteString(summaryLine(reports) + "\n\n")
	b.WriteString("| host | verdict | evidence |\n|---|---|---|\n")
	for _, r := range reports {
		ev := make([]string, len(r.Evidence))
		for i, e := range r.Evidence {
			ev[i] = markdownCell(e)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", markdownCell(r.Host), r.Verdict, strings.Join(ev, "<br>"))
	}
	for _, r := range reports {
		if len(r.Notes) == 0 && r.Advice == "" {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", markdownCell(r.Host))
		if r.Advice != "" {
			fmt.Fprintf(&b, "Advice: %s\n\n", r.Advice)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdownCell keeps host-supplied text from breaking the table: pipes and line breaks.
func markdownCell(s string) string {
	return strings.ReplaceAll(printable(s), "|", `\|`)
}

// printable replaces control characters in host-supplied text, so a hostile host cannot move
// the cursor or recolour an admin's terminal through its output.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
