package remediate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/playbooks"
)

const x86ENU = "WindowsServer2003-KB914961-SP2-x86-ENU.exe"

// installerDir writes files (name -> content) and returns the directory.
func installerDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestLoadInstallers: every file is checked against its reference before anything is sent; a
// missing package is not an error until a host needs it.
func TestLoadInstallers(t *testing.T) {
	pb := playbooks.Default()
	image := "MZ the lab's SP2"
	ok := installerDir(t, map[string]string{x86ENU: image, SumsFile: sha256Hex(image) + "  " + x86ENU + "\n", "README.txt": "x"})
	in, err := LoadInstallers(ok, pb, &HashCache{})
	if err != nil {
		t.Fatal(err)
	}
	got, found := in.For("x86", "ENU")
	if !found || got.SHA256 != sha256Hex(image) || got.Size != int64(len(image)) || got.Reference != "sha256 from SHA256SUMS" {
		t.Errorf("x86 ENU: %+v %v", got, found)
	}
	if _, found := in.For("x64", "ESN"); found {
		t.Error("x64 ESN found in a directory without it")
	}
	if msg := in.Missing(pb, "x64", "ESN"); !strings.Contains(msg, "WindowsServer2003.WindowsXP-KB914961-SP2-x64-ESN.exe") {
		t.Errorf("missing: %s", msg)
	}

	for _, tt := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"catalogue sha1 mismatch", map[string]string{x86ENU: "not the real file"},
			[]string{x86ENU, "SHA-1", "the catalogue says 51e1759a1fda6cd588660324abaed59dd3bbe86b"}},
		{"sums mismatch", map[string]string{x86ENU: image, SumsFile: strings.Repeat("0", 64) + "  " + x86ENU + "\n"},
			[]string{x86ENU, sha256Hex(image), strings.Repeat("0", 64)}},
		{"no hash known", map[string]string{"WindowsServer2003-KB914961-SP2-x86-DEU.exe": image},
			[]string{"x86-DEU.exe: the catalogue has no hash", sha256Hex(image)}},
		{"two candidates", map[string]string{x86ENU: image, "windowsserver2003-kb914961-sp2-x86-enu_" + strings.Repeat("1", 40) + ".exe": image,
			SumsFile: sha256Hex(image) + "  " + x86ENU + "\n"}, []string{"two files for x86 ENU"}},
		{"unknown installer", map[string]string{"WindowsServer2003-KB914961-SP2-x86-XYZ.exe": image},
			[]string{"x86-XYZ.exe: an SP2 installer the catalogue of playbook kb982666 does not list"}},
		{"bad sums line", map[string]string{SumsFile: "abc " + x86ENU + "\n"}, []string{SumsFile + ":1: want <64 hex digits"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadInstallers(installerDir(t, tt.files), pb, &HashCache{})
			var ie *InstallerError
			if !errors.As(err, &ie) {
				t.Fatalf("err %v, want an InstallerError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
		})
	}
}

// TestHashCacheReadsOnce: a file whose path, size and modification time are unchanged is not
// read again, also by the next run (the cache file).
func TestHashCacheReadsOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sp2.exe")
	if err := os.WriteFile(path, []byte("first content"), 0o600); err != nil {
		t.Fatal(err)
	}
	cachePath := filepath.Join(dir, "cache", "hashes.json")
	first, err := (&HashCache{Path: cachePath}).Sum(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	// Same size, same modification time, other bytes: a cache hit returns the old hash.
	if err := os.WriteFile(path, []byte("other content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	again, err := (&HashCache{Path: cachePath}).Sum(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.SHA256 != first.SHA256 || first.SHA256 != sha256Hex("first content") {
		t.Errorf("the second run read the file again: %s then %s", first.SHA256, again.SHA256)
	}
	// A new modification time is a new file.
	if err := os.Chtimes(path, st.ModTime(), st.ModTime().Add(1e9)); err != nil {
		t.Fatal(err)
	}
	if s, _ := (&HashCache{Path: cachePath}).Sum(path); s.SHA256 != sha256Hex("other content") {
		t.Errorf("a changed file kept its old hash")
	}
}
