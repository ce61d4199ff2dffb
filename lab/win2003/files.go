package win2003

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"slices"
	"strings"
	"time"
)

// SmallFileLimit is the size up to which a file's bytes are kept; past it a file is only a size and
// streaming hashes (SHA-256 of the bytes and of their base64 decoding), so a staged installer costs
// nothing per host.
const SmallFileLimit = 64 << 10

type fileSystem struct {
	files map[string]*file    // by lower-case full path
	dirs  map[string]struct{} // lower-case full paths of directories
}

type file struct {
	path    string // as created
	version string // "" = no version resource
	size    int64
	mtime   time.Time
	data    []byte // content when small and written by a command
	big     *bigContent
}

type bigContent struct {
	sum   hash.Hash
	b64   b64Stream
	fixed string // known SHA-256 of content produced whole (certutil -decode), "" = use sum
}

func newFileSystem() *fileSystem {
	return &fileSystem{files: map[string]*file{}, dirs: map[string]struct{}{}}
}

func normPath(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	for strings.Contains(p, `\\`) {
		p = strings.ReplaceAll(p, `\\`, `\`)
	}
	if len(p) > 3 && strings.HasSuffix(p, `\`) {
		p = strings.TrimSuffix(p, `\`)
	}
	return strings.ToLower(p)
}

func (fs *fileSystem) file(p string) *file { return fs.files[normPath(p)] }

func (fs *fileSystem) isDir(p string) bool {
	n := normPath(p)
	if len(n) == 2 && n[1] == ':' {
		n += `\`
	}
	_, ok := fs.dirs[n]
	return ok
}

func (fs *fileSystem) mkdirAll(p string) {
	n := normPath(p)
	for {
		key := n
		if len(key) == 2 && key[1] == ':' {
			key += `\`
		}
		fs.dirs[key] = struct{}{}
		i := strings.LastIndex(n, `\`)
		if i < 0 || len(n) <= 3 {
			return
		}
		n = n[:i]
		if len(n) == 2 {
			fs.dirs[n+`\`] = struct{}{}
			return
		}
	}
}

func (fs *fileSystem) put(f *file) {
	fs.files[normPath(f.path)] = f
	if i := strings.LastIndex(f.path, `\`); i > 0 {
		fs.mkdirAll(f.path[:i])
	}
}

func (fs *fileSystem) remove(p string) bool {
	n := normPath(p)
	if _, ok := fs.files[n]; !ok {
		return false
	}
	delete(fs.files, n)
	return true
}

func (f *file) truncate() {
	f.data, f.big, f.size = nil, nil, 0
}

func (f *file) write(p []byte) {
	if f.big == nil && int64(len(f.data))+int64(len(p)) <= SmallFileLimit {
		f.data = append(f.data, p...)
		f.size += int64(len(p))
		return
	}
	if f.big == nil {
		f.big = &bigContent{sum: sha256.New()}
		f.big.sum.Write(f.data)
		f.big.b64.write(f.data)
		f.data = nil
	}
	if f.big.fixed != "" {
		// appending to a decoded file: its content is no longer known exactly
		f.big.fixed, f.big.sum = "", sha256.New()
	}
	f.big.sum.Write(p)
	f.big.b64.write(p)
	f.size += int64(len(p))
}

// sha256Hex returns the file content's SHA-256 in lower-case hex; static system files (no content)
// hash their path and version so two different files never look the same.
func (f *file) sha256Hex() string {
	if f.big != nil {
		if f.big.fixed != "" {
			return f.big.fixed
		}
		return hex.EncodeToString(f.big.sum.Sum(nil))
	}
	if f.data == nil && f.size > 0 {
		s := sha256.Sum256([]byte(strings.ToLower(f.path) + "|" + f.version))
		return hex.EncodeToString(s[:])
	}
	s := sha256.Sum256(f.data)
	return hex.EncodeToString(s[:])
}

// decodedFile returns the file that base64-decoding f into path gives (certutil -decode,
// [Convert]::FromBase64String); ok is false for bad base64 and for a file whose content is only
// known by its hash. A small input keeps its decoded bytes; a big one only their size and hash.
func (f *file) decodedFile(path string, mtime time.Time) (nf *file, ok bool) {
	var st b64Stream
	switch {
	case f.big != nil && f.big.fixed != "":
		return nil, false
	case f.big != nil:
		st = f.big.b64.clone()
	default:
		st.keep = true
		st.write(f.data)
	}
	size, sum, ok := st.finish()
	if !ok {
		return nil, false
	}
	nf = &file{path: path, size: size, mtime: mtime}
	if f.big == nil {
		nf.data = st.data
	} else {
		nf.big = &bigContent{fixed: sum}
	}
	return nf, true
}

// b64Stream decodes base64 text as it streams by, keeping the decoded size and SHA-256 (and, with
// keep, the decoded bytes). Lines starting with "-----" (certutil's BEGIN/END armour) are skipped;
// whitespace is ignored.
type b64Stream struct {
	keep    bool
	data    []byte // decoded bytes when keep is set
	line    []byte // current line's first bytes, up to 5, until it is known not to be armour
	decided bool   // the current line's first 5 bytes were seen
	skip    bool   // current line is an armour line
	pend    []byte // base64 text short of a whole quantum (4 characters), not decoded yet
	padded  bool   // a quantum ended in "=": nothing may follow
	buf     []byte // decoding scratch
	size    int64
	sum     hash.Hash
	bad     bool
}

func (s *b64Stream) clone() b64Stream {
	c := *s
	c.line = append([]byte(nil), s.line...)
	c.data = append([]byte(nil), s.data...)
	c.pend = append([]byte(nil), s.pend...)
	c.buf = nil
	if s.sum != nil {
		c.sum = cloneSHA(s.sum)
	}
	return c
}

func (s *b64Stream) write(p []byte) {
	if s.sum == nil {
		s.sum = sha256.New()
	}
	for len(p) > 0 {
		if !s.decided {
			c := p[0]
			p = p[1:]
			if c == '\n' || c == '\r' {
				s.feed(s.line)
				s.line = s.line[:0]
				continue
			}
			s.line = append(s.line, c)
			if len(s.line) == 5 {
				s.decided = true
				if string(s.line) == "-----" {
					s.skip = true
				} else {
					s.feed(s.line)
				}
			}
			continue
		}
		// the rest of the line in one piece
		end := bytes.IndexAny(p, "\r\n")
		if end < 0 {
			end = len(p)
		}
		if !s.skip {
			s.feed(p[:end])
		}
		p = p[end:]
		if len(p) > 0 { // a line end
			p = p[1:]
			s.line = s.line[:0]
			s.skip, s.decided = false, false
		}
	}
}

// feed decodes base64 text, a whole number of quanta at a time with encoding/base64 (decoding
// a byte at a time made staging a 1 MiB installer cost seconds under the race detector).
func (s *b64Stream) feed(p []byte) {
	if s.bad || len(p) == 0 {
		return
	}
	if bytes.ContainsAny(p, " \t") {
		p = bytes.ReplaceAll(bytes.ReplaceAll(p, []byte(" "), nil), []byte("\t"), nil)
	}
	s.pend = append(s.pend, p...)
	whole := len(s.pend) / 4 * 4
	if whole == 0 {
		return
	}
	if s.padded { // text after the padding
		s.bad = true
		return
	}
	s.buf = slices.Grow(s.buf[:0], whole/4*3)[:whole/4*3]
	n, err := base64.StdEncoding.Decode(s.buf, s.pend[:whole])
	if err != nil {
		s.bad = true
		return
	}
	s.padded = s.pend[whole-1] == '='
	s.sum.Write(s.buf[:n])
	if s.keep {
		s.data = append(s.data, s.buf[:n]...)
	}
	s.size += int64(n)
	s.pend = append(s.pend[:0], s.pend[whole:]...)
}

func (s *b64Stream) finish() (int64, string, bool) {
	if s.sum == nil {
		s.sum = sha256.New()
	}
	if !s.decided {
		s.feed(s.line)
		s.line = s.line[:0]
	}
	if s.bad || len(s.pend) != 0 {
		return 0, "", false
	}
	return s.size, hex.EncodeToString(s.sum.Sum(nil)), true
}
