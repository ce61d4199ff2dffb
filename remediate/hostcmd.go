package remediate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The command lines the engine runs on a host, and the parsers of what they print. Each runs
// in the host's cmd shell (cmd /c); every wmic and powershell call reads stdin from NUL unless it
// streams data in on purpose, since both wait on an open stdin (docs/facts.md §5.3, §5.11).
// Formats are those of docs/facts.md §5; the lab answers them the same way.

// safePath accepts a Windows path that can be pasted into a command line between double quotes
// and into a PowerShell single-quoted string: drive, backslashes, letters, digits, _ - . and no
// spaces (schtasks /tr would need nested quotes), quotes, % (cmd expands it even in quotes) or
// shell characters.
var safePath = regexp.MustCompile(`^[A-Za-z]:(\\[A-Za-z0-9_.-]+)+$`)

// CheckWorkDir validates a --work-dir value.
func CheckWorkDir(dir string) error {
	if dir != "" && !safePath.MatchString(dir) {
		return fmt.Errorf("%q: want an absolute Windows path of letters, digits, _ - . without spaces, like C:\\iisremedy", dir)
	}
	return nil
}

// safeName accepts an IIS application pool name that can be quoted in a WQL literal inside a
// cmd double-quoted argument: no quotes, %, ! or backslash, nothing below a space.
func safeName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"'%!\^`, r) {
			return false
		}
	}
	return true
}

func mkdirCmd(dir string) string { return fmt.Sprintf(`if not exist "%s\" mkdir "%s"`, dir, dir) }

// listCmd prints "SIZE NAME" for every file of dir (cmd's FOR modifiers %~z and %~nx).
func listCmd(dir string) string { return fmt.Sprintf(`for %%F in ("%s\*") do @echo %%~zF %%~nxF`, dir) }

// parseList reads listCmd's output: file name (lower case) -> size.
func parseList(out []byte) map[string]int64 {
	files := map[string]int64{}
	for _, line := range strings.Split(string(out), "\n") {
		size, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
			files[strings.ToLower(strings.TrimSpace(name))] = n
		}
	}
	return files
}

// writeFileCmd writes its stdin to path, line by line, as findstr passes every line through.
func writeFileCmd(path string) string { return fmt.Sprintf(`findstr "^" > "%s"`, path) }

func appendFileCmd(path string) string { return fmt.Sprintf(`findstr "^" >> "%s"`, path) }

func delCmd(paths ...string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = `"` + p + `"`
	}
	return "del /q " + strings.Join(q, " ")
}

// moveCmd moves from to to; repeated after it succeeded, it finds from gone and to present, and
// still exits 0 (dir exits 1 when neither is there).
func moveCmd(from, to string) string {
	return fmt.Sprintf(`if exist "%s" (move /y "%s" "%s") else dir "%s"`, from, from, to, to)
}

// powershell runs a PowerShell 2.0 command: no profile, never a prompt, and stdin from NUL
// unless the script reads it.
func powershell(script string, readsStdin bool) string {
	if readsStdin {
		return `powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "` + script + `"`
	}
	return `powershell -NoProfile -NonInteractive -InputFormat None -ExecutionPolicy Bypass -Command "` + script + `" < NUL`
}

// psDecodeCmd appends the base64 lines of its stdin, decoded, to part after cutting it to offset:
// a resumed transfer continues exactly where the last complete line ended.
func psDecodeCmd(part string, offset int64) string {
	return powershell(fmt.Sprintf(`$ErrorActionPreference='Stop';$f=[IO.File]::Open('%s','OpenOrCreate','Write');$f.SetLength(%d);[void]$f.Seek(0,'End');$r=[Console]::In;while(($l=$r.ReadLine()) -ne $null){if($l.Length -gt 0){$b=[Convert]::FromBase64String($l);$f.Write($b,0,$b.Length)}};$f.Close()`, part, offset), true)
}

// psPullCmd fetches url into part with a ranged request from part's length on.
func psPullCmd(url, part string) string {
	return powershell(fmt.Sprintf(`$ErrorActionPreference='Stop';$f=[IO.File]::Open('%s','OpenOrCreate','Write');$o=$f.Length;[void]$f.Seek($o,'Begin');$q=[Net.WebRequest]::Create('%s');if($o -gt 0){$q.AddRange([int]$o)};$s=$q.GetResponse().GetResponseStream();$b=New-Object byte[] 65536;while(($n=$s.Read($b,0,$b.Length)) -gt 0){$f.Write($b,0,$n)};$s.Close();$f.Close()`, part, url), false)
}

// psHashCmd prints the SHA-256 of a file in upper-case hex (.NET 2.0, which PowerShell 2.0 runs on).
func psHashCmd(path string) string {
	return powershell(fmt.Sprintf(`$s=[IO.File]::OpenRead('%s');$h=[Security.Cryptography.SHA256]::Create().ComputeHash($s);$s.Close();[BitConverter]::ToString($h) -replace '-',''`, path), false)
}

func certutilDecodeCmd(from, to string) string {
	return fmt.Sprintf(`certutil -f -decode "%s" "%s"`, from, to)
}

func certutilHashCmd(path string) string { return fmt.Sprintf(`certutil -hashfile "%s"`, path) }

// datafileCmd reads a file's size and version resource through WMI.
func datafileCmd(path string) string {
	return fmt.Sprintf(`wmic datafile where "Name='%s'" get FileSize,Version /format:list < NUL`, strings.ReplaceAll(path, `\`, `\\`))
}

// pullScript is the VBScript a host without PowerShell downloads with: ranged chunks fetched
// with MSXML2.ServerXMLHTTP, each saved by ADODB.Stream as BASE.pNNNNN (a chunk already there in
// full is not fetched again), concatenated afterwards with copy /b. ADODB.Stream cannot append
// to a file without loading it whole, which a 390 MB installer would not survive under the
// shell's MaxMemoryPerShellMB of 150 (docs/facts.md §6.2); chunk files keep memory at one chunk.
// Arguments: url, base path, total size, chunk size. Exit 0 done, 2 an HTTP status other than
// 200/206, 1 another error.
const pullScript = `' iisremedy pull: ranged download with MSXML2.ServerXMLHTTP, chunks saved by ADODB.Stream
Option Explicit
Dim url, base, size, chunk, fso, i, first, last, path, http, st
url = WScript.Arguments(0)
base = WScript.Arguments(1)
size = CDbl(WScript.Arguments(2))
chunk = CDbl(WScript.Arguments(3))
Set fso = CreateObject("Scripting.FileSystemObject")
i = 0
first = 0
Do While first < size
  i = i + 1
  last = first + chunk - 1
  If last > size - 1 Then last = size - 1
  path = base & ".p" & Right("0000" & i, 5)
  If Not fso.FileExists(path) Then
    Fetch
  ElseIf fso.GetFile(path).Size <> last - first + 1 Then
    Fetch
  End If
  first = last + 1
Loop
WScript.Quit 0

Sub Fetch
  Set http = CreateObject("MSXML2.ServerXMLHTTP")
  http.open "GET", url, False
  http.setRequestHeader "Range", "bytes=" & first & "-" & last
  http.send
  If http.status <> 206 And http.status <> 200 Then WScript.Quit 2
  Set st = CreateObject("ADODB.Stream")
  st.Type = 1
  st.Open
  st.Write http.responseBody
  st.SaveToFile path, 2
  st.Close
End Sub
`

func cscriptCmd(script string, args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = `"` + a + `"`
	}
	return fmt.Sprintf(`cscript //nologo //B "%s" %s`, script, strings.Join(q, " "))
}

// hashLineRe is a line that is only a hash: 64 (SHA-256) or 40 (SHA-1) hex digits, possibly in
// spaced pairs as certutil prints them.
var hashLineRe = regexp.MustCompile(`(?i)^(?:[0-9a-f]{2} ?){20}(?:(?:[0-9a-f]{2} ?){12})?$`)

// parseHash returns the first line of out that is a SHA-256 or SHA-1, lower case without
// spaces; never a hash inside a line, such as the file name of certutil's "SHA1 hash of file
// W\<sha256>.part:" header.
func parseHash(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if hashLineRe.MatchString(line) {
			return strings.ToLower(strings.ReplaceAll(line, " ", ""))
		}
	}
	return ""
}

// wmicValues reads wmic /format:list output: the first instance's Name=Value pairs.
func wmicValues(out []byte) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		name, val, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if ok && name != "" {
			if _, seen := v[name]; !seen {
				v[name] = strings.TrimSpace(val)
			}
		}
	}
	return v
}

// Locale date orders of HKCU\Control Panel\International iDate (docs/facts.md §5.5).
const (
	dateMDY = 0
	dateDMY = 1
	dateYMD = 2
)

// intlCmd reads the date order and separator schtasks /sd parses in: the calling user's
// (schtasks runs as the WinRM user) — which hive 2003's schtasks reads is inferred.
const intlCmd = `reg query "HKCU\Control Panel\International" /v iDate & reg query "HKCU\Control Panel\International" /v sDate`

// parseIntl reads intlCmd's output; defaults are the English order and separator.
func parseIntl(out []byte) (order int, sep string) {
	order, sep = dateMDY, "/"
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[1], "REG_") {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "idate":
			if n, err := strconv.Atoi(f[2]); err == nil && n >= 0 && n <= 2 {
				order = n
			}
		case "sdate":
			if len(f[2]) == 1 && strings.ContainsAny(f[2], "/.-") {
				sep = f[2]
			}
		}
	}
	return order, sep
}

// schtasksDate writes t as schtasks /sd wants it in the host's order.
func schtasksDate(t time.Time, order int, sep string) string {
	d, m, y := fmt.Sprintf("%02d", t.Day()), fmt.Sprintf("%02d", int(t.Month())), fmt.Sprintf("%04d", t.Year())
	switch order {
	case dateDMY:
		return d + sep + m + sep + y
	case dateYMD:
		return y + sep + m + sep + d
	}
	return m + sep + d + sep + y
}

func taskName(name string) string { return "iisremedy-" + name }

func taskDeleteCmd(name string) string {
	return fmt.Sprintf(`schtasks /delete /tn "%s" /f`, taskName(name))
}

// taskCreateCmd schedules batch to run once as SYSTEM. A task of the same name is deleted first,
// so that the command is safe to repeat (what /create answers for a duplicate name is
// unconfirmed). Server 2003's schtasks has no switch to create a task without a schedule, and
// documents /st as HH:MM:SS (docs/facts.md §5.5).
func taskCreateCmd(name, batch string, at time.Time, order int, sep string) string {
	return fmt.Sprintf(`%s >nul 2>&1 & schtasks /create /tn "%s" /tr "%s" /sc once /st %s /sd %s /ru SYSTEM`,
		taskDeleteCmd(name), taskName(name), batch, at.Format("15:04:05"), schtasksDate(at, order, sep))
}

func taskRunCmd(name string) string { return fmt.Sprintf(`schtasks /run /tn "%s"`, taskName(name)) }

const taskQueryCmd = `schtasks /query /fo csv /nh`

// taskRunning reads schtasks /query /fo csv /nh: whether the task's status is Running.
func taskRunning(out []byte, name string) bool {
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Split(strings.TrimSpace(line), `","`)
		if len(fields) >= 3 && strings.EqualFold(strings.Trim(fields[0], `"\`), taskName(name)) {
			return strings.EqualFold(strings.Trim(fields[len(fields)-1], `"`), "Running")
		}
	}
	return false
}

// taskBatch is the batch file a task runs: it marks its start with the run id, runs body, and
// records the exit code of body's last command. The redirections come first: in
// "echo exit=0>>file" cmd would take the 0 for the handle to redirect and never write it.
// Lines end CRLF.
func taskBatch(marker, runID string, body []string) string {
	lines := []string{"@echo off", fmt.Sprintf(`>"%s" echo run=%s started`, marker, runID)}
	lines = append(lines, body...)
	lines = append(lines, fmt.Sprintf(`>>"%s" echo exit=%%ERRORLEVEL%%`, marker))
	return strings.Join(lines, "\r\n") + "\r\n"
}

// marker is what a task's marker file says.
type marker struct {
	RunID   string
	Started bool
	Done    bool
	Exit    int
}

func parseMarker(out []byte) marker {
	var m marker
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if id, ok := strings.CutPrefix(line, "run="); ok {
			m.RunID, _, _ = strings.Cut(id, " ")
			m.Started = true
		}
		if code, ok := strings.CutPrefix(line, "exit="); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(code)); err == nil {
				m.Done, m.Exit = true, n
			}
		}
	}
	return m
}

func typeCmd(path string) string { return fmt.Sprintf(`type "%s"`, path) }

const pendingRenameCmd = `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations`

// shutdownCmd restarts the host after delay with a planned reason and a comment naming the run
// (docs/facts.md §5.6: /t 0-600, /c at most 127 characters).
func shutdownCmd(delay time.Duration, reason, runID string) string {
	c := "iisremedy " + runID + ": Service Pack 2 re-applied"
	if len(c) > 127 {
		c = c[:127]
	}
	return fmt.Sprintf(`shutdown /r /t %d /d %s /c "%s"`, int(delay/time.Second), reason, c)
}

const w3svcQueryCmd = `sc query w3svc`

const w3svcStartCmd = `net start w3svc`

const poolsCmd = `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolAutoStart,AppPoolState,Name /format:list < NUL`

func poolStartCmd(name string) string {
	return fmt.Sprintf(`wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool where "Name='W3SVC/AppPools/%s'" call Start < NUL`, name)
}

const sitesCmd = `wmic /namespace:\\root\MicrosoftIISv2 path IIsWebServerSetting get Name,ServerBindings,ServerComment,ServerAutoStart /format:list < NUL`

const eventsCmd = `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and (EventCode=1002 or EventCode=1009)" get EventCode,InsertionStrings,TimeGenerated /format:list < NUL`

// warmupScript requests http://localhost:PORT/ with a Host header and prints the status, for
// --warmup local. Arguments: port, host header ("" = none).
const warmupScript = `' iisremedy warm-up: one request to a site on this host, printing the HTTP status
Option Explicit
Dim x
Set x = CreateObject("MSXML2.ServerXMLHTTP")
x.open "GET", "http://localhost:" & WScript.Arguments(0) & "/", False
If WScript.Arguments(1) <> "" Then x.setRequestHeader "Host", WScript.Arguments(1)
x.send
WScript.Echo x.status
`
