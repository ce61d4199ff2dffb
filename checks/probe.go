package checks

import "strings"

// ProbeVersion is the version of the probe format this package writes ("v1" in markers).
const ProbeVersion = 1

// The marker lines around each section's raw output (DESIGN.md "checks"):
//
//	##iisremedy-probe v1 begin <section>##
//	<the command's raw output, unchanged>
//	##iisremedy-probe v1 end <section> rc=<exit code>##
const (
	markerPrefix = "##iisremedy-probe "
	markerV1     = markerPrefix + "v1 "
)

// ProbeSection is one section of probe v1: its name, the cmd.exe command line and what it
// establishes. In Command, %SystemDrive% and !P! are expanded by cmd.exe: P holds
// %SystemRoot% without its drive and with every backslash doubled, as WQL string literals
// need.
type ProbeSection struct {
	Name        string
	Command     string
	Description string
}

// probeV1 is DESIGN.md's table; changing a command is a format change (bump the version).
var probeV1 = []ProbeSection{
	{"hostname", `hostname`, "the host name"},
	{"os", `reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"`, "Windows version, build, service pack and %SystemRoot%"},
	{"arch", `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment" /v PROCESSOR_ARCHITECTURE`, "processor architecture (x86, AMD64, IA64)"},
	{"lang", `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Nls\Language" /v InstallLanguage`, "install language, which picks the installer"},
	{"iis", `reg query "HKLM\SOFTWARE\Microsoft\InetStp"`, "whether IIS is installed, and its version"},
	{"w3svc", `sc query w3svc`, "the World Wide Web Publishing service's state"},
	{"inetsrv", `wmic datafile where "Drive='%SystemDrive%' and Path='!P!\\system32\\inetsrv\\'" get Name,Version /format:list`, "the versions of the files in %SystemRoot%\\system32\\inetsrv"},
	{"hotfixes", `reg query "HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3"`, "updates registered on an SP2 host"},
	{"events", `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and (EventCode=1002 or EventCode=1009)" get EventCode,InsertionStrings,TimeGenerated /format:list`, "worker process crashes (1009) and disabled pools (1002)"},
	{"apppools", `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolAutoStart,AppPoolState,Name /format:list`, "application pools, their auto-start setting and state"},
	{"boot", `wmic os get LastBootUpTime,LocalDateTime /format:list`, "last boot time and the host's clock"},
	{"disk", `wmic logicaldisk where "DeviceID='%SystemDrive%'" get FreeSpace,Size /format:list`, "free space on the system drive"},
	{"powershell", `reg query "HKLM\SOFTWARE\Microsoft\PowerShell\1\PowerShellEngine" /v PowerShellVersion`, "the PowerShell version, if any"},
}

// Section names, as constants for callers that look sections up.
const (
	SectionHostname   = "hostname"
	SectionOS         = "os"
	SectionArch       = "arch"
	SectionLang       = "lang"
	SectionIIS        = "iis"
	SectionW3SVC      = "w3svc"
	SectionInetsrv    = "inetsrv"
	SectionHotfixes   = "hotfixes"
	SectionEvents     = "events"
	SectionAppPools   = "apppools"
	SectionBoot       = "boot"
	SectionDisk       = "disk"
	SectionPowerShell = "powershell"
)

// ProbeSections returns the section names of probe v1, in order.
func ProbeSections() []string {
	out := make([]string, len(probeV1))
	for i, s := range probeV1 {
		out[i] = s.Name
	}
	return out
}

// ProbeCommands returns probe v1's sections with their commands, in order.
func ProbeCommands() []ProbeSection {
	return append([]ProbeSection(nil), probeV1...)
}

// setP are the two assignments that make P = %SystemRoot% without the drive, with every
// backslash doubled (C:\WINDOWS -> \\WINDOWS), for the WQL Path literal of the inetsrv
// section. They use !VAR:~n! and !VAR:old=new!, so delayed expansion must be on.
var setP = []string{`set "P=!SystemRoot:~2!"`, `set "P=!P:\=\\!"`}

func beginMarker(name string) string { return "echo " + markerV1 + "begin " + name + "##" }
func endMarker(name string) string {
	return "echo " + markerV1 + "end " + name + " rc=!ERRORLEVEL!##"
}

// ProbeCommand returns probe v1 as ONE cmd.exe command line, the form sent as a WinRM
// command: cmd /v:on /c "..." with the sections joined by &. Delayed expansion (/v:on) makes
// !ERRORLEVEL! read each command's exit code when its end marker runs. The line stays far
// below cmd.exe's 8191-character limit (KB830473). It keeps to cmd.exe features the lab's
// cmd.exe models: /v:on /c "...", &, set "N=v", !VAR!, !VAR:~n!, !VAR:old=new!, echo, <nul.
func ProbeCommand() string {
	parts := append([]string(nil), setP...)
	for _, s := range probeV1 {
		cmd := strings.ReplaceAll(s.Command, "%SystemDrive%", "!SystemDrive!")
		parts = append(parts, beginMarker(s.Name), cmd, endMarker(s.Name))
	}
	// <nul: the probe's stdin is the NUL device, so wmic, which reads its stdin when that is
	// not a console, cannot wait for input that a remote shell never sends.
	return `cmd /v:on /c "` + strings.Join(parts, "&") + `"<nul`
}

// ProbeScript returns probe v1 as a .cmd batch file (CRLF line ends) that an admin runs as
// probe.cmd > probe.txt on a host without WinRM; diagnose reads the capture. When wmic's
// output goes to a file it writes UTF-16LE, so such captures mix ANSI and UTF-16LE
// sections; ParseCapture reads both.
func ProbeScript() string {
	lines := []string{
		"@echo off",
		"rem iisremedy probe v1, read-only. Redirect its output to a file and pass that file to iisremedy diagnose.",
		"setlocal EnableDelayedExpansion",
	}
	lines = append(lines, setP...)
	for _, s := range probeV1 {
		lines = append(lines, beginMarker(s.Name), s.Command, endMarker(s.Name))
	}
	lines = append(lines, "endlocal", "")
	return strings.Join(lines, "\r\n")
}
