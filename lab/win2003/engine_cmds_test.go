package win2003_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// The command lines remediate/hostcmd.go sends (the contract in the lab's brief), spelled out
// here so that the lab is held to exactly what the engine runs.

func listCmd(dir string) string { return fmt.Sprintf(`for %%F in ("%s\*") do @echo %%~zF %%~nxF`, dir) }

func psDecodeCmd(part string, offset int64) string {
	return `powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "` + fmt.Sprintf(`$ErrorActionPreference='Stop';$f=[IO.File]::Open('%s','OpenOrCreate','Write');$f.SetLength(%d);[void]$f.Seek(0,'End');$r=[Console]::In;while(($l=$r.ReadLine()) -ne $null){if($l.Length -gt 0){$b=[Convert]::FromBase64String($l);$f.Write($b,0,$b.Length)}};$f.Close()`, part, offset) + `"`
}

func psPullCmd(url, part string) string {
	return `powershell -NoProfile -NonInteractive -InputFormat None -ExecutionPolicy Bypass -Command "` + fmt.Sprintf(`$ErrorActionPreference='Stop';$f=[IO.File]::Open('%s','OpenOrCreate','Write');$o=$f.Length;[void]$f.Seek($o,'Begin');$q=[Net.WebRequest]::Create('%s');if($o -gt 0){$q.AddRange([int]$o)};$s=$q.GetResponse().GetResponseStream();$b=New-Object byte[] 65536;while(($n=$s.Read($b,0,$b.Length)) -gt 0){$f.Write($b,0,$n)};$s.Close();$f.Close()`, part, url) + `" < NUL`
}

func psHashCmd(path string) string {
	return `powershell -NoProfile -NonInteractive -InputFormat None -ExecutionPolicy Bypass -Command "` + fmt.Sprintf(`$s=[IO.File]::OpenRead('%s');$h=[Security.Cryptography.SHA256]::Create().ComputeHash($s);$s.Close();[BitConverter]::ToString($h) -replace '-',''`, path) + `" < NUL`
}

func datafileCmd(path string) string {
	return fmt.Sprintf(`wmic datafile where "Name='%s'" get FileSize,Version /format:list < NUL`, strings.ReplaceAll(path, `\`, `\\`))
}

func cscriptPullCmd(script, url, base string, size, chunk int64) string {
	return fmt.Sprintf(`cscript //nologo //B "%s" "%s" "%s" "%d" "%d"`, script, url, base, size, chunk)
}

func taskCreateCmd(name, batch, st, sd string) string {
	return fmt.Sprintf(`schtasks /create /tn "iisremedy-%s" /tr "%s" /sc once /st %s /sd %s /ru SYSTEM`, name, batch, st, sd)
}

// taskBatch is the batch file a task runs (remediate's taskBatch).
func taskBatch(marker, runID string, body ...string) string {
	lines := []string{"@echo off", fmt.Sprintf(`echo run=%s started>"%s"`, runID, marker)}
	lines = append(lines, body...)
	lines = append(lines, fmt.Sprintf(`echo exit=%%ERRORLEVEL%%>>"%s"`, marker))
	return strings.Join(lines, "\r\n") + "\r\n"
}

// pullScript is remediate's pull.vbs.
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

// warmupScript is remediate's warmup.vbs.
const warmupScript = `' iisremedy warm-up: one request to a site on this host, printing the HTTP status
Option Explicit
Dim x
Set x = CreateObject("MSXML2.ServerXMLHTTP")
x.open "GET", "http://localhost:" & WScript.Arguments(0) & "/", False
If WScript.Arguments(1) <> "" Then x.setRequestHeader "Host", WScript.Arguments(1)
x.send
WScript.Echo x.status
`

// pushLines is the engine's push stream: base64 lines of raw bytes each, CRLF-terminated.
func pushLines(r io.Reader, raw int) []byte {
	var sb strings.Builder
	buf := make([]byte, raw)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			sb.WriteString(base64.StdEncoding.EncodeToString(buf[:n]) + "\r\n")
		}
		if err != nil {
			return []byte(sb.String())
		}
	}
}

// crlf turns a text into CRLF lines, as the engine sends scripts and batch files.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}
