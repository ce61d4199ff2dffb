package win2003

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Scripts: the host cannot run VBScript or PowerShell; it recognises the scripts iisremedy writes
// by their content and does what they would do. Anything else fails as Windows would.
//
// Recognised (in the script's text, or the -Command text, plus its arguments):
//   - a warm-up request: an http://localhost or http://127.0.0.1 URL together with
//     MSXML2.ServerXMLHTTP, MSXML2.XMLHTTP, WinHttp.WinHttpRequest, Net.WebClient or
//     Net.WebRequest. It prints the HTTP status code (e.g. "200", "503") on one line and exits 0,
//     or exits 1 when the connection is refused.
//   - a file hash (PowerShell): SHA256 together with a file path argument or a quoted path; prints
//     the SHA-256 in upper-case hex without separators and exits 0 (1 when the file is missing).
//   - a base64 decode (PowerShell): FromBase64String with two quoted paths (source, destination);
//     exits 0, or 1 on bad input.

var (
	reURL    = regexp.MustCompile(`(?i)https?://(localhost|127\.0\.0\.1)(:[0-9]+)?[^\s"')]*`)
	rePath   = regexp.MustCompile(`(?i)[a-z]:\\[^"'\r\n]+`)
	reWarmUp = regexp.MustCompile(`(?i)(msxml2\.serverxmlhttp|msxml2\.xmlhttp|winhttp\.winhttprequest|net\.webclient|net\.webrequest|net\.httpwebrequest)`)
)

// scriptAction does what a recognised script would do; ok is false for an unknown script.
func (p *proc) scriptAction(text string, args []string, out, errw *stream) (code int, ok bool) {
	all := text + "\n" + strings.Join(args, "\n")
	lower := strings.ToLower(all)
	if reWarmUp.MatchString(all) {
		if m := reURL.FindString(all); m != "" {
			port := 80
			if u, err := url.Parse(m); err == nil && u.Port() != "" {
				port, _ = strconv.Atoi(u.Port())
			}
			status := p.h.Request(port)
			if status == 0 {
				// the lab's text for a refused connection; the real script's error text is
				// unconfirmed ([NC]), only the exit code matters to iisremedy
				p.write(errw, "The server returned an invalid or unrecognized response\r\n")
				return 1, true
			}
			p.write(out, strconv.Itoa(status)+"\r\n")
			return 0, true
		}
	}
	if strings.Contains(lower, "frombase64string") {
		paths := rePath.FindAllString(all, -1)
		if len(paths) >= 2 {
			src, dst := strings.TrimSpace(paths[0]), strings.TrimSpace(paths[1])
			h := p.h
			h.mu.Lock()
			defer h.mu.Unlock()
			f := h.fs.file(src)
			if f == nil {
				return 1, true
			}
			nf, ok := f.decodedFile(dst, h.clock.Now())
			if !ok {
				return 1, true
			}
			h.fs.put(nf)
			return 0, true
		}
	}
	if strings.Contains(lower, "sha256") {
		paths := rePath.FindAllString(all, -1)
		if len(paths) > 0 {
			// the last path is the file hashed (a script's own path comes first)
			target := strings.TrimSpace(paths[len(paths)-1])
			h := p.h
			h.mu.Lock()
			f := h.fs.file(target)
			var sum string
			if f != nil {
				sum = f.sha256Hex()
			}
			h.mu.Unlock()
			if f == nil {
				p.write(errw, "Exception calling \"OpenRead\" with \"1\" argument(s): \"Could not find file '"+target+"'.\"\r\n")
				return 1, true
			}
			p.write(out, strings.ToUpper(sum)+"\r\n")
			return 0, true
		}
	}
	return 0, false
}

func progCscript(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	nologo := false
	var script string
	var rest []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "//"):
			if strings.EqualFold(a, "//nologo") {
				nologo = true
			}
		case script == "":
			script = a
		default:
			rest = append(rest, a)
		}
	}
	if !nologo {
		p.write(out, "Microsoft (R) Windows Script Host Version 5.6\r\nCopyright (C) Microsoft Corporation 1996-2001. All rights reserved.\r\n\r\n")
	}
	if script == "" {
		p.write(out, "Usage: CScript scriptname.extension [option...] [arguments...]\r\n")
		return 0
	}
	path := p.abs(script)
	if p.h.spec.IIS && strings.EqualFold(path, p.h.spec.SystemRoot+`\system32\iisapp.vbs`) {
		return p.iisapp(rest, out)
	}
	p.h.mu.Lock()
	f := p.h.fs.file(path)
	var data []byte
	if f != nil {
		data = append([]byte(nil), f.data...)
	}
	p.h.mu.Unlock()
	if f == nil {
		p.write(errw, "Input Error: Can not find script file \""+path+"\".\r\n")
		return 1
	}
	if code, ok := p.scriptAction(decodeCP(p.loc().ansi, data), rest, out, errw); ok {
		return code
	}
	// WSH's "file(line, column) source: description" error form [I]
	p.write(errw, path+"(1, 1) Microsoft VBScript runtime error: ActiveX component can't create object\r\n\r\n")
	return 1
}

func progPowershell(p *proc, _ string, args []string, raw string, out, errw *stream) int {
	var file, command string
	var fileArgs []string
	bypass := false
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
		case a == "-encodedcommand":
			p.write(errw, "The lab host does not decode -EncodedCommand.\r\n")
			return 1
		case strings.HasPrefix(a, "-"):
		default:
			command = strings.Join(args[i:], " ")
			i = len(args)
		}
	}
	if file != "" {
		path := p.abs(file)
		p.h.mu.Lock()
		f := p.h.fs.file(path)
		var data []byte
		if f != nil {
			data = append([]byte(nil), f.data...)
		}
		p.h.mu.Unlock()
		if f == nil {
			p.write(errw, "The argument '"+file+"' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n")
			return 1
		}
		if !bypass {
			// PowerShell 2.0's default execution policy is Restricted.
			p.write(errw, "File "+path+" cannot be loaded because the execution of scripts is disabled on this system. Please see \"get-help about_signing\" for more details.\r\n")
			return 1
		}
		if code, ok := p.scriptAction(decodeCP(p.loc().ansi, data), fileArgs, out, errw); ok {
			return code
		}
		p.write(errw, "The lab host cannot run this script.\r\n")
		return 1
	}
	if command == "" {
		p.write(out, "Windows PowerShell\r\nCopyright (C) 2009 Microsoft Corporation. All rights reserved.\r\n\r\n")
		return 0
	}
	if code, ok := p.scriptAction(command, nil, out, errw); ok {
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
