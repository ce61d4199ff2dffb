package win2003

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// PowerShell 2.0 (docs/facts.md §5.11). The host recognises the scripts iisremedy runs with
// -Command by their content:
//   - the staging decoder: base64 lines read from stdin with [Console]::In.ReadLine, each
//     decoded with [Convert]::FromBase64String and written to a file opened with
//     [IO.File]::Open(path,'OpenOrCreate','Write') after $f.SetLength(offset). Lines are applied
//     as they arrive: a command cut short leaves every whole line it received written.
//   - the staging download: [Net.WebRequest]::Create(url), a Range from the file's length when
//     it is not empty, the response stream appended to the file as it arrives;
//   - a file's SHA-256 ([Security.Cryptography.SHA256] over [IO.File]::OpenRead(path)), printed
//     in upper-case hex without separators;
//   - a warm-up request to a site of the host (see warmUp).
// A .NET exception in them is printed the way PowerShell 2.0 prints an error record (the
// message, "At line:1 char:N", the script with " <<<< " after the failing method, the category
// lines) and the exit code is 1 [I].
//
// powershell.exe reads its stdin when it is redirected, and exits only when it ends: started in
// a WinRM shell it waits until the client closes stdin, unless stdin comes from NUL or
// -InputFormat None is given (docs/facts.md §5.11 [I]).

var (
	rePSOpen      = regexp.MustCompile(`(?i)\[IO\.File\]::Open\('([^']+)'`)
	rePSSetLength = regexp.MustCompile(`(?i)\.SetLength\((\d+)\)`)
	rePSCreate    = regexp.MustCompile(`(?i)\[Net\.WebRequest\]::Create\('([^']+)'\)`)
	rePSOpenRead  = regexp.MustCompile(`(?i)\[IO\.File\]::OpenRead\('([^']+)'\)`)
	rePSPath      = regexp.MustCompile(`(?i)[a-z]:\\[^"'\r\n]+`)
)

func progPowershell(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	var file, command string
	var fileArgs []string
	bypass, inputNone := false, false
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(args[i])
		switch {
		case a == "-command" || a == "-c":
			command = strings.Join(args[i+1:], " ")
			i = len(args)
		case a == "-file":
			if i+1 < len(args) {
				file = args[i+1]
				fileArgs = args[i+2:]
			}
			i = len(args)
		case a == "-executionpolicy":
			if i+1 < len(args) {
				i++
				bypass = strings.EqualFold(args[i], "bypass") || strings.EqualFold(args[i], "unrestricted")
			}
		case a == "-inputformat" || a == "-outputformat":
			if i+1 < len(args) {
				i++
				inputNone = inputNone || a == "-inputformat" && strings.EqualFold(args[i], "none")
			}
		case a == "-encodedcommand":
			p.write(errw, "The lab host does not decode -EncodedCommand.\r\n")
			return 1
		case strings.HasPrefix(a, "-"):
		default:
			command = strings.Join(args[i:], " ")
			i = len(args)
		}
	}
	code := p.powershellRun(file, fileArgs, command, bypass, out, errw)
	if !inputNone {
		p.drainStdin()
	}
	return code
}

// drainStdin reads stdin to its end (or until the process is killed): what powershell.exe and
// wmic do with a redirected stdin before they exit.
func (p *proc) drainStdin() {
	if p.stdin != nil {
		_, _ = io.Copy(io.Discard, p.stdin)
	}
}

func (p *proc) powershellRun(file string, fileArgs []string, command string, bypass bool, out, errw *stream) int {
	if file != "" {
		path := p.abs(file)
		data, ok := p.readFileText(path)
		if !ok {
			p.write(errw, "The argument '"+file+"' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n")
			return 1
		}
		if !bypass {
			// PowerShell 2.0's default execution policy is Restricted.
			p.write(errw, "File "+path+" cannot be loaded because the execution of scripts is disabled on this system. Please see \"get-help about_signing\" for more details.\r\n")
			return 1
		}
		if code, ok := p.psAction(decodeCP(p.loc().ansi, data), fileArgs, out, errw); ok {
			return code
		}
		p.write(errw, "The lab host cannot run this script.\r\n")
		return 1
	}
	if command == "" {
		p.write(out, "Windows PowerShell\r\nCopyright (C) 2009 Microsoft Corporation. All rights reserved.\r\n\r\n")
		return 0
	}
	if code, ok := p.psAction(command, nil, out, errw); ok {
		return code
	}
	word := strings.Fields(strings.Trim(command, `"& {}`))
	name := command
	if len(word) > 0 {
		name = word[0]
	}
	p.write(errw, "The term '"+name+"' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\r\n")
	return 1
}

// psAction does what a recognised PowerShell script would do; ok is false for an unknown one.
func (p *proc) psAction(script string, args []string, out, errw *stream) (code int, ok bool) {
	lower := strings.ToLower(script)
	open := rePSOpen.FindStringSubmatch(script)
	switch {
	case open != nil && strings.Contains(lower, "frombase64string") && strings.Contains(lower, "readline"):
		var offset int64
		if m := rePSSetLength.FindStringSubmatch(script); m != nil {
			fmt.Sscan(m[1], &offset)
		}
		return p.psDecode(script, open[1], offset, errw), true
	case open != nil && rePSCreate.MatchString(script) && strings.Contains(lower, "getresponse"):
		return p.psPull(script, open[1], rePSCreate.FindStringSubmatch(script)[1], errw), true
	case strings.Contains(lower, "sha256"):
		target := ""
		if m := rePSOpenRead.FindStringSubmatch(script); m != nil {
			target = m[1]
		} else if paths := rePSPath.FindAllString(script+"\n"+strings.Join(args, "\n"), -1); len(paths) > 0 {
			target = strings.TrimSpace(paths[len(paths)-1])
		}
		if target != "" {
			return p.psHash(script, target, out, errw), true
		}
	}
	return p.warmUp(script, args, out, errw)
}

// psException prints a .NET method's exception as PowerShell 2.0 shows it.
func (p *proc) psException(script, method string, nargs int, msg string, errw *stream) int {
	at := strings.Index(script, method)
	if at < 0 {
		at = 0
	}
	line := script[:at+len(method)] + " <<<< " + script[at+len(method):]
	p.write(errw, fmt.Sprintf("Exception calling %q with %q argument(s): %q\r\nAt line:1 char:%d\r\n+ %s\r\n"+
		"    + CategoryInfo          : NotSpecified: (:) [], MethodInvocationException\r\n"+
		"    + FullyQualifiedErrorId : DotNetMethodException\r\n \r\n", method, fmt.Sprint(nargs), msg, at+1, line))
	return 1
}

// psOpen is [IO.File]::Open(path, 'OpenOrCreate', 'Write'): the file, created when missing.
func (p *proc) psOpen(script, path string, errw *stream) (*file, bool) {
	h := p.h
	path = p.abs(path)
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.fs.file(path)
	switch {
	case f != nil:
		f.written()
	case !h.fs.isDir(path[:strings.LastIndex(path, `\`)]):
		p.psException(script, "Open", 3, "Could not find a part of the path '"+path+"'.", errw)
		return nil, false
	default:
		f = h.fs.newFile(path, h.clock.Now())
		h.fs.put(f)
	}
	p.wroteLocked()
	return f, true
}

// psDecode is the staging decoder: SetLength(offset), then each base64 line of stdin decoded and
// appended as it arrives.
func (p *proc) psDecode(script, path string, offset int64, errw *stream) int {
	h := p.h
	f, ok := p.psOpen(script, path, errw)
	if !ok {
		return 1
	}
	h.mu.Lock()
	err := h.fs.truncate(f, offset)
	h.mu.Unlock()
	if err != nil {
		return p.psException(script, "SetLength", 1, textDiskFull, errw)
	}
	if p.stdin == nil {
		return 0
	}
	r := bufio.NewReaderSize(p.stdin, 128<<10)
	for {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && p.ctx.Err() != nil {
			return 1 // killed: a line cut short is never decoded
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			raw, err := decodeDotNetBase64(line)
			if err != "" {
				return p.psException(script, "FromBase64String", 1, err, errw)
			}
			h.mu.Lock()
			_, werr := h.fs.write(f, raw)
			f.mtime = h.clock.Now()
			h.mu.Unlock()
			if werr != nil {
				return p.psException(script, "Write", 3, textDiskFull, errw)
			}
		}
		if rerr != nil {
			return 0 // stdin ended: the last line was read without its line end
		}
	}
}

// decodeDotNetBase64 decodes like .NET 2.0's Convert.FromBase64String: white space is ignored,
// padding is required; the error is the exception's message.
func decodeDotNetBase64(line []byte) ([]byte, string) {
	if bytes.ContainsAny(line, " \t") {
		line = bytes.ReplaceAll(bytes.ReplaceAll(line, []byte(" "), nil), []byte("\t"), nil)
	}
	if len(line)%4 != 0 {
		return nil, "Invalid length for a Base-64 char array."
	}
	raw, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil {
		return nil, "Invalid character in a Base-64 string."
	}
	return raw, ""
}

// psPull is the staging download: a GET of url (from the file's length on, with a Range), the
// body appended as it arrives. The exception texts are .NET 2.0's WebException messages.
func (p *proc) psPull(script, path, url string, errw *stream) int {
	h := p.h
	f, ok := p.psOpen(script, path, errw)
	if !ok {
		return 1
	}
	h.mu.Lock()
	offset := f.size
	h.mu.Unlock()
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, url, nil)
	if err != nil {
		return p.psException(script, "Create", 1, "Invalid URI: The format of the URI could not be determined.", errw)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := h.web.Do(req)
	if err != nil {
		return p.psException(script, "GetResponse", 0, "Unable to connect to the remote server", errw)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return p.psException(script, "GetResponse", 0, fmt.Sprintf("The remote server returned an error: (%d) %s.", resp.StatusCode, http.StatusText(resp.StatusCode)), errw)
	}
	full := false
	if p.receiveInto(f, resp.Body, func() { full = true }) != 0 {
		if full {
			return p.psException(script, "Write", 3, textDiskFull, errw)
		}
		return p.psException(script, "Read", 3, "Unable to read data from the transport connection: An existing connection was forcibly closed by the remote host.", errw)
	}
	return 0
}

// psHash prints a file's SHA-256 in upper-case hex.
func (p *proc) psHash(script, target string, out, errw *stream) int {
	h := p.h
	path := p.abs(target)
	h.mu.Lock()
	f := h.fs.file(path)
	var sum string
	if f != nil {
		sum = f.sha256Hex()
	}
	h.mu.Unlock()
	if f == nil {
		return p.psException(script, "OpenRead", 1, "Could not find file '"+path+"'.", errw)
	}
	p.write(out, strings.ToUpper(sum)+"\r\n")
	return 0
}
