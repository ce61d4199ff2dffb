package win2003

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"
)

// SmallFileLimit is the size up to which a file's bytes are kept; past it a file is only a size,
// running hashes and which lab installer image it holds (content), so a staged installer of
// any size costs a host next to nothing.
const SmallFileLimit = 64 << 10

// errDiskFull is a write that did not fit the free space: ERROR_DISK_FULL (system error 112),
// whose text programs print as textDiskFull.
var errDiskFull = errors.New("disk full")

const textDiskFull = "There is not enough space on the disk."

type fileSystem struct {
	files map[string]*file    // by lower-case full path
	dirs  map[string]struct{} // lower-case full paths of directories
	// capacity is the space files written on the host may take (the free space of a fresh host,
	// Spec.FreeDisk); used is what they take now. The system's own files are outside both.
	capacity, used int64
	images         []InstallerImage        // what written content is matched against
	loadImages     func() []InstallerImage // fills images when first needed
	opaqueSeq      int                     // numbers content whose bytes the lab cannot know
}

// imageList returns the installer images, computing them on first use.
func (fs *fileSystem) imageList() []InstallerImage {
	if fs.images == nil && fs.loadImages != nil {
		fs.images, fs.loadImages = fs.loadImages(), nil
	}
	return fs.images
}

// file is a file of the host. The system's own files (c == nil) are a size and a version
// resource; a file written by a command has content.
type file struct {
	path    string // as created
	version string // "" = no version resource
	size    int64
	mtime   time.Time
	c       *content
	// b64 decodes the file's bytes as base64 as they are written (certutil -decode reads the
	// result); nil once they are not base64, or after a truncation the decoder cannot follow.
	b64 *b64Stream
}

func newFileSystem() *fileSystem {
	return &fileSystem{files: map[string]*file{}, dirs: map[string]struct{}{}}
}

func normPath(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	unc := strings.HasPrefix(p, `\\`)
	for strings.Contains(p, `\\`) {
		p = strings.ReplaceAll(p, `\\`, `\`)
	}
	if unc {
		p = `\` + p
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

// put adds or replaces a file, keeping the count of used space.
func (fs *fileSystem) put(f *file) {
	k := normPath(f.path)
	if old := fs.files[k]; old != nil && old.c != nil {
		fs.used -= old.size
	}
	if f.c != nil {
		fs.used += f.size
	}
	fs.files[k] = f
	if i := strings.LastIndex(f.path, `\`); i > 0 {
		fs.mkdirAll(f.path[:i])
	}
}

func (fs *fileSystem) remove(p string) bool {
	n := normPath(p)
	f, ok := fs.files[n]
	if !ok {
		return false
	}
	if f.c != nil {
		fs.used -= f.size
	}
	delete(fs.files, n)
	return true
}

func (fs *fileSystem) free() int64 { return max(fs.capacity-fs.used, 0) }

// newFile creates an empty written file (not yet in the file system).
func (fs *fileSystem) newFile(path string, mtime time.Time) *file {
	return &file{path: path, mtime: mtime, c: &content{}, b64: &b64Stream{}}
}

// write appends p to f. What does not fit the free space is not written, and the error is
// errDiskFull: the file keeps what fit, as a write to a full NTFS volume does.
func (fs *fileSystem) write(f *file, p []byte) (int, error) {
	f.written()
	var err error
	if free := fs.free(); int64(len(p)) > free {
		p, err = p[:free], errDiskFull
	}
	images := fs.imageList()
	f.c.write(p, images)
	if f.b64 != nil {
		f.b64.write(p, images)
		if f.b64.bad {
			f.b64 = nil
		}
	}
	f.size = f.c.size
	fs.used += int64(len(p))
	return len(p), err
}

// truncate cuts f to n bytes or extends it with zeros ([IO.File]::SetLength); an extension that
// does not fit fails with errDiskFull.
func (fs *fileSystem) truncate(f *file, n int64) error {
	f.written()
	if n > f.size {
		zeros := make([]byte, min(n-f.size, 64<<10))
		for f.size < n {
			if _, err := fs.write(f, zeros[:min(int64(len(zeros)), n-f.size)]); err != nil {
				return err
			}
		}
		return nil
	}
	if n == f.size {
		return nil
	}
	fs.used -= f.size - n
	f.c.truncate(n, fs)
	f.size = n
	if n == 0 {
		f.b64 = &b64Stream{}
	} else {
		f.b64 = nil
	}
	return nil
}

// appendFile appends the bytes of src to dst (copy /b a+b). Bytes the lab knows (small files,
// parts of an installer image) are appended as such; others leave dst's bytes unknown.
func (fs *fileSystem) appendFile(dst, src *file) error {
	switch {
	case src.c != nil && src.c.data != nil:
		_, err := fs.write(dst, src.c.data)
		return err
	case src.c != nil && len(src.c.m) > 0:
		m := src.c.m[0]
		buf := make([]byte, imageBlock)
		for off := int64(0); off < src.size; {
			n := min(int64(len(buf)), src.size-off)
			m.img.readAt(buf[:n], m.start+off)
			if _, err := fs.write(dst, buf[:n]); err != nil {
				return err
			}
			off += n
		}
		return nil
	}
	if free := fs.free(); src.size > free {
		return errDiskFull
	}
	dst.written()
	fs.opaqueSeq++
	dst.c.makeOpaque(fs.opaqueSeq)
	dst.c.size += src.size
	dst.size = dst.c.size
	dst.b64 = nil
	fs.used += src.size
	return nil
}

// written turns a system file a command writes to into an empty written file.
func (f *file) written() {
	if f.c == nil {
		f.c, f.b64, f.version, f.size = &content{}, &b64Stream{}, "", 0
	}
}

// clone returns a copy of f at path (copy of one file).
func (f *file) clone(path string, mtime time.Time) *file {
	c := *f
	c.path, c.mtime = path, mtime
	if f.c != nil {
		c.c = f.c.clone()
	}
	if f.b64 != nil {
		c.b64 = f.b64.clone()
	}
	return &c
}

// data returns the file's bytes when the lab keeps them (nil for big and system files).
func (f *file) data() []byte {
	if f.c == nil {
		return nil
	}
	return slices.Clone(f.c.data)
}

// sums returns the file's SHA-256 and SHA-1 in lower-case hex. System files (no content) hash
// their path and version, so that two different files never look the same.
func (f *file) sums() (string, string) {
	if f.c == nil {
		s := sha256.Sum256([]byte(strings.ToLower(f.path) + "|" + f.version))
		s1 := sha1.Sum([]byte(strings.ToLower(f.path) + "|" + f.version))
		return hex.EncodeToString(s[:]), hex.EncodeToString(s1[:])
	}
	return f.c.sums()
}

func (f *file) sha256Hex() string { s, _ := f.sums(); return s }

// image returns the installer image the file holds whole, or nil.
func (fs *fileSystem) image(f *file) *InstallerImage {
	if f.c == nil {
		return nil
	}
	for _, m := range f.c.m {
		if m.start == 0 && f.size == m.img.Size {
			return m.img
		}
	}
	images := fs.imageList()
	for i := range images {
		if images[i].Size == f.size {
			if sum, _ := f.sums(); sum == images[i].SHA256 {
				return &images[i]
			}
		}
	}
	return nil
}

// content is what a host knows of a written file's bytes: their number; the bytes themselves
// while few; running SHA-256 and SHA-1 of all of them; and which installer images they equal
// from some offset on (m), checked byte for byte as they are written. From the image the lab
// can produce any part of those bytes again, which a truncation or a concatenation of big files
// needs. Bytes that are neither kept nor an image's (a big file cut short, or glued to another)
// are unknown: their hashes are stand-ins that match nothing.
type content struct {
	size     int64
	data     []byte
	h256, h1 hash.Hash // nil while opaque
	opaque   int       // > 0: the bytes are unknown; numbers the stand-in hashes
	m        []imageMatch
	hint     int64 // the image offset the first byte is expected at (an HTTP range's start)
	noImages bool  // the first bytes matched no image: stop looking
}

// imageMatch says that the content equals img's bytes from start on.
type imageMatch struct {
	img   *InstallerImage
	start int64
	blk   int64 // the block cached in buf (-1 = none)
	buf   []byte
}

func (c *content) write(p []byte, images []InstallerImage) {
	if c.size == 0 && len(c.m) == 0 && !c.noImages && len(p) > 0 {
		for i := range images {
			if c.hint < images[i].Size {
				c.m = append(c.m, imageMatch{img: &images[i], start: c.hint, blk: -1})
			}
		}
		c.noImages = len(c.m) == 0
	}
	if len(c.m) > 0 && len(p) > 0 {
		keep := c.m[:0]
		for _, m := range c.m {
			if m.matches(p, m.start+c.size) {
				keep = append(keep, m)
			}
		}
		c.m = keep
		c.noImages = len(c.m) == 0
	}
	if c.opaque == 0 {
		if c.h256 == nil {
			c.h256, c.h1 = sha256.New(), sha1.New()
		}
		c.h256.Write(p)
		c.h1.Write(p)
	}
	if c.size+int64(len(p)) <= SmallFileLimit {
		c.data = append(c.data, p...)
	} else {
		c.data = nil
	}
	c.size += int64(len(p))
}

// matches compares p with the image's bytes at off.
func (m *imageMatch) matches(p []byte, off int64) bool {
	if off+int64(len(p)) > m.img.Size {
		return false
	}
	if m.buf == nil {
		m.buf = make([]byte, imageBlock)
	}
	for len(p) > 0 {
		b := off / imageBlock
		if m.blk != b {
			m.img.block(b, m.buf)
			m.blk = b
		}
		i := off - b*imageBlock
		n := min(len(p), imageBlock-int(i))
		if !bytes.Equal(p[:n], m.buf[i:int(i)+n]) {
			return false
		}
		p, off = p[n:], off+int64(n)
	}
	return true
}

// truncate keeps the first n bytes (n < size).
func (c *content) truncate(n int64, fs *fileSystem) {
	switch {
	case n == 0:
		*c = content{}
		return
	case c.data != nil:
		c.data = c.data[:n]
		c.rehash(c.data)
	case len(c.m) > 0 && c.opaque == 0:
		m := c.m[0]
		c.h256, c.h1 = sha256.New(), sha1.New()
		buf := make([]byte, imageBlock)
		for off := int64(0); off < n; {
			k := min(int64(len(buf)), n-off)
			m.img.readAt(buf[:k], m.start+off)
			c.h256.Write(buf[:k])
			c.h1.Write(buf[:k])
			off += k
		}
		if n <= SmallFileLimit {
			c.data = make([]byte, n)
			m.img.readAt(c.data, m.start)
		}
	default:
		fs.opaqueSeq++
		c.makeOpaque(fs.opaqueSeq)
	}
	c.size = n
}

func (c *content) rehash(data []byte) {
	c.h256, c.h1 = sha256.New(), sha1.New()
	c.h256.Write(data)
	c.h1.Write(data)
}

func (c *content) makeOpaque(seq int) {
	c.opaque, c.h256, c.h1, c.data, c.m, c.noImages = seq, nil, nil, nil, nil, true
}

func (c *content) sums() (string, string) {
	for _, m := range c.m {
		if m.start == 0 && c.size == m.img.Size {
			return m.img.SHA256, m.img.SHA1
		}
	}
	if c.opaque > 0 {
		s := sha256.Sum256(fmt.Appendf(nil, "lab: unknown bytes %d|%d", c.opaque, c.size))
		return hex.EncodeToString(s[:]), hex.EncodeToString(s[:20])
	}
	if c.h256 == nil {
		c.h256, c.h1 = sha256.New(), sha1.New()
	}
	return hex.EncodeToString(c.h256.Sum(nil)), hex.EncodeToString(c.h1.Sum(nil))
}

func (c *content) clone() *content {
	n := *c
	n.data = slices.Clone(c.data)
	if c.h256 != nil {
		n.h256, n.h1 = cloneHash(c.h256, sha256.New()), cloneHash(c.h1, sha1.New())
	}
	n.m = make([]imageMatch, len(c.m))
	for i, m := range c.m {
		n.m[i] = imageMatch{img: m.img, start: m.start, blk: -1}
	}
	return &n
}

// cloneHash copies the state of src into dst, a fresh hash of the same kind.
func cloneHash(src, dst hash.Hash) hash.Hash {
	type marshaler interface {
		MarshalBinary() ([]byte, error)
	}
	type unmarshaler interface {
		UnmarshalBinary([]byte) error
	}
	if m, ok := src.(marshaler); ok {
		if b, err := m.MarshalBinary(); err == nil {
			if u, ok := dst.(unmarshaler); ok {
				_ = u.UnmarshalBinary(b)
			}
		}
	}
	return dst
}

// b64Stream decodes base64 text as it streams by into a content (certutil -decode's output).
// Lines starting with "-----" (certutil's BEGIN/END armour) are skipped; whitespace is ignored.
type b64Stream struct {
	out     content
	line    []byte // current line's first bytes, up to 5, until it is known not to be armour
	decided bool   // the current line's first 5 bytes were seen
	skip    bool   // current line is an armour line
	pend    []byte // base64 text short of a whole quantum (4 characters), not decoded yet
	padded  bool   // a quantum ended in "=": nothing may follow
	buf     []byte // decoding scratch
	bad     bool
}

func (s *b64Stream) clone() *b64Stream {
	c := *s
	c.out = *s.out.clone()
	c.line = slices.Clone(s.line)
	c.pend = slices.Clone(s.pend)
	c.buf = nil
	return &c
}

func (s *b64Stream) write(p []byte, images []InstallerImage) {
	for len(p) > 0 && !s.bad {
		if !s.decided {
			c := p[0]
			p = p[1:]
			if c == '\n' || c == '\r' {
				s.feed(s.line, images)
				s.line = s.line[:0]
				continue
			}
			s.line = append(s.line, c)
			if len(s.line) == 5 {
				s.decided = true
				if string(s.line) == "-----" {
					s.skip = true
				} else {
					s.feed(s.line, images)
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
			s.feed(p[:end], images)
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
func (s *b64Stream) feed(p []byte, images []InstallerImage) {
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
	s.out.write(s.buf[:n], images)
	s.pend = append(s.pend[:0], s.pend[whole:]...)
}

// finish returns what the text decodes to; ok is false for text that is not base64.
func (s *b64Stream) finish(images []InstallerImage) (*content, bool) {
	c := s.clone()
	if !c.decided {
		c.feed(c.line, images)
	}
	if c.bad || len(c.pend) != 0 {
		return nil, false
	}
	return &c.out, true
}

// match reports whether name matches a cmd wildcard pattern (* and ?), ignoring case.
func wildMatch(pattern, name string) bool {
	p, n := strings.ToLower(pattern), strings.ToLower(name)
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(n); i >= 0; i-- {
				if wildMatch(p[1:], n[i:]) {
					return true
				}
			}
			return false
		case '?':
			if n == "" {
				return false
			}
			n = n[1:]
		default:
			if n == "" || n[0] != p[0] {
				return false
			}
			n = n[1:]
		}
		p = p[1:]
	}
	return n == ""
}

// glob returns the files matching a path whose last element may hold * or ?, in the order
// NTFS lists a folder (by name, ignoring case).
func (fs *fileSystem) glob(pattern string) []*file {
	i := strings.LastIndex(pattern, `\`)
	if i < 0 {
		return nil
	}
	dir, pat := normPath(pattern[:i]), pattern[i+1:]
	if len(dir) == 2 {
		dir += `\`
	}
	prefix := strings.TrimSuffix(dir, `\`) + `\`
	var out []*file
	for k, f := range fs.files {
		if strings.HasPrefix(k, prefix) && !strings.Contains(k[len(prefix):], `\`) && wildMatch(pat, k[len(prefix):]) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *file) int {
		return strings.Compare(strings.ToUpper(baseName(a.path)), strings.ToUpper(baseName(b.path)))
	})
	return out
}

func baseName(p string) string { return p[strings.LastIndex(p, `\`)+1:] }

func hasWildcard(p string) bool { return strings.ContainsAny(baseName(p), "*?") }
