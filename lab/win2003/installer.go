package win2003

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// runInstaller runs the SP2 installer image img from path (the file's content is the image;
// its name does not matter). The UI switches (/quiet, /passive, /u, /q, /n, /o, /f, /z, ...)
// change nothing here: the lab installer never shows a window.
func (p *proc) runInstaller(path string, img *InstallerImage, args []string, errw *stream) int {
	h := p.h
	q := h.quirks
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
	h.mu.Lock()
	if !strings.EqualFold(img.Arch, h.spec.Arch) {
		h.mu.Unlock()
		p.write(errw, path+" is not a valid Win32 application.\r\n") // docs/facts.md §2.3 [I]
		return 193
	}
	run := &InstallerRun{Start: h.clock.Now(), Path: path, Image: img.Name, User: p.user, InShell: p.job != nil}
	h.logInstallLocked(run)
	p.wroteLocked()
	finishLocked := func(code int, killed bool) int {
		run.End, run.ExitCode, run.Killed = h.clock.Now(), code, killed
		return code
	}
	if h.installing {
		defer h.mu.Unlock()
		return finishLocked(q.ExitInstallerBusy, false)
	}
	h.installing = true
	diskShort := h.spec.InstallerFails == "disk" || h.freeLocked() < q.InstallerDiskNeeded
	langOK := strings.EqualFold(img.Language, h.spec.Language)
	h.mu.Unlock()
	finish := func(code int, killed bool) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.installing = false
		return finishLocked(code, killed)
	}
	// The self-extractor starts and unpacks the package; then update.exe and its helpers start.
	// Inside a WinRM shell they count against its job: past MaxProcessesPerShell or
	// MaxMemoryPerShellMB a process creation or an allocation fails and update.exe gives up
	// before replacing any file (docs/facts.md §6.3 [I]). Outside a shell nothing counts, and
	// the installation is one wait.
	var elapsed time.Duration
	endExtractor, err := p.job.Start(memProgram)
	if err == nil && p.job != nil {
		defer endExtractor()
		if !h.clock.Sleep(p.ctx, installerExtract) {
			return finish(1, true)
		}
		elapsed = installerExtract
		for i := 1; i < q.InstallerShellProcesses && err == nil; i++ {
			var end func()
			if end, err = p.job.Start(memProgram); err == nil {
				defer end()
			}
		}
	}
	if err == nil {
		var release func()
		if release, err = p.job.Commit(max(q.InstallerShellMemoryMB-q.InstallerShellProcesses*memProgram, 0)); err == nil {
			defer release()
		}
	}
	if err != nil {
		ext := "0x5af" // ERROR_COMMITMENT_LIMIT
		if errors.Is(err, wsman.ErrProcessQuota) {
			ext = "0x718" // ERROR_NOT_ENOUGH_QUOTA
		}
		h.mu.Lock()
		h.appendLogLocked(logPath, []string{
			"Service Pack 2 Setup canceled.",
			quotaText(err),
			"Update.exe extended error code = " + ext,
			"Update.exe return code was masked to 0x643 for MSI custom action compliance.",
		})
		h.mu.Unlock()
		return finish(q.InstallerQuotaExit, false)
	}
	if fails := h.spec.InstallerFails == "inf"; diskShort || !langOK || fails {
		if !h.clock.Sleep(p.ctx, installerCheck) {
			return finish(1, true)
		}
		// The reason lines are the lab's wording [NC], except the INF line, which is the failure
		// sample's (docs/facts.md §2.3); the other three lines are the sample's too.
		reason := fmt.Sprintf("There is not enough disk space on %s\\ to complete the installation.", h.spec.SystemRoot[:2])
		switch {
		case !langOK:
			reason = "The language of this Service Pack does not match the language of the installed operating system."
		case fails:
			reason = `SetupVerifyInfFile failed with error 0x490 for machine.inf of device ROOT\RDPDR\0000`
		}
		h.mu.Lock()
		h.appendLogLocked(logPath, []string{
			"Service Pack 2 Setup canceled.",
			reason,
			"Update.exe extended error code = 0xf00d",
			"Update.exe return code was masked to 0x643 for MSI custom action compliance.",
		})
		h.mu.Unlock()
		return finish(1603, false) // the failure sample in docs/facts.md §2.3
	}
	if !h.clock.Sleep(p.ctx, h.opts.InstallDuration-elapsed) {
		return finish(1, true)
	}
	h.mu.Lock()
	if p.ctx.Err() != nil || !h.up {
		h.mu.Unlock()
		return finish(1, true)
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
	h.mu.Unlock()
	return finish(code, false)
}

// The installer's phases in simulated time (docs/facts.md §2.4 [NC]: no source times them):
// unpacking, and the checks that fail a doomed installation.
const (
	installerExtract = 2 * time.Minute
	installerCheck   = time.Minute
)

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
	h.setPendingRenamesLocked()
}

// appendLogLocked appends svcpack.log-style lines ("seconds.milliseconds: text" [I]; the sample
// quotes the messages without their prefix).
func (h *Host) appendLogLocked(path string, lines []string) {
	f := h.fs.file(path)
	if f == nil {
		f = h.fs.newFile(path, h.clock.Now())
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
	_, _ = h.fs.write(f, []byte(sb.String())) // a full disk cuts the log short, as on Windows
	f.mtime = h.clock.Now()
}
