package checks

import (
	"slices"
	"strings"
)

// The marker lines around each section's raw output (docs/design.md §5.1):
//
//	##iisremedy-probe v1 begin <section>##
//	<the command's raw output, unchanged>
//	##iisremedy-probe v1 end <section> rc=<exit code>##
const (
	markerPrefix = "##iisremedy-probe "
	markerV1     = markerPrefix + "v1 "
)

// probeSection is one section of probe v1: its name and the cmd.exe command line. In
// command, %SystemDrive% and !P! are expanded by cmd.exe: P holds %SystemRoot% without its
// drive and with every backslash doubled, as WQL string literals need.
type probeSection struct {
	name    string
	command string
}

// probeV1 is the table in docs/design.md §5.2; changing a command is a format change (bump the version).
var probeV1 = []probeSection{
	{sectionHostname, `hostname`},
	{sectionOS, `reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"`},
	{sectionArch, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment" /v PROCESSOR_ARCHITECTURE`},
	{sectionLang, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Nls\Language" /v InstallLanguage`},
	{sectionIIS, `reg query "HKLM\SOFTWARE\Microsoft\InetStp"`},
	{sectionW3SVC, `sc query w3svc`},
	{sectionInetsrv, `wmic datafile where "Drive='%SystemDrive%' and Path='!P!\\system32\\inetsrv\\'" get Name,Version /format:list`},
	{sectionHotfixes, `reg query "HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3"`},
	{sectionEvents, `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and (EventCode=1002 or EventCode=1009)" get EventCode,InsertionStrings,TimeGenerated /format:list`},
	{sectionAppPools, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolAutoStart,AppPoolState,Name /format:list`},
	{sectionBoot, `wmic os get LastBootUpTime,LocalDateTime /format:list`},
	{sectionDisk, `wmic logicaldisk where "DeviceID='%SystemDrive%'" get FreeSpace,Size /format:list`},
	{sectionPowerShell, `reg query "HKLM\SOFTWARE\Microsoft\PowerShell\1\PowerShellEngine" /v PowerShellVersion`},
}

// Section names, for looking sections up.
const (
	sectionHostname   = "hostname"
	sectionOS         = "os"
	sectionArch       = "arch"
	sectionLang       = "lang"
	sectionIIS        = "iis"
	sectionW3SVC      = "w3svc"
	sectionInetsrv    = "inetsrv"
	sectionHotfixes   = "hotfixes"
	sectionEvents     = "events"
	sectionAppPools   = "apppools"
	sectionBoot       = "boot"
	sectionDisk       = "disk"
	sectionPowerShell = "powershell"
)

// ProbeSections returns the section names of probe v1, in order.
func ProbeSections() []string {
	out := make([]string, len(probeV1))
	for i, s := range probeV1 {
		out[i] = s.name
	}
	return out
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
func ProbeCommand() string { return ProbeCommandFor() }

// ProbeCommandFor is ProbeCommand limited to the named sections (none = all): the engine polls a
// host's pools, events and boot time with it while it watches the host, and ParseFacts reads
// the output, those sections established and the others missing.
func ProbeCommandFor(sections ...string) string {
	parts := append([]string(nil), setP...)
	for _, s := range probeV1 {
		if len(sections) > 0 && !slices.Contains(sections, s.name) {
			continue
		}
		cmd := strings.ReplaceAll(s.command, "%SystemDrive%", "!SystemDrive!")
		parts = append(parts, beginMarker(s.name), cmd, endMarker(s.name))
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
		lines = append(lines, beginMarker(s.name), s.command, endMarker(s.name))
	}
	lines = append(lines, "endlocal", "")
	return strings.Join(lines, "\r\n")
}
