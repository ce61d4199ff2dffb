package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The reference notes the code cites live in docs/. These patterns find what must not be cited
// (notes and samples that live outside the repository) and what must resolve (docs/ files and
// their sections, and sample paths).
var (
	// The team's notes outside the repository; written so that this file does not cite them.
	outsideNote = regexp.MustCompile(`\b(?:FACTS|WINRM-PROTOCOL|DESIGN)\.md\b`)
	// A path through a directory named samples or seed, as the outside notes had them.
	samplePath = regexp.MustCompile(`[\w.*/:-]*\b(?:samples|seed)/[\w.*/-]*`)
	// A docs file, optionally followed by its sections: docs/facts.md §5.3, §3.3
	docsRef = regexp.MustCompile(`\bdocs/([\w-]+\.md)`)
	// In docs/ itself, a sibling file: facts.md §6.1, or a link (facts.md#s6).
	siblingRef = regexp.MustCompile(`\b(facts|winrm-protocol|design)\.md(?:#(s[\d.]+))?`)
	// A section number, and what may separate the sections of one list (§1.7-1.8, §3.3, §5.3).
	sectionNum = regexp.MustCompile(`^\s*§(\d+(?:\.\d+)*)(?:-(\d+(?:\.\d+)*))?`)
	listSep    = regexp.MustCompile(`^(?:\s*(?:,|and|or|/)\s*)`)
	heading    = regexp.MustCompile(`(?m)^#{1,6} §(\d+(?:\.\d+)*)\b`)
	anchor     = regexp.MustCompile(`<a id="(s[\d.]+)"></a>`)
)

// docSections returns the section numbers and anchors of every docs/*.md file, by file name.
func docSections(t *testing.T, root string) (sections, anchors map[string]map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md under %s (%v)", root, err)
	}
	sections, anchors = map[string]map[string]bool{}, map[string]map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		sections[name], anchors[name] = map[string]bool{}, map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
			sections[name][m[1]] = true
		}
		for _, m := range anchor.FindAllStringSubmatch(string(b), -1) {
			anchors[name][m[1]] = true
		}
	}
	return sections, anchors
}

// citedSections reads the sections listed right after a file name: " §5.3, §3.3", " §1.7-1.8".
func citedSections(rest string) []string {
	var out []string
	for {
		m := sectionNum.FindStringSubmatchIndex(rest)
		if m == nil {
			return out
		}
		out = append(out, strings.TrimSuffix(rest[m[2]:m[3]], "."))
		if m[4] >= 0 {
			out = append(out, strings.TrimSuffix(rest[m[4]:m[5]], "."))
		}
		rest = rest[m[1]:]
		sep := listSep.FindString(rest)
		if sep == "" || !strings.HasPrefix(strings.TrimLeft(rest[len(sep):], " "), "§") {
			return out
		}
		rest = rest[len(sep):]
	}
}

// TestDocsCitationsResolve keeps the citations of the repository's Go code, YAML (playbooks,
// testdata, fuzz corpora) and READMEs inside the repository: no citation of the team's outside
// notes or of samples and write-ups the repository lacks, and every docs/ citation names a file
// and sections that exist. docs/*.md are held to their cross-references too.
func TestDocsCitationsResolve(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	sections, anchors := docSections(t, root)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		inDocs := strings.HasPrefix(rel, "docs/")
		base := d.Name()
		if !(strings.HasSuffix(base, ".go") || strings.HasSuffix(base, ".yaml") || base == "README.md" ||
			(inDocs && strings.HasSuffix(base, ".md"))) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			at := func(format string, args ...any) {
				t.Errorf("%s:%d: "+format, append([]any{rel, i + 1}, args...)...)
			}
			if inDocs {
				for _, m := range siblingRef.FindAllStringSubmatchIndex(line, -1) {
					name := line[m[2]:m[3]] + ".md"
					if m[4] >= 0 && !anchors[name][line[m[4]:m[5]]] {
						at("link to %s#%s: no such anchor", name, line[m[4]:m[5]])
					}
					for _, s := range citedSections(line[m[1]:]) {
						if !sections[name][s] {
							at("cites %s §%s: no such section", name, s)
						}
					}
				}
				continue
			}
			if m := outsideNote.FindString(line); m != "" {
				at("cites %s, which is not in the repository: cite docs/ instead", m)
			}
			for _, m := range docsRef.FindAllStringSubmatchIndex(line, -1) {
				name := line[m[2]:m[3]]
				if sections[name] == nil {
					at("cites docs/%s, which does not exist", name)
					continue
				}
				for _, s := range citedSections(line[m[1]:]) {
					if !sections[name][s] {
						at("cites docs/%s §%s: no such section", name, s)
					}
				}
			}
			for _, p := range samplePath.FindAllString(line, -1) {
				if strings.Contains(p, "://") || strings.HasPrefix(p, "www.") {
					continue // a web address, not a citation
				}
				p = strings.TrimRight(p, ".,;:")
				if !resolves(root, filepath.Dir(path), p) {
					at("cites %s, which is not in the repository (cite the copy the repository has, or docs/facts.md)", p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked under %s: is this the module root?", checked, root)
	}
}

// resolves reports whether p (a path, possibly with * wildcards) names something in the
// repository, read from the module root or from the citing file's directory.
func resolves(root, dir, p string) bool {
	for _, base := range []string{root, dir} {
		full := filepath.Join(base, filepath.FromSlash(p))
		if strings.Contains(p, "*") {
			if m, _ := filepath.Glob(full); len(m) > 0 {
				return true
			}
			continue
		}
		if _, err := os.Stat(full); err == nil {
			return true
		}
	}
	return false
}
