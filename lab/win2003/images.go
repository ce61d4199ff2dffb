package win2003

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
)

// The lab's SP2 installers are synthetic: each is the real file name (docs/facts.md §2.1) with
// bytes generated from that name, "MZ" then a pseudo-random stream, of any size. A host knows
// an installer by its content (size and SHA-256), never by its name: the engine stages it as
// W\<sha256>.exe. The bytes are generated in independent blocks, so any range of an image can be
// produced without the bytes before it; hosts keep only sizes and hashes of big files and use
// that to know which parts of an image a file holds (see content in files.go).

// DefaultInstallerSize is the size of the lab's installer images when none is configured:
// small, for quick runs. Any size works; the real x86 package is about 350 MB (docs/facts.md §2.1).
const DefaultInstallerSize int64 = 1<<20 + 4321

// imageBlock is the size of an image's independently generated blocks.
const imageBlock = 64 << 10

// InstallerImage is one synthetic SP2 installer: what a host recognises it by and how to
// produce its bytes.
type InstallerImage struct {
	Arch     string // "x86" or "AMD64"
	Language string // install language: "0409" English, "0C0A" Spanish
	Name     string // the catalogue file name (docs/facts.md §2.1)
	Size     int64
	SHA256   string // lower-case hex
	SHA1     string // lower-case hex
	seed     [32]byte
}

var langCodes = map[string]string{"0409": "ENU", "0C0A": "ESN"}

// InstallerName is the SP2 installer's file name for an architecture ("x86", "AMD64") and an
// install language ("0409", "0C0A") (docs/facts.md §2.1).
func InstallerName(arch, lang string) string {
	code := langCodes[strings.ToUpper(lang)]
	if code == "" {
		code = "ENU"
	}
	if strings.EqualFold(arch, "AMD64") || strings.EqualFold(arch, "x64") {
		return "WindowsServer2003.WindowsXP-KB914961-SP2-x64-" + code + ".exe"
	}
	return "WindowsServer2003-KB914961-SP2-x86-" + code + ".exe"
}

// NewInstallerImage describes the lab installer of an architecture and language with size bytes
// (0 = DefaultInstallerSize). It reads the whole image once to hash it: a few seconds for a
// 400 MB image, so a fleet computes its images once and gives them to every host.
func NewInstallerImage(arch, lang string, size int64) InstallerImage {
	if size <= 0 {
		size = DefaultInstallerSize
	}
	if strings.EqualFold(arch, "x64") {
		arch = "AMD64"
	}
	img := InstallerImage{Arch: arch, Language: strings.ToUpper(lang), Name: InstallerName(arch, lang), Size: size}
	img.seed = sha256.Sum256([]byte("iisremedy-lab-sp2|" + img.Name))
	h256, h1 := sha256.New(), sha1.New()
	_, _ = io.Copy(io.MultiWriter(h256, h1), img.Open())
	img.SHA256 = hex.EncodeToString(h256.Sum(nil))
	img.SHA1 = hex.EncodeToString(h1.Sum(nil))
	return img
}

// NewInstallerImages describes the lab's four installers (x86 and AMD64, English and Spanish)
// of size bytes each (0 = DefaultInstallerSize).
func NewInstallerImages(size int64) []InstallerImage {
	var out []InstallerImage
	for _, arch := range []string{"x86", "AMD64"} {
		for _, lang := range []string{"0409", "0C0A"} {
			out = append(out, NewInstallerImage(arch, lang, size))
		}
	}
	return out
}

// Open returns a reader of the image's bytes.
func (img InstallerImage) Open() io.Reader { return &imageReader{img: img} }

// readAt fills p with the image's bytes from off; p must lie within the image.
func (img *InstallerImage) readAt(p []byte, off int64) {
	var block [imageBlock]byte
	for len(p) > 0 {
		b := off / imageBlock
		img.block(b, block[:])
		n := copy(p, block[off-b*imageBlock:])
		p, off = p[n:], off+int64(n)
	}
}

// block generates block b of the image: a ChaCha8 stream seeded by the image and the block
// number, with "MZ" at the very start.
func (img *InstallerImage) block(b int64, buf []byte) {
	var s [40]byte
	copy(s[:], img.seed[:])
	binary.LittleEndian.PutUint64(s[32:], uint64(b))
	_, _ = rand.NewChaCha8(sha256.Sum256(s[:])).Read(buf)
	if b == 0 {
		buf[0], buf[1] = 'M', 'Z'
	}
}

type imageReader struct {
	img InstallerImage
	off int64
}

func (r *imageReader) Read(p []byte) (int, error) {
	if r.off >= r.img.Size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.img.Size-r.off)
	r.img.readAt(p[:n], r.off)
	r.off += n
	return int(n), nil
}
