package win2003

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// The lab's SP2 installer is synthetic: its file name is the real one (docs/facts.md §2.1), its bytes
// are generated from the name, so tests and staging can produce a matching file without storing it.
// The real installer's size (about 350 MB) and hash are not used.

// InstallerSize is the size of the lab's synthetic SP2 installer in bytes.
var InstallerSize int64 = 1<<20 + 4321

// InstallerDiskNeeded is the free space the SP2 installer needs on the system drive. [NC]
var InstallerDiskNeeded int64 = 1200 << 20

var langCodes = map[string]string{"0409": "ENU", "0C0A": "ESN"}

// InstallerName is the SP2 installer's file name for an architecture ("x86", "AMD64") and an install
// language ("0409", "0C0A") (docs/facts.md §2.1).
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

type image struct {
	arch, lang string
}

// installerName parses an installer file name (lower case); nil when it is not one.
func installerName(base string) *image {
	for _, arch := range []string{"x86", "AMD64"} {
		for lang := range langCodes {
			if strings.EqualFold(base, InstallerName(arch, lang)) {
				return &image{arch, lang}
			}
		}
	}
	return nil
}

var installerSums sync.Map // name -> string

// InstallerImage returns the lab installer's file name, size and SHA-256 (lower-case hex).
func InstallerImage(arch, lang string) (name string, size int64, sha string) {
	name = InstallerName(arch, lang)
	key := fmt.Sprintf("%s|%d", name, InstallerSize)
	if v, ok := installerSums.Load(key); ok {
		return name, InstallerSize, v.(string)
	}
	h := sha256.New()
	_, _ = io.Copy(h, InstallerBytes(arch, lang))
	sum := hex.EncodeToString(h.Sum(nil))
	installerSums.Store(key, sum)
	return name, InstallerSize, sum
}

// InstallerBytes returns a reader of the lab installer's bytes: "MZ" and a deterministic stream.
func InstallerBytes(arch, lang string) io.Reader {
	seed := sha256.Sum256([]byte("iisremedy-lab-sp2|" + InstallerName(arch, lang)))
	return io.LimitReader(&imageReader{rng: rand.NewChaCha8(seed)}, InstallerSize)
}

type imageReader struct {
	rng  *rand.ChaCha8
	head bool
}

func (r *imageReader) Read(p []byte) (int, error) {
	n := 0
	if !r.head && len(p) >= 2 {
		p[0], p[1] = 'M', 'Z'
		r.head = true
		n = 2
	}
	m, _ := r.rng.Read(p[n:])
	return n + m, nil
}

// ExitInstallerBusy is the SP2 installer's exit code when another installation runs. Unconfirmed:
// Windows Installer's ERROR_INSTALL_ALREADY_RUNNING.
var ExitInstallerBusy = 1618

// runInstaller runs the SP2 installer from path.
func (p *proc) runInstaller(path string, args []string, out, errw *stream) int {
	h := p.h
	norestart := false
	logPath := h.spec.SystemRoot + `\svcpack.log`
	for _, a := range args {
		la := strings.ToLower(a)
		switch {
		case la == "/norestart" || la == "-norestart":
			norestart = true
		case strings.HasPrefix(la, "/log:"):
			logPath = a[5:]
		case strings.HasPrefix(la, "/x"):
			return 0 // extraction only: nothing to model
		}
	}
	// The UI switches (/quiet, /passive, /u, /q, /n, /o, /f, /z, ...) change nothing here: the lab
	// installer never shows a window.
	img := installerName(strings.ToLower(path[strings.LastIndex(path, `\`)+1:]))
	h.mu.Lock()
	f := h.fs.file(path)
	if f == nil || img == nil {
		h.mu.Unlock()
		return 2
	}
	if !strings.EqualFold(img.arch, h.spec.Arch) {
		h.mu.Unlock()
		p.write(errw, path+" is not a valid Win32 application.\r\n")
		return 193
	}
	_, wantSize, wantSum := InstallerImage(img.arch, img.lang)
	intact := f.size == wantSize && f.sha256Hex() == wantSum
	if h.installing {
		h.mu.Unlock()
		return ExitInstallerBusy
	}
	h.installing = true
	diskShort := h.spec.InstallerFails == "disk" || h.freeLocked() < InstallerDiskNeeded
	langOK := strings.EqualFold(img.lang, h.spec.Language)
	h.mu.Unlock()
	finish := func() {
		h.mu.Lock()
		h.installing = false
		h.mu.Unlock()
	}
	if !intact {
		// The self-extractor finds the package damaged before update.exe runs [I].
		if !h.clock.Sleep(p.ctx, 20*time.Second) {
			finish()
			return 1
		}
		finish()
		return 1603
	}
	if diskShort || !langOK {
		if !h.clock.Sleep(p.ctx, 3*time.Minute) {
			finish()
			return 1
		}
		// The reason lines are the lab's wording [NC]; the other three are from
		// the failure sample in docs/facts.md §2.3.
		reason := fmt.Sprintf("There is not enough disk space on %s\\ to complete the installation.", h.spec.SystemRoot[:2])
		if !langOK {
			reason = "The language of this Service Pack does not match the language of the installed operating system." // [NC]
		}
		h.mu.Lock()
		h.appendLogLocked(logPath, []string{
			"Service Pack 2 Setup canceled.",
			reason,
			"Update.exe extended error code = 0xf00d",
			"Update.exe return code was masked to 0x643 for MSI custom action compliance.",
		})
		h.installing = false
		h.mu.Unlock()
		return 1603 // the failure sample in docs/facts.md §2.3
	}
	if !h.clock.Sleep(p.ctx, h.opts.InstallDuration) {
		finish()
		return 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.installing = false
	if p.ctx.Err() != nil || !h.up {
		return 1
	}
	h.applySP2Locked()
	code := 0
	ext := "0x0"
	if len(h.pending) > 0 {
		code = 3010
		ext = "0xbc2"
	}
	// Success lines modelled on the failure sample's wording ([I]; 0xbc2 = 3010).
	lines := []string{
		"Service Pack 2 Setup completed successfully.",
		"Update.exe extended error code = " + ext,
	}
	if code == 3010 {
		lines = append(lines, "A reboot is required to complete the installation.",
			"Update.exe return code was masked to 0xbc2 for MSI custom action compliance.")
	}
	h.appendLogLocked(logPath, lines)
	if code == 3010 && !norestart {
		// update.exe restarts the machine itself when /norestart is absent
		h.scheduleShutdownLocked(30*time.Second, !h.spec.NeverReturns)
	}
	return code
}

// applySP2Locked raises every IIS file below the SP2 level to it (never lowers a newer one);
// files in use are replaced at the next boot.
func (h *Host) applySP2Locked() {
	if h.spec.IIS {
		dir := h.inetsrv() + `\`
		for _, name := range iisFiles() {
			path := dir + name
			f := h.fs.file(path)
			if f == nil || cmpVersion(f.version, VersionSP2) >= 0 {
				continue
			}
			if h.fileInUseLocked(path) {
				h.pending = append(h.pending, pendingFile{path: f.path, version: VersionSP2, size: fileSize(name, VersionSP2)})
				continue
			}
			f.version = VersionSP2
			f.size = fileSize(name, VersionSP2)
			f.mtime = h.clock.Now()
		}
	}
	if h.spec.ServicePack < 2 {
		h.spec.ServicePack = 2
		cv := `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
		h.reg.set(cv, "CSDVersion", "REG_SZ", "Service Pack 2")
		h.reg.set(cv, "BuildLab", "REG_SZ", "3790.srv03_sp2_rtm.070216-1710")
		h.pending = append(h.pending, pendingFile{path: h.spec.SystemRoot + `\system32\ntoskrnl.exe`, version: "5.2.3790.3959", size: fileSize("ntoskrnl.exe", "5.2.3790.3959")})
	}
	if len(h.pending) > 0 {
		var parts []string
		for _, pf := range h.pending {
			parts = append(parts, `\??\`+pf.path+".new", `!\??\`+pf.path)
		}
		h.reg.set(`HKLM\SYSTEM\CurrentControlSet\Control\Session Manager`, "PendingFileRenameOperations", "REG_MULTI_SZ", strings.Join(parts, "\x00"))
	}
}

// appendLogLocked appends svcpack.log-style lines ("seconds.milliseconds: text" [I]; the sample
// quotes the messages without their prefix).
func (h *Host) appendLogLocked(path string, lines []string) {
	f := h.fs.file(path)
	if f == nil {
		f = &file{path: path}
		h.fs.put(f)
	}
	now := h.localNow()
	var sb strings.Builder
	sb.WriteString("0.000: ================================================================================\r\n")
	sb.WriteString(fmt.Sprintf("0.000: %s (local)\r\n", now.Format("2006/01/02 15:04:05.000")))
	sb.WriteString("0.000: Service Pack 2 Setup (KB914961)\r\n")
	for i, l := range lines {
		sb.WriteString(fmt.Sprintf("%d.%03d: %s\r\n", 1500+i, 125+i*16, l))
	}
	f.write([]byte(sb.String()))
	f.mtime = h.clock.Now()
}
