package playbooks

import (
	"embed"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a playbook file: where it is and which field.
type Error struct {
	File  string
	Line  int    // 1-based; 0 when the problem is not tied to a line
	Field string // dotted path, e.g. installer.packages[2].sha1; "" for syntax errors
	Msg   string
}

// Error formats the problem as file:line: field: msg.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one playbook, in file order. Load collects them all
// rather than stopping at the first, so one validate run shows everything to fix.
type Errors []*Error

// Error joins the problems, one a line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives errors.As access to each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxPlaybookSize bounds what Load reads; real playbooks are a few kilobytes.
const maxPlaybookSize = 1 << 20

//go:embed data/*.yaml
var embedded embed.FS

// Embedded returns the names of the embedded playbooks, sorted.
func Embedded() []string {
	ents, err := embedded.ReadDir("data")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// EmbeddedSource returns the YAML text of an embedded playbook.
func EmbeddedSource(name string) ([]byte, error) {
	if strings.ContainsAny(name, `/\.`) || name == "" {
		return nil, fmt.Errorf("no embedded playbook %q (have %s)", name, strings.Join(Embedded(), ", "))
	}
	data, err := embedded.ReadFile(path.Join("data", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("no embedded playbook %q (have %s)", name, strings.Join(Embedded(), ", "))
	}
	return data, nil
}

// Get loads an embedded playbook by name ("kb982666").
func Get(name string) (*Playbook, error) {
	data, err := EmbeddedSource(name)
	if err != nil {
		return nil, err
	}
	return Load("embedded:"+name+".yaml", data)
}

// Default returns the embedded kb982666 playbook. The embedded files are tested, so it
// does not fail; a nil return would mean a broken build.
func Default() *Playbook {
	pb, err := Get("kb982666")
	if err != nil {
		return nil
	}
	return pb
}

// LoadFile reads and validates a playbook file.
func LoadFile(name string) (*Playbook, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read playbook: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPlaybookSize+1))
	if err != nil {
		return nil, fmt.Errorf("read playbook %s: %w", name, err)
	}
	return Load(name, data)
}

// Load parses and validates a playbook. file names the source in errors. On any problem it
// returns nil and an Errors value listing every problem found (file:line: field: msg).
func Load(file string, data []byte) (pb *Playbook, err error) {
	if len(data) > maxPlaybookSize {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("playbook larger than %d bytes", maxPlaybookSize)}}
	}
	root, err := ParseYAML(file, data, "playbook")
	if err != nil {
		return nil, err
	}
	d := &decoder{YAMLDecoder: YAMLDecoder{File: file}}
	pb = &Playbook{File: file}
	d.playbook(root, pb)
	if len(d.Errs) > 0 {
		sort.SliceStable(d.Errs, func(i, j int) bool { return d.Errs[i].Line < d.Errs[j].Line })
		return nil, d.Errs
	}
	return pb, nil
}

// decoder reads a playbook: the YAML decoder, plus where each accepted package and trigger
// file came from, for the checks across sections.
type decoder struct {
	YAMLDecoder
	pkgRefs  []ref
	fileRefs [][]ref
}

type ref struct {
	node  *yaml.Node
	field string
}

func (d *decoder) intTo(n *yaml.Node, field string, min, max int64, dst *int) {
	if v, ok := d.Integer(n, field, min, max); ok {
		*dst = int(v)
	}
}

func (d *decoder) version(n *yaml.Node, field string, dst *Version) {
	s, ok := d.Str(n, field)
	if !ok {
		return
	}
	v, err := ParseVersion(s)
	if err != nil {
		d.Errf(n, field, "%q is not a file version a.b.c.d", s)
		return
	}
	*dst = v
}

var (
	nameRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	kbRe       = regexp.MustCompile(`^KB[0-9]{5,8}$`)
	bulletinRe = regexp.MustCompile(`^MS[0-9]{2}-[0-9]{3}$`)
	fileRe     = regexp.MustCompile(`^[A-Za-z0-9_.$~-]+\.[A-Za-z0-9]{1,4}$`)
	hexRe      = regexp.MustCompile(`^[0-9a-f]+$`)
	reasonRe   = regexp.MustCompile(`^([pu]:)?([0-9]{1,3}):([0-9]{1,5})$`)
	osVerRe    = regexp.MustCompile(`^[0-9]{1,2}\.[0-9]{1,2}$`)
)

var archs = map[string]bool{"x86": true, "x64": true, "ia64": true}

func (d *decoder) playbook(n *yaml.Node, pb *Playbook) {
	d.Mapping(n, "", map[string]FieldFunc{
		"name": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !nameRe.MatchString(s) {
					d.Errf(v, f, "%q: want lower-case letters, digits, - and _", s)
					return
				}
				pb.Name = s
			}
		},
		"title":       func(v *yaml.Node, f string) { d.Text(v, f, &pb.Title) },
		"description": func(v *yaml.Node, f string) { d.Text(v, f, &pb.Description) },
		"applies_to":  func(v *yaml.Node, f string) { d.appliesTo(v, f, &pb.AppliesTo) },
		"triggers": func(v *yaml.Node, f string) {
			seen := map[string]bool{}
			d.List(v, f, func(e *yaml.Node, f string) {
				var t Trigger
				before := len(d.fileRefs)
				ok := d.trigger(e, f, &t)
				if !ok {
					d.fileRefs = d.fileRefs[:before]
				}
				if t.KB != "" {
					if seen[t.KB] {
						d.Errf(e, f+".kb", "duplicate trigger %s", t.KB)
						return
					}
					seen[t.KB] = true
				}
				if ok {
					pb.Triggers = append(pb.Triggers, t)
				}
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.Errf(v, f, "at least one trigger update is needed")
			}
		},
		"baseline":  func(v *yaml.Node, f string) { d.baseline(v, f, &pb.Baseline) },
		"symptoms":  func(v *yaml.Node, f string) { d.symptoms(v, f, &pb.Symptoms) },
		"installer": func(v *yaml.Node, f string) { d.installer(v, f, &pb.Installer) },
		"steps":     func(v *yaml.Node, f string) { d.steps(v, f, &pb.Steps) },
	}, "name", "title", "applies_to", "triggers", "baseline", "symptoms", "installer", "steps")
	d.crossCheck(pb)
}

// crossCheck validates what spans sections, once each section parsed.
func (d *decoder) crossCheck(pb *Playbook) {
	// A trigger that brought files older than the baseline could not be what breaks a host
	// whose files are at the baseline; such a playbook contradicts itself.
	if !pb.Baseline.Version.IsZero() && len(d.fileRefs) == len(pb.Triggers) {
		for i, t := range pb.Triggers {
			for j, f := range t.Files {
				if j < len(d.fileRefs[i]) && f.Version.Less(pb.Baseline.Version) {
					r := d.fileRefs[i][j]
					d.Errf(r.node, r.field+".version", "%s %s is below the baseline %s", f.Name, f.Version, pb.Baseline.Version)
				}
			}
		}
	}
	if len(pb.AppliesTo.Architectures) > 0 && len(d.pkgRefs) == len(pb.Installer.Packages) {
		for i, pk := range pb.Installer.Packages {
			found := false
			for _, a := range pb.AppliesTo.Architectures {
				found = found || a == pk.Arch
			}
			if !found {
				r := d.pkgRefs[i]
				d.Errf(r.node, r.field+".arch", "%s is not in applies_to.architectures", pk.Arch)
			}
		}
	}
}

func (d *decoder) appliesTo(n *yaml.Node, field string, a *AppliesTo) {
	d.Mapping(n, field, map[string]FieldFunc{
		"os_version": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !osVerRe.MatchString(s) {
					d.Errf(v, f, "%q: want major.minor, e.g. \"5.2\"", s)
					return
				}
				a.OSVersion = s
			}
		},
		"service_pack": func(v *yaml.Node, f string) { d.intTo(v, f, 0, 9, &a.ServicePack) },
		"iis_major":    func(v *yaml.Node, f string) { d.intTo(v, f, 1, 99, &a.IISMajor) },
		"architectures": func(v *yaml.Node, f string) {
			seen := map[string]bool{}
			a.Architectures = d.Strings(v, f, func(e *yaml.Node, f, s string) bool {
				if !archs[s] {
					d.Errf(e, f, "%q: want x86, x64 or ia64", s)
					return false
				}
				if seen[s] {
					d.Errf(e, f, "duplicate %s", s)
					return false
				}
				seen[s] = true
				return true
			})
		},
	}, "os_version", "service_pack", "iis_major", "architectures")
}

func (d *decoder) fileName(n *yaml.Node, field string) (string, bool) {
	s, ok := d.Str(n, field)
	if !ok {
		return "", false
	}
	if !fileRe.MatchString(s) {
		d.Errf(n, field, "%q is not a file name (no paths)", s)
		return "", false
	}
	return strings.ToLower(s), true
}

func (d *decoder) fileVersion(n *yaml.Node, field string, versionRequired bool) (FileVersion, bool) {
	var fv FileVersion
	ok := true
	req := []string{"name"}
	if versionRequired {
		req = append(req, "version")
	}
	before := len(d.Errs)
	d.Mapping(n, field, map[string]FieldFunc{
		"name": func(v *yaml.Node, f string) {
			if s, good := d.fileName(v, f); good {
				fv.Name = s
			}
		},
		"version": func(v *yaml.Node, f string) { d.version(v, f, &fv.Version) },
	}, req...)
	if len(d.Errs) > before {
		ok = false
	}
	return fv, ok
}

func (d *decoder) trigger(n *yaml.Node, field string, t *Trigger) bool {
	before := len(d.Errs)
	d.Mapping(n, field, map[string]FieldFunc{
		"kb": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !kbRe.MatchString(s) {
					d.Errf(v, f, "%q: want KB and the article number, e.g. KB982666", s)
					return
				}
				t.KB = s
			}
		},
		"bulletin": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !bulletinRe.MatchString(s) {
					d.Errf(v, f, "%q: want a bulletin ID like MS10-040", s)
					return
				}
				t.Bulletin = s
			}
		},
		"refuses_mismatch_since": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if _, err := time.Parse(time.DateOnly, s); err != nil {
					d.Errf(v, f, "%q: want a date like 2010-03-09", s)
					return
				}
				t.RefusesMismatchSince = s
			}
		},
		"files": func(v *yaml.Node, f string) {
			seen := map[string]bool{}
			var refs []ref
			d.List(v, f, func(e *yaml.Node, f string) {
				if fv, ok := d.fileVersion(e, f, true); ok {
					if seen[fv.Name] {
						d.Errf(e, f, "duplicate file %s", fv.Name)
						return
					}
					seen[fv.Name] = true
					t.Files = append(t.Files, fv)
					refs = append(refs, ref{e, f})
				}
			})
			d.fileRefs = append(d.fileRefs, refs)
		},
	}, "kb", "files")
	return len(d.Errs) == before
}

func (d *decoder) baseline(n *yaml.Node, field string, b *Baseline) {
	var excRefs []ref // where each accepted exception is, to point at a contradiction
	d.Mapping(n, field, map[string]FieldFunc{
		"version": func(v *yaml.Node, f string) { d.version(v, f, &b.Version) },
		"core_files": func(v *yaml.Node, f string) {
			seen := map[string]bool{}
			d.List(v, f, func(e *yaml.Node, f string) {
				if s, ok := d.fileName(e, f); ok {
					if seen[s] {
						d.Errf(e, f, "duplicate file %s", s)
						return
					}
					seen[s] = true
					b.CoreFiles = append(b.CoreFiles, s)
				}
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.Errf(v, f, "at least one core file is needed")
			}
		},
		"exceptions": func(v *yaml.Node, f string) {
			seen := map[string]bool{}
			d.List(v, f, func(e *yaml.Node, f string) {
				if fv, ok := d.fileVersion(e, f, false); ok {
					if seen[fv.Name] {
						d.Errf(e, f, "duplicate file %s", fv.Name)
						return
					}
					seen[fv.Name] = true
					b.Exceptions = append(b.Exceptions, fv)
					excRefs = append(excRefs, ref{e, f})
				}
			})
		},
	}, "version", "core_files")
	for i, e := range b.Exceptions {
		for _, c := range b.CoreFiles {
			if c == e.Name {
				d.Errf(excRefs[i].node, excRefs[i].field+".name", "%s is both a core file and an exception", c)
			}
		}
	}
}

func (d *decoder) symptoms(n *yaml.Node, field string, s *Symptoms) {
	d.Mapping(n, field, map[string]FieldFunc{
		"log":           func(v *yaml.Node, f string) { d.Text(v, f, &s.Log) },
		"source":        func(v *yaml.Node, f string) { d.Text(v, f, &s.Source) },
		"crash_event":   func(v *yaml.Node, f string) { d.intTo(v, f, 1, 65535, &s.CrashEvent) },
		"disable_event": func(v *yaml.Node, f string) { d.intTo(v, f, 1, 65535, &s.DisableEvent) },
		"exit_code": func(v *yaml.Node, f string) {
			str, ok := d.Str(v, f)
			if !ok {
				return
			}
			c := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(str, "0x"), "0X"))
			if c == "" || len(c) > 8 || !hexRe.MatchString(c) {
				d.Errf(v, f, "%q: want a 32-bit exit code in hex, e.g. ffffffff", str)
				return
			}
			s.ExitCode = strings.TrimLeft(c, "0")
			if s.ExitCode == "" {
				s.ExitCode = "0"
			}
		},
	}, "log", "source", "crash_event", "disable_event", "exit_code")
}

func (d *decoder) exitCodes(n *yaml.Node, field string, refs *[]ref) []int {
	var out []int
	d.List(n, field, func(e *yaml.Node, f string) {
		// Exit codes are 32-bit; negative values are how cmd shows codes >= 0x80000000.
		if v, ok := d.Integer(e, f, -1<<31, 1<<32-1); ok {
			out = append(out, int(v))
			if refs != nil {
				*refs = append(*refs, ref{e, f})
			}
		}
	})
	return out
}

func (d *decoder) switches(n *yaml.Node, field string) []string {
	return d.Strings(n, field, func(e *yaml.Node, f, s string) bool {
		if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "-") || strings.ContainsAny(s, "\"&|<>^\r\n") {
			d.Errf(e, f, "%q: want a switch like /quiet, without quotes or shell characters", s)
			return false
		}
		return true
	})
}

func (d *decoder) installer(n *yaml.Node, field string, in *Installer) {
	var rebootRefs []ref
	d.Mapping(n, field, map[string]FieldFunc{
		"update": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !kbRe.MatchString(s) {
					d.Errf(v, f, "%q: want KB and the article number, e.g. KB914961", s)
					return
				}
				in.Update = s
			}
		},
		"switches":           func(v *yaml.Node, f string) { in.Switches = d.switches(v, f) },
		"success_exit_codes": func(v *yaml.Node, f string) { in.SuccessExitCodes = d.exitCodes(v, f, nil) },
		"reboot_exit_codes":  func(v *yaml.Node, f string) { in.RebootExitCodes = d.exitCodes(v, f, &rebootRefs) },
		"log":                func(v *yaml.Node, f string) { d.Text(v, f, &in.Log) },
		"packages": func(v *yaml.Node, f string) {
			seen := map[string]int{}
			d.List(v, f, func(e *yaml.Node, f string) {
				var pk Package
				if d.pkg(e, f, &pk) {
					key := pk.Arch + "/" + pk.Language
					if line, dup := seen[key]; dup {
						d.Errf(e, f, "duplicate package for %s %s (first at line %d)", pk.Arch, pk.Language, line)
						return
					}
					seen[key] = e.Line
					in.Packages = append(in.Packages, pk)
					d.pkgRefs = append(d.pkgRefs, ref{e, f})
				}
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.Errf(v, f, "at least one package is needed")
			}
		},
	}, "update", "switches", "success_exit_codes", "packages")
	for i, c := range in.RebootExitCodes {
		if !slices.Contains(in.SuccessExitCodes, c) {
			d.Errf(rebootRefs[i].node, rebootRefs[i].field, "%d is not among success_exit_codes", c)
		}
	}
}

func (d *decoder) hex(n *yaml.Node, field string, length int, dst *string) {
	s, ok := d.Str(n, field)
	if !ok {
		return
	}
	if s == "" {
		return // unknown
	}
	l := strings.ToLower(s)
	if len(l) != length || !hexRe.MatchString(l) {
		d.Errf(n, field, "%q: want %d hex digits", s, length)
		return
	}
	*dst = l
}

func (d *decoder) pkg(n *yaml.Node, field string, pk *Package) bool {
	before := len(d.Errs)
	d.Mapping(n, field, map[string]FieldFunc{
		"arch": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !archs[s] {
					d.Errf(v, f, "%q: want x86, x64 or ia64", s)
					return
				}
				pk.Arch = s
			}
		},
		"language": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !isLanguage(s) {
					d.Errf(v, f, "%q is not a known language code (ENU, DEU, ESN, FRA, JPN, ...)", s)
					return
				}
				pk.Language = s
			}
		},
		"file": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !fileRe.MatchString(s) {
					d.Errf(v, f, "%q is not a file name (no paths)", s)
					return
				}
				pk.File = s
			}
		},
		"size": func(v *yaml.Node, f string) {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return // unknown
			}
			if x, ok := d.Integer(v, f, 0, 1<<40); ok {
				pk.Size = x
			}
		},
		"sha1":   func(v *yaml.Node, f string) { d.hex(v, f, 40, &pk.SHA1) },
		"sha256": func(v *yaml.Node, f string) { d.hex(v, f, 64, &pk.SHA256) },
		"url": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
					d.Errf(v, f, "%q: want an http:// or https:// URL", s)
					return
				}
				pk.URL = s
			}
		},
		"switches": func(v *yaml.Node, f string) { pk.Switches = d.switches(v, f) },
	}, "arch", "language", "file")
	return len(d.Errs) == before
}

func (d *decoder) steps(n *yaml.Node, field string, s *Steps) {
	d.Mapping(n, field, map[string]FieldFunc{
		// Step timings accept seconds, so that a lab on scaled time can shorten them.
		"install_timeout": func(v *yaml.Node, f string) { d.Duration(v, f, time.Second, 24*time.Hour, &s.InstallTimeout) },
		// shutdown /t accepts 0..600 seconds on Server 2003 (docs/facts.md §5.6).
		"reboot_delay":   func(v *yaml.Node, f string) { d.Duration(v, f, 0, 600*time.Second, &s.RebootDelay) },
		"reboot_timeout": func(v *yaml.Node, f string) { d.Duration(v, f, time.Second, 24*time.Hour, &s.RebootTimeout) },
		"stage_timeout":  func(v *yaml.Node, f string) { d.Duration(v, f, time.Second, 48*time.Hour, &s.StageTimeout) },
		"poll_interval":  func(v *yaml.Node, f string) { d.Duration(v, f, time.Second, time.Hour, &s.PollInterval) },
		"reboot_reason": func(v *yaml.Node, f string) {
			str, ok := d.Str(v, f)
			if !ok {
				return
			}
			m := reasonRe.FindStringSubmatch(str)
			ok = m != nil
			if ok {
				major, _ := strconv.Atoi(m[2])
				minor, _ := strconv.Atoi(m[3])
				ok = major <= 255 && minor <= 65535
			}
			if !ok {
				d.Errf(v, f, "%q: want shutdown /d form [p:]major:minor (major 0..255, minor 0..65535)", str)
				return
			}
			s.RebootReason = str
		},
		"pool_start_timeout": func(v *yaml.Node, f string) {
			d.Duration(v, f, time.Second, time.Hour, &s.PoolStartTimeout)
		},
		"soak": func(v *yaml.Node, f string) { d.Duration(v, f, 0, 24*time.Hour, &s.Soak) },
		"min_free_disk_mb": func(v *yaml.Node, f string) {
			if x, ok := d.Integer(v, f, 0, 1<<30); ok {
				s.MinFreeDiskMB = x
			}
		},
	}, "install_timeout", "reboot_delay", "reboot_timeout", "reboot_reason", "pool_start_timeout", "soak", "min_free_disk_mb")
}
