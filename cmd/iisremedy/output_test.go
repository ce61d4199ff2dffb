package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// unescapedLink finds a "](" whose bracket is not escaped: the end of a Markdown link's text.
var unescapedLink = regexp.MustCompile(`(^|[^\\])\]\(`)

var update = flag.Bool("update", false, "rewrite testdata/hostile/*.golden")

// TestHostileTextStaysInert diagnoses a capture whose host name, pool names and event strings
// carry terminal escape sequences (OSC title, clear screen, colours), a C1 CSI, a bidi override,
// HTML and Markdown link syntax. No format lets a raw control byte, C1 or bidi character
// through, and the Markdown cannot open a tag or a link; golden files pin each output.
func TestHostileTextStaysInert(t *testing.T) {
	capture := filepath.Join("testdata", "hostile", "capture.txt")
	for _, format := range outputFormats {
		t.Run(format, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, "diagnose", capture, "-o", format)
			if code != exitAttention {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for i, r := range stdout {
				if r == utf8.RuneError || (r < 0x20 && r != '\n') || r == 0x7f || hidden(r) {
					t.Fatalf("raw %U at byte %d: %q", r, i, stdout[max(0, i-40):min(len(stdout), i+40)])
				}
			}
			if format == "markdown" && (strings.Contains(stdout, "<img") || unescapedLink.MatchString(stdout)) {
				t.Errorf("markdown lets markup through:\n%s", stdout)
			}
			golden := filepath.Join("testdata", "hostile", format+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if stdout != string(want) {
				t.Errorf("output differs from %s (check, then go test -update):\n%s", golden, stdout)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain café 日本":    "plain café 日本",
		"a\x1b[2Jb":        `a\x1b[2Jb`,
		"tab\there":        `tab\x09here`,
		"bidi\u202eevil":   `bidi\u202eevil`,
		"csi\u009b31m":     `csi\u009b31m`,
		"bad\xffutf8":      `bad\xffutf8`,
		"zero\u200bwidth":  `zero\u200bwidth`,
		"line\u2028break":  `line\u2028break`,
		"del\x7fchar":      `del\x7fchar`,
		"isolate\u2066x":   `isolate\u2066x`,
		"bom\ufefffront":   `bom\ufefffront`,
		"arabic\u061cmark": `arabic\u061cmark`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
