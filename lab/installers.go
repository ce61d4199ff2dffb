package lab

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

// WriteInstallers writes each image into dir under its catalogue name, and dir/SHA256SUMS in
// sha256sum's format ("<64 hex>  <name>" a line): the installer folder and catalogue a lab run
// uses. The bytes are streamed, never held whole. A file already there with the image's size and
// SHA-256 is kept; any other file of that name is replaced.
func WriteInstallers(dir string, images []win2003.InstallerImage) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var sums strings.Builder
	for _, img := range images {
		path := filepath.Join(dir, img.Name)
		if !sameFile(path, img) {
			if err := writeImage(path, img); err != nil {
				return err
			}
		}
		fmt.Fprintf(&sums, "%s  %s\n", img.SHA256, img.Name)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o644)
}

// sameFile reports whether path holds the image already.
func sameFile(path string, img win2003.InstallerImage) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != img.Size {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == img.SHA256
}

func writeImage(path string, img win2003.InstallerImage) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = io.Copy(w, img.Open())
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write installer %s: %w", img.Name, err)
	}
	return nil
}
