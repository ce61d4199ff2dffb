package remediate

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

// Installer is one local installer file, checked against the catalogue.
type Installer struct {
	Package playbooks.Package `json:"package"`
	Path    string            `json:"path"`
	Size    int64             `json:"size"`
	SHA256  string            `json:"sha256"`
	SHA1    string            `json:"sha1"`
	// Reference says which catalogue hash the file was checked against.
	Reference string `json:"reference"`
}

// Installers are the admin's installer files, each checked against the catalogue before a
// byte is sent.
type Installers struct {
	Dir   string
	files map[string]Installer // by lower-case arch|language
}

// InstallerError is a problem with the installer files: bad input, nothing was sent.
type InstallerError struct {
	Path string
	Msg  string
}

func (e *InstallerError) Error() string { return e.Path + ": " + e.Msg }

// SumsFile is the name of the catalogue of hashes an installer directory may hold, in the format
// of sha256sum ("<64 hex>  <file name>" a line): the lab writes one for its synthetic
// installers, and an admin can list the hash of a package the playbook has none for.
const SumsFile = "SHA256SUMS"

// wuName matches the Windows Update catalogue's download name of a package: the catalogue file
// name in lower case with "_<sha1>" before ".exe" (docs/facts.md §2.1).
var wuName = regexp.MustCompile(`^(.*)_([0-9a-f]{40})\.exe$`)

// LoadInstallers finds in dir the file of every package of the playbook's catalogue that is
// there, hashes each (once: the cache remembers files by path, size and modification time), and
// checks it against the catalogue: the SHA-256 in dir's SHA256SUMS when listed there, else the
// playbook's SHA-256, else its SHA-1. A file that matches no reference, has none, or is an SP2
// installer the catalogue does not list is refused, naming the file and both hashes. A package
// with no file is not an error here: a host that needs it fails its stage step. A nil cache
// hashes every file.
func LoadInstallers(dir string, pb *playbooks.Playbook, cache *HashCache) (*Installers, error) {
	if cache == nil {
		cache = &HashCache{}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &InstallerError{Path: dir, Msg: fmt.Sprintf("installer directory: %v", err)}
	}
	sums, err := readSums(filepath.Join(dir, SumsFile))
	if err != nil {
		return nil, err
	}
	byName := map[string]playbooks.Package{}
	for _, p := range pb.Installer.Packages {
		byName[strings.ToLower(p.File)] = p
	}
	in := &Installers{Dir: dir, files: map[string]Installer{}}
	var errs []string
	type candidate struct {
		name, wuSHA1 string
		pkg          playbooks.Package
	}
	byKey := map[string]candidate{}
	var keys []string
	for _, e := range entries {
		name := e.Name()
		lower := strings.ToLower(name)
		if e.IsDir() || !strings.HasSuffix(lower, ".exe") {
			continue
		}
		p, ok := byName[lower]
		wuSHA1 := ""
		if m := wuName.FindStringSubmatch(lower); !ok && m != nil {
			p, ok = byName[m[1]+".exe"]
			wuSHA1 = m[2]
		}
		if !ok {
			if strings.Contains(lower, "kb914961") {
				errs = append(errs, fmt.Sprintf("%s: an SP2 installer the catalogue of playbook %s does not list", name, pb.Name))
			}
			continue
		}
		key := strings.ToLower(p.Arch + "|" + p.Language)
		if prev, dup := byKey[key]; dup {
			errs = append(errs, fmt.Sprintf("two files for %s %s: %s and %s; keep one", p.Arch, p.Language, prev.name, name))
			continue
		}
		byKey[key] = candidate{name: name, wuSHA1: wuSHA1, pkg: p}
		keys = append(keys, key)
	}
	// Hashing 390 MB files waits until the directory's names make sense.
	if len(errs) > 0 {
		return nil, &InstallerError{Path: dir, Msg: strings.Join(errs, "; ")}
	}
	for _, key := range keys {
		c := byKey[key]
		sum, err := cache.Sum(filepath.Join(dir, c.name))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		inst := Installer{Package: c.pkg, Path: filepath.Join(dir, c.name), Size: sum.Size, SHA256: sum.SHA256, SHA1: sum.SHA1}
		if msg := inst.check(sums[strings.ToLower(c.pkg.File)], c.wuSHA1); msg != "" {
			errs = append(errs, c.name+": "+msg)
			continue
		}
		in.files[key] = inst
	}
	if len(errs) > 0 {
		return nil, &InstallerError{Path: dir, Msg: strings.Join(errs, "; ")}
	}
	return in, nil
}

// check compares the file with its references and records the one it matched; "" = accepted.
func (in *Installer) check(listed, wuSHA1 string) string {
	p := in.Package
	switch {
	case listed != "":
		if listed != in.SHA256 {
			return fmt.Sprintf("SHA-256 %s, but %s lists %s", in.SHA256, SumsFile, listed)
		}
		in.Reference = "sha256 from " + SumsFile
	case p.SHA256 != "":
		if p.SHA256 != in.SHA256 {
			return fmt.Sprintf("SHA-256 %s, but the catalogue says %s", in.SHA256, p.SHA256)
		}
		in.Reference = "catalogue sha256"
	case p.SHA1 != "":
		if p.SHA1 != in.SHA1 {
			return fmt.Sprintf("SHA-1 %s, but the catalogue says %s", in.SHA1, p.SHA1)
		}
		in.Reference = "catalogue sha1 (unconfirmed)"
	default:
		return fmt.Sprintf("the catalogue has no hash for this package (SHA-256 of the file: %s); check the download and list it in %s", in.SHA256, SumsFile)
	}
	if wuSHA1 != "" && wuSHA1 != in.SHA1 {
		return fmt.Sprintf("SHA-1 %s, but its Windows Update name says %s", in.SHA1, wuSHA1)
	}
	if p.Size > 0 && p.Size != in.Size {
		return fmt.Sprintf("%d bytes, but the catalogue says %d", in.Size, p.Size)
	}
	return ""
}

// For returns the installer for a host's architecture (x86, x64) and language (ENU, ESN, ...).
func (in *Installers) For(arch, language string) (Installer, bool) {
	i, ok := in.files[strings.ToLower(arch+"|"+language)]
	return i, ok
}

// Missing explains, for a host whose package has no file, what the directory lacks.
func (in *Installers) Missing(pb *playbooks.Playbook, arch, language string) string {
	for _, p := range pb.Installer.Packages {
		if strings.EqualFold(p.Arch, arch) && strings.EqualFold(p.Language, language) {
			return fmt.Sprintf("no installer for %s %s in %s (want %s)", arch, language, in.Dir, p.File)
		}
	}
	return fmt.Sprintf("the catalogue of playbook %s has no installer for %s %s", pb.Name, arch, language)
}

// readSums reads a sha256sum-format file ("<hex>  <name>" or "<hex> *<name>" a line; # comments).
// A missing file is an empty catalogue; a bad line is bad input.
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, &InstallerError{Path: path, Msg: err.Error()}
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		sum = strings.ToLower(sum)
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 || name == "" {
			return nil, &InstallerError{Path: fmt.Sprintf("%s:%d", path, n), Msg: "want <64 hex digits of a SHA-256>  <file name>"}
		}
		sums[strings.ToLower(name)] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, &InstallerError{Path: path, Msg: err.Error()}
	}
	return sums, nil
}

// FileSum is a file's hashes as the cache keeps them.
type FileSum struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	SHA256  string    `json:"sha256"`
	SHA1    string    `json:"sha1"`
}

// HashCache hashes files once: a file whose path, size and modification time are unchanged is
// not read again, in this run or the next (the cache is a JSON file; "" = in memory only).
// Installers are 370-390 MB, and staging, planning and applying all check them.
type HashCache struct {
	Path string

	mu     sync.Mutex
	loaded bool
	sums   map[string]FileSum
}

// Sum returns the hashes of the file at path.
func (c *HashCache) Sum(path string) (FileSum, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return FileSum{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return FileSum{}, err
	}
	c.mu.Lock()
	c.load()
	if s, ok := c.sums[abs]; ok && s.Size == st.Size() && s.ModTime.Equal(st.ModTime()) {
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	f, err := os.Open(abs)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	n, err := io.Copy(io.MultiWriter(h256, h1), f)
	if err != nil {
		return FileSum{}, err
	}
	s := FileSum{Size: n, ModTime: st.ModTime(), SHA256: hex.EncodeToString(h256.Sum(nil)), SHA1: hex.EncodeToString(h1.Sum(nil))}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sums[abs] = s
	c.save()
	return s, nil
}

func (c *HashCache) load() {
	if c.loaded {
		return
	}
	c.loaded, c.sums = true, map[string]FileSum{}
	if c.Path == "" {
		return
	}
	if data, err := os.ReadFile(c.Path); err == nil {
		_ = json.Unmarshal(data, &c.sums) // a damaged cache only costs hashing again
	}
}

// save writes the cache atomically; failing to is harmless (the files are hashed again).
func (c *HashCache) save() {
	if c.Path == "" {
		return
	}
	data, err := json.Marshal(c.sums)
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return
	}
	tmp := c.Path + ".tmp"
	if os.WriteFile(tmp, data, 0o600) == nil {
		_ = os.Rename(tmp, c.Path)
	}
}
