package win2003

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// coreFiles are the IIS files of %SystemRoot%\system32\inetsrv that must reach the SP2 level
// (the core files of the embedded playbooks). The SP2 installer raises every one of them.
var coreFiles = []string{
	"iisutil.dll", "w3core.dll", "w3dt.dll", "w3isapi.dll", "w3tp.dll", "w3wp.exe", "iisw3adm.dll",
	"w3cache.dll", "w3comlog.dll", "w3ssl.dll", "iisres.dll", "infocomm.dll", "isatq.dll", "iisrtl.dll",
	"asp.dll", "httpext.dll", "metadata.dll", "admwprox.dll", "coadmin.dll", "iisadmin.dll",
	"inetinfo.exe", "strmfilt.dll", "wam.dll",
}

// otherIISFiles also live in inetsrv and follow the IIS level.
var otherIISFiles = []string{
	"adsiis.dll", "gzip.dll", "iisext.dll", "iislog.dll", "iisui.dll", "inetmgr.exe",
	"logscrpt.dll", "svcext.dll", "uihelper.dll", "w3ctrs.dll", "wamreg.dll", "iis.dll",
}

// iisFiles lists the versioned inetsrv files that follow the IIS level: the core files, then the others.
func iisFiles() []string {
	return append(append([]string(nil), coreFiles...), otherIISFiles...)
}

// oldFiles stay older on healthy SP2 hosts (docs/facts.md §1.2) and never count.
var oldFiles = map[string]string{
	"seos.dll": "6.0.3790.0", "aqadmin.dll": "6.0.3790.0", "iisclex4.dll": "6.0.3790.0",
	"nntpsnap.dll": "6.0.3728.0", "smtpsnap.dll": "6.0.3728.0",
}

// unversioned files of inetsrv (no version resource: wmic prints an empty Version).
var unversionedFiles = []string{"MetaBase.xml", "MBSchema.xml", "iis.msc"}

// fileSize returns a stable, plausible size for a file at a version.
func fileSize(name, version string) int64 {
	s := sha256.Sum256([]byte(strings.ToLower(name) + "|" + version))
	return 16384 + int64(binary.LittleEndian.Uint32(s[:4])%600000)&^511
}

func (h *Host) inetsrv() string { return h.spec.SystemRoot + `\system32\inetsrv` }

func (h *Host) build() {
	s := &h.spec
	h.reg = newRegistry()
	h.fs = newFileSystem()
	h.fs.capacity = s.FreeDisk
	h.fs.loadImages = func() []InstallerImage {
		if h.opts.Installers != nil {
			return h.opts.Installers
		}
		return NewInstallerImages(h.opts.InstallerSize)
	}
	sr := s.SystemRoot
	drive := sr[:2]
	installed := DefaultStart.Add(-400 * 24 * time.Hour)

	for _, d := range []string{
		`C:\`, drive + `\`, sr, sr + `\system32`, sr + `\system32\wbem`, sr + `\TEMP`, sr + `\Tasks`,
		drive + `\Documents and Settings\Administrator\Local Settings\Temp`,
		drive + `\Documents and Settings\All Users`, drive + `\Program Files`,
	} {
		h.fs.mkdirAll(d)
	}
	osVer := map[int]string{0: "5.2.3790.0", 1: "5.2.3790.1830", 2: "5.2.3790.3959"}[s.ServicePack]
	for _, f := range []string{"ntoskrnl.exe", "kernel32.dll", "hal.dll", "cmd.exe", "reg.exe", "sc.exe", "schtasks.exe",
		"shutdown.exe", "tasklist.exe", "hostname.exe", "findstr.exe", "certutil.exe", "cscript.exe", "ping.exe", "net.exe"} {
		h.fs.put(&file{path: sr + `\system32\` + f, version: osVer, size: fileSize(f, osVer), mtime: installed})
	}
	h.fs.put(&file{path: sr + `\system32\wbem\wmic.exe`, version: osVer, size: fileSize("wmic.exe", osVer), mtime: installed})
	if s.PowerShell {
		ps := sr + `\system32\WindowsPowerShell\v1.0\powershell.exe`
		h.fs.put(&file{path: ps, version: "6.0.6002.18111", size: 452608, mtime: installed})
	}
	if s.IIS {
		for _, f := range []string{"iisapp.vbs", "iisweb.vbs", "iiscnfg.vbs"} {
			h.fs.put(&file{path: sr + `\system32\` + f, size: fileSize(f, ""), mtime: installed})
		}
		h.fs.put(&file{path: sr + `\system32\iisreset.exe`, version: s.IISLevel, size: fileSize("iisreset.exe", s.IISLevel), mtime: installed})
		dir := h.inetsrv()
		h.fs.mkdirAll(dir)
		h.fs.mkdirAll(drive + `\Inetpub\wwwroot`)
		seen := map[string]bool{}
		for _, f := range iisFiles() {
			seen[f] = true
			v := s.IISLevel
			if o, ok := s.Overrides[f]; ok {
				v = o
			}
			h.fs.put(&file{path: dir + `\` + f, version: v, size: fileSize(f, v), mtime: installed})
		}
		for f, v := range oldFiles {
			h.fs.put(&file{path: dir + `\` + f, version: v, size: fileSize(f, v), mtime: installed})
		}
		for _, f := range unversionedFiles {
			h.fs.put(&file{path: dir + `\` + f, size: fileSize(f, ""), mtime: installed})
		}
		for f, v := range s.Overrides {
			if !seen[f] {
				if _, old := oldFiles[f]; !old {
					h.fs.put(&file{path: dir + `\` + f, version: v, size: fileSize(f, v), mtime: installed})
				}
			}
		}
	}

	// Registry
	cv := `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
	buildLab := map[int]string{0: "3790.srv03_rtm.030324-2048", 1: "3790.srv03_sp1_rtm.050324-1447", 2: "3790.srv03_sp2_rtm.070216-1710"}[s.ServicePack]
	h.reg.set(cv, "CurrentBuild", "REG_SZ", "1.511.1 () (Obsolete data - do not use)")
	h.reg.set(cv, "InstallDate", "REG_DWORD", fmt.Sprint(installed.Unix()))
	h.reg.set(cv, "ProductName", "REG_SZ", "Microsoft Windows Server 2003")
	h.reg.set(cv, "RegDone", "REG_SZ", "")
	h.reg.set(cv, "RegisteredOrganization", "REG_SZ", "Contoso")
	h.reg.set(cv, "RegisteredOwner", "REG_SZ", "Administrator")
	h.reg.set(cv, "SoftwareType", "REG_SZ", "SYSTEM")
	h.reg.set(cv, "CurrentVersion", "REG_SZ", "5.2")
	h.reg.set(cv, "CurrentBuildNumber", "REG_SZ", "3790")
	h.reg.set(cv, "BuildLab", "REG_SZ", buildLab)
	h.reg.set(cv, "CurrentType", "REG_SZ", "Multiprocessor Free")
	if s.ServicePack > 0 {
		h.reg.set(cv, "CSDVersion", "REG_SZ", h.csdVersion())
	}
	h.reg.set(cv, "SystemRoot", "REG_SZ", sr)
	h.reg.set(cv, "ProductId", "REG_SZ", "69712-640-0000000-45112")
	h.reg.set(cv, "PathName", "REG_SZ", sr)
	for _, k := range []string{"AeDebug", "Compatibility32", "Fonts", "Hotfix", "Image File Execution Options", "Perflib", "Winlogon"} {
		h.reg.ensure(cv + `\` + k)
	}
	env := `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment`
	h.reg.set(env, "ComSpec", "REG_EXPAND_SZ", `%SystemRoot%\system32\cmd.exe`)
	h.reg.set(env, "Path", "REG_EXPAND_SZ", `%SystemRoot%\system32;%SystemRoot%;%SystemRoot%\System32\Wbem`)
	h.reg.set(env, "windir", "REG_EXPAND_SZ", `%SystemRoot%`)
	h.reg.set(env, "FP_NO_HOST_CHECK", "REG_SZ", "NO")
	h.reg.set(env, "OS", "REG_SZ", "Windows_NT")
	h.reg.set(env, "PROCESSOR_ARCHITECTURE", "REG_SZ", s.Arch)
	h.reg.set(env, "PROCESSOR_IDENTIFIER", "REG_SZ", h.processorIdentifier())
	h.reg.set(env, "PROCESSOR_LEVEL", "REG_SZ", "6")
	h.reg.set(env, "PROCESSOR_REVISION", "REG_SZ", "0f06")
	h.reg.set(env, "NUMBER_OF_PROCESSORS", "REG_SZ", "2")
	h.reg.set(env, "PATHEXT", "REG_SZ", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH")
	h.reg.set(env, "TEMP", "REG_EXPAND_SZ", `%SystemRoot%\TEMP`)
	h.reg.set(env, "TMP", "REG_EXPAND_SZ", `%SystemRoot%\TEMP`)
	nls := `HKLM\SYSTEM\CurrentControlSet\Control\Nls\Language`
	h.reg.set(nls, "0409", "REG_SZ", "l_intl.nls")
	h.reg.set(nls, "0C0A", "REG_SZ", "l_intl.nls")
	h.reg.set(nls, "Default", "REG_SZ", strings.ToLower(s.Language[:1])+s.Language[1:])
	h.reg.set(nls, "InstallLanguage", "REG_SZ", s.Language)
	cp := `HKLM\SYSTEM\CurrentControlSet\Control\Nls\CodePage`
	h.reg.set(cp, "ACP", "REG_SZ", fmt.Sprint(h.loc().ansiCP))
	h.reg.set(cp, "OEMCP", "REG_SZ", fmt.Sprint(h.loc().oemCP))
	h.reg.ensure(`HKLM\SYSTEM\CurrentControlSet\Control\Session Manager`)
	h.setInternationalLocked()
	if s.IIS {
		is := `HKLM\SOFTWARE\Microsoft\InetStp`
		h.reg.set(is, "MajorVersion", "REG_DWORD", "6")
		h.reg.set(is, "MinorVersion", "REG_DWORD", "0")
		h.reg.set(is, "InstallPath", "REG_SZ", h.inetsrv())
		h.reg.set(is, "PathWWWRoot", "REG_SZ", drive+`\Inetpub\wwwroot`)
		h.reg.set(is, "SetupString", "REG_SZ", "IIS 6.0")
	}
	updates := `HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP` + fmt.Sprint(s.ServicePack+1)
	h.reg.ensure(updates)
	for _, kb := range s.Hotfixes {
		k := updates + `\` + kb
		typ := "Security Update"
		if kb == "KB968930" {
			typ = "Update"
		}
		h.reg.set(k, "Description", "REG_SZ", fmt.Sprintf("%s for Windows Server 2003 (%s)", typ, kb))
		h.reg.set(k, "InstalledBy", "REG_SZ", "Administrator")
		h.reg.set(k, "InstalledDate", "REG_SZ", hotfixDate(kb))
		h.reg.set(k, "Type", "REG_SZ", typ)
	}
	if s.PowerShell {
		h.reg.set(`HKLM\SOFTWARE\Microsoft\PowerShell\1`, "Install", "REG_DWORD", "1")
		pe := `HKLM\SOFTWARE\Microsoft\PowerShell\1\PowerShellEngine`
		h.reg.set(pe, "ApplicationBase", "REG_SZ", sr+`\system32\WindowsPowerShell\v1.0`)
		h.reg.set(pe, "PSCompatibleVersion", "REG_SZ", "1.0, 2.0")
		h.reg.set(pe, "RuntimeVersion", "REG_SZ", "v2.0.50727")
		h.reg.set(pe, "ConsoleHostAssemblyName", "REG_SZ", "Microsoft.PowerShell.ConsoleHost, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35, ProcessorArchitecture=msil")
		h.reg.set(pe, "ConsoleHostModuleName", "REG_SZ", sr+`\system32\WindowsPowerShell\v1.0\Microsoft.PowerShell.ConsoleHost.dll`)
		h.reg.set(pe, "PowerShellVersion", "REG_SZ", "2.0")
	}

	// Services
	l := h.loc()
	h.services = []*service{
		{name: "Schedule", display: l.text("scheddisplay"), auto: true, shareProcess: true},
		{name: "WinRM", display: l.text("winrmdisplay"), auto: true, shareProcess: true},
	}
	if s.IIS {
		h.services = append(h.services,
			&service{name: "IISADMIN", display: l.text("iisadmindisplay"), auto: true},
			&service{name: "W3SVC", display: l.text("w3svcdisplay"), auto: true, shareProcess: true, w3svc: true, dependsOn: "IISADMIN"},
			// IIS 6's HTTP SSL service, the other dependant KB969864's transcript lists (docs/facts.md §4.3)
			&service{name: "HTTPFilter", display: l.text("httpssldisplay"), auto: true, shareProcess: true, dependsOn: "IISADMIN"})
		for _, name := range s.Pools {
			h.pools = append(h.pools, &pool{name: name, autoStart: true, rapidFail: true, maxCrashes: 5, interval: 5 * time.Minute, state: 4})
		}
		h.sites = append(h.sites, &site{id: 1, comment: "Default Web Site", pool: s.Pools[0], bindings: []binding{{port: 80}}})
		for i, name := range s.Pools[1:] {
			h.sites = append(h.sites, &site{id: i + 2, comment: name, pool: name, bindings: []binding{siteBinding(name)}})
		}
	}
}

// siteBinding is where the lab binds the site of an extra pool: WSUS's own port 8530 for its
// pool, else port 80 with a host header named after the pool (AppPool_Intranet: intranet).
func siteBinding(pool string) binding {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(pool, "AppPool_"), "Pool"))
	if name == "wsus" {
		return binding{port: 8530}
	}
	return binding{port: 80, host: name}
}

// setPendingRenamesLocked writes PendingFileRenameOperations for the pending replacements: pairs
// of the new file and the file it replaces ("!" = replace an existing file), REG_MULTI_SZ.
func (h *Host) setPendingRenamesLocked() {
	if len(h.pending) == 0 {
		return
	}
	var parts []string
	for _, pf := range h.pending {
		parts = append(parts, `\??\`+pf.path+".new", `!\??\`+pf.path)
	}
	h.reg.set(`HKLM\SYSTEM\CurrentControlSet\Control\Session Manager`, "PendingFileRenameOperations", "REG_MULTI_SZ", strings.Join(parts, "\x00"))
}

// setInternationalLocked writes the date and time formats of the install language under the
// WinRM user's HKCU and under HKU\.DEFAULT (SYSTEM's): en-US M/d/yyyy with a 12-hour clock,
// es-ES dd/MM/yyyy with a 24-hour one (iDate 0 = month first, 1 = day first, 2 = year first;
// docs/facts.md §5.5).
func (h *Host) setInternationalLocked() {
	vals := [][2]string{{"iDate", "0"}, {"sDate", "/"}, {"sShortDate", "M/d/yyyy"}, {"iTime", "0"},
		{"sTime", ":"}, {"sTimeFormat", "h:mm:ss tt"}, {"s1159", "AM"}, {"s2359", "PM"}, {"sLanguage", "ENU"}, {"Locale", "00000409"}}
	if h.spec.Language == "0C0A" {
		vals = [][2]string{{"iDate", "1"}, {"sDate", "/"}, {"sShortDate", "dd/MM/yyyy"}, {"iTime", "1"},
			{"sTime", ":"}, {"sTimeFormat", "H:mm:ss"}, {"s1159", ""}, {"s2359", ""}, {"sLanguage", "ESN"}, {"Locale", "00000C0A"}}
	}
	for _, root := range []string{`HKCU`, `HKU\.DEFAULT`} {
		for _, v := range vals {
			h.reg.set(root+`\Control Panel\International`, v[0], "REG_SZ", v[1])
		}
	}
}

// hotfixDate is the registration date shown for a KB (a plausible date after its release).
func hotfixDate(kb string) string {
	switch kb {
	case "KB982666":
		return "6/15/2010"
	case "KB973917":
		return "12/10/2009"
	case "KB968930":
		return "11/20/2009"
	}
	return "4/14/2010"
}

// fileInUseLocked reports whether a file is loaded by a running process: the .dll and .exe files
// of inetsrv while IISADMIN or W3SVC runs.
func (h *Host) fileInUseLocked(path string) bool {
	n := normPath(path)
	if !strings.HasPrefix(n, normPath(h.inetsrv())+`\`) || !strings.HasSuffix(n, ".dll") && !strings.HasSuffix(n, ".exe") {
		return false
	}
	for _, s := range h.services {
		if (s.name == "W3SVC" || s.name == "IISADMIN") && s.running {
			return true
		}
	}
	return false
}
