package win2003

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Scripts: the host cannot run VBScript or PowerShell; it recognises the scripts iisremedy writes
// by their content and does what they would do. Anything else fails as Windows would.
//
// Recognised VBScript (cscript, the script's text and its arguments):
//   - the chunked download of a host without PowerShell (remediate's pull.vbs): ranged GETs with
//     MSXML2.ServerXMLHTTP, each chunk saved by ADODB.Stream.SaveToFile (pullChunks);
//   - a warm-up request to a site of the host itself: MSXML2.ServerXMLHTTP or
//     WinHttp.WinHttpRequest with an http://localhost or http://127.0.0.1 URL (the port and a
//     Host header may come from the arguments, as remediate's warmup.vbs takes them). It prints
//     the HTTP status code on one line and exits 0, or exits 1 when the connection is refused.
// PowerShell's scripts are in powershell.go.

var (
	reURL       = regexp.MustCompile(`(?i)https?://(localhost|127\.0\.0\.1)(:[0-9]+)?[^\s"')]*`)
	reWarmUp    = regexp.MustCompile(`(?i)(msxml2\.serverxmlhttp|msxml2\.xmlhttp|winhttp\.winhttprequest|net\.webclient|net\.webrequest|net\.httpwebrequest)`)
	rePortArg   = regexp.MustCompile(`(?i)https?://(localhost|127\.0\.0\.1):"\s*&\s*WScript\.Arguments\((\d)\)`)
	reHostArg   = regexp.MustCompile(`(?i)setRequestHeader\s+"Host"\s*,\s*WScript\.Arguments\((\d)\)`)
	reHostValue = regexp.MustCompile(`(?i)setRequestHeader\s+"Host"\s*,\s*"([^"]*)"`)
)

// vbsAction does what a recognised VBScript would do; ok is false for an unknown script.
func (p *proc) vbsAction(text string, args []string, out, errw *stream) (code int, ok bool) {
	lower := strings.ToLower(text)
	if strings.Contains(lower, "msxml2.serverxmlhttp") && strings.Contains(lower, "adodb.stream") && strings.Contains(lower, "savetofile") {
		return p.pullChunks(args), true
	}
	return p.warmUp(text, args, out, errw)
}

// warmUp answers a script that requests a site of the host itself.
func (p *proc) warmUp(text string, args []string, out, errw *stream) (code int, ok bool) {
	if !reWarmUp.MatchString(text) {
		return 0, false
	}
	port, host := 0, ""
	arg := func(s string) string {
		i, _ := strconv.Atoi(s)
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	if m := rePortArg.FindStringSubmatch(text); m != nil {
		port, _ = strconv.Atoi(arg(m[2]))
	} else if m := reURL.FindString(text + "\n" + strings.Join(args, "\n")); m != "" {
		port = 80
		if u, err := url.Parse(m); err == nil && u.Port() != "" {
			port, _ = strconv.Atoi(u.Port())
		}
	} else {
		return 0, false
	}
	if m := reHostArg.FindStringSubmatch(text); m != nil {
		host = arg(m[1])
	} else if m := reHostValue.FindStringSubmatch(text); m != nil {
		host = m[1]
	}
	status := p.h.RequestHost(port, host)
	if status == 0 {
		// the lab's text for a refused connection; the real script's error text is
		// unconfirmed ([NC]), only the exit code matters to iisremedy
		p.write(errw, "The server returned an invalid or unrecognized response\r\n")
		return 1, true
	}
	p.write(out, strconv.Itoa(status)+"\r\n")
	return 0, true
}

// pullChunks is remediate's pull.vbs: arguments url, base, size, chunk. It fetches bytes
// first-last of url for each chunk not already saved in full as base.pNNNNN (NNNNN as VBScript's
// Right("0000" & i, 5) writes it), expecting 206 or 200. Exit codes as the script's: 0 done,
// 2 an HTTP status other than 200/206 (WScript.Quit 2), 1 a runtime error (no connection, a
// full disk, bad arguments): in //B batch mode its text is not shown [I].
func (p *proc) pullChunks(args []string) int {
	if len(args) < 4 {
		return 1 // "Subscript out of range" on WScript.Arguments
	}
	size, err1 := strconv.ParseFloat(args[2], 64)
	chunk, err2 := strconv.ParseFloat(args[3], 64)
	if err1 != nil || err2 != nil || chunk <= 0 {
		return 1
	}
	base := p.abs(args[1])
	for i, first := 1, int64(0); float64(first) < size; i++ {
		last := first + int64(chunk) - 1
		if float64(last) > size-1 {
			last = int64(size) - 1
		}
		name := "0000" + strconv.Itoa(i)
		path := base + ".p" + name[len(name)-5:]
		p.h.mu.Lock()
		f := p.h.fs.file(path)
		have := f != nil && f.size == last-first+1
		p.h.mu.Unlock()
		if !have {
			if code := p.fetchChunk(args[0], path, first, last); code != 0 {
				return code
			}
		}
		first = last + 1
	}
	return 0
}

// fetchChunk is the script's Fetch: one ranged GET, the body held in memory by
// ServerXMLHTTP.responseBody and ADODB.Stream (twice the chunk, against the shell's memory
// quota), saved with adSaveCreateOverWrite.
func (p *proc) fetchChunk(rawURL, path string, first, last int64) int {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 1
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", first, last))
	resp, err := p.h.web.Do(req)
	if err != nil {
		return 1 // msxml3.dll: the server could not be reached
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
		return 2
	}
	release, err := p.job.Commit(int(2 * (last - first + 1) >> 20))
	if err != nil {
		return 1 // "Not enough storage is available to complete this operation."
	}
	defer release()
	h := p.h
	h.mu.Lock()
	nf := h.fs.newFile(path, h.clock.Now())
	if resp.StatusCode == http.StatusPartialContent {
		nf.c.hint = first // the chunk is that part of whatever the server sends
	}
	h.fs.remove(path)
	h.fs.put(nf)
	p.wroteLocked()
	h.mu.Unlock()
	full := false
	code := p.receiveInto(nf, resp.Body, func() { full = true })
	if code != 0 && !full {
		// the body never arrived whole, so SaveToFile never ran
		h.mu.Lock()
		if h.fs.file(path) == nf {
			h.fs.remove(path)
		}
		h.mu.Unlock()
	}
	return code
}

// receiveInto writes a response body into f as it arrives; diskFull (nil: none) is called when
// the disk fills. It returns 0, or 1 when the transfer or the disk failed.
func (p *proc) receiveInto(f *file, body io.Reader, diskFull func()) int {
	h := p.h
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			h.mu.Lock()
			_, werr := h.fs.write(f, buf[:n])
			f.mtime = h.clock.Now()
			h.mu.Unlock()
			if werr != nil {
				if diskFull != nil {
					diskFull()
				}
				return 1
			}
		}
		if rerr == io.EOF {
			return 0
		}
		if rerr != nil {
			return 1
		}
	}
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
	data, ok := p.readFileText(path)
	if !ok {
		p.write(errw, "Input Error: Can not find script file \""+path+"\".\r\n")
		return 1
	}
	if code, ok := p.vbsAction(decodeCP(p.loc().ansi, data), rest, out, errw); ok {
		return code
	}
	// WSH's "file(line, column) source: description" error form [I]
	p.write(errw, path+"(1, 1) Microsoft VBScript runtime error: ActiveX component can't create object\r\n\r\n")
	return 1
}
