package playbooks

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden")

func TestEmbedded(t *testing.T) {
	t.Parallel()
	names := Embedded()
	if strings.Join(names, ",") != "kb973917,kb982666" {
		t.Fatalf("Embedded = %v", names)
	}
	for _, n := range names {
		pb, err := Get(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if pb.Name != n || pb.File != "embedded:"+n+".yaml" {
			t.Errorf("%s: name %q file %q", n, pb.Name, pb.File)
		}
		if pb.Baseline.Version != mustVersion(t, "6.0.3790.3959") || len(pb.Baseline.CoreFiles) != 23 || !slices.Contains(pb.Baseline.CoreFiles, "iisutil.dll") {
			t.Errorf("%s: baseline %+v", n, pb.Baseline)
		}
		if !slices.Contains(pb.Baseline.Exceptions, FileVersion{"seos.dll", mustVersion(t, "6.0.3790.0")}) {
			t.Errorf("%s: no seos.dll 6.0.3790.0 exception in %+v", n, pb.Baseline.Exceptions)
		}
		if pb.Symptoms != (Symptoms{Log: "System", Source: "W3SVC", CrashEvent: 1009, DisableEvent: 1002, ExitCode: "ffffffff"}) {
			t.Errorf("%s: symptoms %+v", n, pb.Symptoms)
		}
		pk, ok := pkg(pb, "x86", "ENU")
		if !ok || pk.File != "WindowsServer2003-KB914961-SP2-x86-ENU.exe" || pk.SHA1 != "51e1759a1fda6cd588660324abaed59dd3bbe86b" || pk.Size != 0 {
			t.Errorf("%s: x86 ENU %+v", n, pk)
		}
		pk, ok = pkg(pb, "x64", "enu")
		if !ok || pk.File != "WindowsServer2003.WindowsXP-KB914961-SP2-x64-ENU.exe" || pk.SHA1 != "7f8e909c52d23ac8b5dbfd73f1f12d3ee0fe794c" {
			t.Errorf("%s: x64 ENU %+v", n, pk)
		}
		for _, l := range []string{"DEU", "ESN", "FRA", "JPN"} {
			if _, ok := pkg(pb, "x86", l); !ok {
				t.Errorf("%s: no x86 %s package", n, l)
			}
			if _, ok := pkg(pb, "x64", l); !ok {
				t.Errorf("%s: no x64 %s package", n, l)
			}
		}
		if strings.Join(pb.Installer.Switches, " ") != "/quiet /norestart" || len(pk.Switches) != 0 {
			t.Errorf("%s: switches %v, x64 ENU %v", n, pb.Installer.Switches, pk.Switches)
		}
		if !slices.Equal(pb.Installer.SuccessExitCodes, []int{0, 3010}) || !slices.Equal(pb.Installer.RebootExitCodes, []int{3010}) {
			t.Errorf("%s: exit codes %+v", n, pb.Installer)
		}
		if pb.Steps.Soak != 10*time.Minute || pb.Steps.RebootDelay != 30*time.Second {
			t.Errorf("%s: steps %+v", n, pb.Steps)
		}
	}
	pb, _ := Get("kb982666")
	if len(pb.Triggers) != 1 || pb.Triggers[0].KB != "KB982666" || pb.Triggers[0].Files[0] != (FileVersion{"w3core.dll", mustVersion(t, "6.0.3790.4693")}) {
		t.Errorf("kb982666 triggers %+v", pb.Triggers)
	}
	pb, _ = Get("kb973917")
	if len(pb.Triggers) != 1 || pb.Triggers[0].KB != "KB973917" || pb.Triggers[0].Files[0] != (FileVersion{"w3core.dll", mustVersion(t, "6.0.3790.4614")}) {
		t.Errorf("kb973917 triggers %+v", pb.Triggers)
	}
	if _, err := Get("nope"); err == nil || !strings.Contains(err.Error(), "kb973917, kb982666") {
		t.Errorf("Get(nope) err = %v", err)
	}
	if _, err := Get("../data/kb982666"); err == nil {
		t.Error("Get accepted a path")
	}
	if Default() == nil || Default().Name != "kb982666" {
		t.Error("Default is not kb982666")
	}
}

// TestEmbeddedUnconfirmedMarked keeps the rule of docs/facts.md §0: values the sources do not confirm
// carry a comment naming them unconfirmed.
func TestEmbeddedUnconfirmedMarked(t *testing.T) {
	t.Parallel()
	for _, n := range Embedded() {
		src, _ := EmbeddedSource(n)
		ls := strings.Split(string(src), "\n")
		for i, l := range ls {
			ctx := strings.Join(ls[max(0, i-4):i+1], "\n")
			switch {
			case strings.Contains(l, "sha1:"), strings.Contains(l, "min_free_disk_mb:"), strings.Contains(l, "reboot_reason:"),
				strings.Contains(l, "x64, language: DEU"), strings.Contains(l, "version: 6.0.3790.46"):
				if !strings.Contains(ctx, "unconfirmed") {
					t.Errorf("%s:%d: %q is not marked unconfirmed", n, i+1, strings.TrimSpace(l))
				}
			}
		}
	}
}

func TestLoadErrorsGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := Load(filepath.Base(file), data)
		if err == nil || pb != nil {
			t.Errorf("%s: loaded without error", file)
			continue
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Errorf("%s: err %T is not Errors", file, err)
		}
		got := []byte(err.Error() + "\n")
		golden := strings.TrimSuffix(file, ".yaml") + ".golden"
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s errors:\n%s\nwant:\n%s", file, got, want)
		}
	}
}

func TestLoadErrorFormat(t *testing.T) {
	t.Parallel()
	src, _ := EmbeddedSource("kb982666")
	bad := strings.Replace(string(src), "  soak: 10m ", "  soak: ten ", 1)
	_, err := Load("pb.yaml", []byte(bad))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	line := 1 + strings.Count(bad[:strings.Index(bad, "soak: ten")], "\n")
	if e.File != "pb.yaml" || e.Line != line || e.Field != "steps.soak" {
		t.Errorf("error = %+v, want line %d", e, line)
	}
	if want := `pb.yaml:` + strconv.Itoa(line) + `: steps.soak: "ten" is not a duration (e.g. 90s, 45m, 1h30m)`; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, _ := EmbeddedSource("kb982666")
	p := filepath.Join(dir, "custom.yaml")
	if err := os.WriteFile(p, bytes.Replace(src, []byte("name: kb982666"), []byte("name: custom"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	pb, err := LoadFile(p)
	if err != nil || pb.Name != "custom" || pb.File != p {
		t.Fatalf("LoadFile = %+v, %v", pb, err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"6.0.3790.3959", "0.0.0.0", "65535.65535.65535.65535"} {
		v, err := ParseVersion(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseVersion(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "6.0.3790", "6.0.3790.3959.1", "6.0.3790.65536", "6.0.-1.0", "6.0.+1.0", "a.b.c.d", "6..3790.1", " 6.0.3790.1"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", s)
		}
	}
	a, b := mustVersion(t, "6.0.3790.1830"), mustVersion(t, "6.0.3790.3959")
	if !a.Less(b) || b.Less(a) || a.Compare(a) != 0 || b.Compare(a) != 1 {
		t.Error("Compare is wrong")
	}
	if !(Version{}).IsZero() || b.IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestLanguageForLCID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"0409": "ENU", "409": "ENU", "0x0407": "DEU", "040a": "ESN", "0C0A": "ESN", "0411": "JPN", "040C": "FRA", "0804": "CHS", "9999": "", "": "", "zz": "", "00000409": "ENU"} {
		if got := LanguageForLCID(in); got != want {
			t.Errorf("LanguageForLCID(%q) = %q, want %q", in, got, want)
		}
	}
}

// pkg finds the catalogue entry for an architecture and a language code (any case).
func pkg(pb *Playbook, arch, language string) (Package, bool) {
	for _, pk := range pb.Installer.Packages {
		if strings.EqualFold(pk.Arch, arch) && strings.EqualFold(pk.Language, language) {
			return pk, true
		}
	}
	return Package{}, false
}

func mustVersion(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
