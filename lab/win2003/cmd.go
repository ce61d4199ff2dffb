package win2003

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// This file is the small cmd.exe: parsing (quotes, ^, & && || |, parentheses, redirection),
// %VAR% and !VAR! expansion with :~n,m and :a=b, batch files (@echo off, setlocal, goto, call,
// exit /b) and the built-in commands. Programs are in programs.go.

type streamKind int

const (
	streamPipe streamKind = iota
	streamFile
	streamNul
)

// stream is a process's stdout or stderr: a WinRM pipe, a host file or nul.
type stream struct {
	w    io.Writer
	kind streamKind
	h    *Host
	f    *file
	err  error // a file's first write error
}

// Write writes to the pipe, the file or nul. A file write that does not fit the disk writes
// what fits and fails with errDiskFull, as do all later writes.
func (s *stream) Write(p []byte) (int, error) {
	switch s.kind {
	case streamNul:
		return len(p), nil
	case streamFile:
		s.h.mu.Lock()
		defer s.h.mu.Unlock()
		if s.err != nil {
			return 0, s.err
		}
		n, err := s.h.fs.write(s.f, p)
		s.f.mtime = s.h.clock.Now()
		s.err = err
		return n, err
	}
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}

// proc is one cmd.exe process (or a program run by the scheduler).
type proc struct {
	h          *Host
	user       string         // who runs it: the WinRM user, or SYSTEM for a task
	rec        *CommandRecord // the command it runs for (nil: none logged)
	job        *wsman.Job     // the WinRM shell's job (nil: outside any shell)
	ctx        context.Context
	env        *envBlock
	envStack   []*envBlock
	delayed    bool
	delayStack []bool
	echo       bool
	stdin      io.Reader
	errorlevel int
	cwd        string
	system     bool
	batch      *batchCtx
	exiting    bool // exit (without /b) was run: unwind everything
	exitCode   int
}

type batchCtx struct {
	lines []string
	pc    int
	args  []string // %0 (the batch file's path) to %9
	done  bool
}

type envBlock struct {
	vars map[string][2]string // upper name -> {name, value}
}

func (e *envBlock) get(name string) (string, bool) {
	v, ok := e.vars[strings.ToUpper(name)]
	return v[1], ok
}

func (e *envBlock) set(name, value string) {
	if value == "" {
		delete(e.vars, strings.ToUpper(name))
		return
	}
	e.vars[strings.ToUpper(name)] = [2]string{name, value}
}

func (e *envBlock) clone() *envBlock {
	c := &envBlock{vars: make(map[string][2]string, len(e.vars))}
	for k, v := range e.vars {
		c.vars[k] = v
	}
	return c
}

func (h *Host) newProc(ctx context.Context, system bool) *proc {
	h.mu.Lock()
	env := h.baseEnvLocked(system)
	h.mu.Unlock()
	cwd := `C:\Documents and Settings\Administrator`
	user := "Administrator"
	if system {
		cwd = h.spec.SystemRoot + `\system32`
		user = "SYSTEM"
	}
	return &proc{h: h, ctx: ctx, env: env, cwd: cwd, system: system, user: user}
}

// child returns a new cmd.exe or program context of p: same host, job and command record.
func (p *proc) child() *proc {
	return &proc{h: p.h, ctx: p.ctx, env: p.env.clone(), cwd: p.cwd, stdin: p.stdin, system: p.system,
		user: p.user, rec: p.rec, job: p.job}
}

func (h *Host) baseEnvLocked(system bool) *envBlock {
	e := &envBlock{vars: map[string][2]string{}}
	sr := h.spec.SystemRoot
	drive := sr[:2]
	user, profile := "Administrator", drive+`\Documents and Settings\Administrator`
	temp := profile + `\Local Settings\Temp`
	if system {
		user, profile = h.spec.ComputerName+"$", drive+`\Documents and Settings\Default User`
		temp = sr + `\TEMP`
	}
	for _, kv := range [][2]string{
		{"ALLUSERSPROFILE", drive + `\Documents and Settings\All Users`},
		{"APPDATA", profile + `\Application Data`},
		{"CommonProgramFiles", drive + `\Program Files\Common Files`},
		{"COMPUTERNAME", h.spec.ComputerName},
		{"ComSpec", sr + `\system32\cmd.exe`},
		{"FP_NO_HOST_CHECK", "NO"},
		{"HOMEDRIVE", drive},
		{"HOMEPATH", `\Documents and Settings\Administrator`},
		{"NUMBER_OF_PROCESSORS", "2"},
		{"OS", "Windows_NT"},
		{"Path", sr + `\system32;` + sr + `;` + sr + `\System32\Wbem`},
		{"PATHEXT", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH"},
		{"PROCESSOR_ARCHITECTURE", h.spec.Arch},
		{"PROCESSOR_IDENTIFIER", h.processorIdentifier()},
		{"PROCESSOR_LEVEL", "6"},
		{"PROCESSOR_REVISION", "0f06"},
		{"ProgramFiles", drive + `\Program Files`},
		{"PROMPT", "$P$G"},
		{"SystemDrive", drive},
		{"SystemRoot", sr},
		{"TEMP", temp},
		{"TMP", temp},
		{"USERDOMAIN", h.spec.ComputerName},
		{"USERNAME", user},
		{"USERPROFILE", profile},
		{"windir", sr},
	} {
		e.set(kv[0], kv[1])
	}
	if h.spec.PowerShell {
		e.set("Path", e.mustGet("Path")+`;`+sr+`\system32\WindowsPowerShell\v1.0\`)
	}
	return e
}

func (e *envBlock) mustGet(name string) string { v, _ := e.get(name); return v }

func (h *Host) processorIdentifier() string {
	if h.spec.Arch == "AMD64" {
		return "EM64T Family 6 Model 15 Stepping 6, GenuineIntel"
	}
	return "x86 Family 6 Model 15 Stepping 6, GenuineIntel"
}

func (p *proc) loc() *locale { return p.h.loc() }

// write writes text to w in the host's OEM code page.
func (p *proc) write(w io.Writer, s string) {
	_, _ = w.Write(encodeCP(p.loc().oem, s))
}

// runTop runs a command line as `cmd /c` would, and returns the exit code.
func (p *proc) runTop(line string, stdout, stderr *stream) int {
	line = p.expandPercent(line)
	p.runLine(line, stdout, stderr)
	if p.exiting {
		return p.exitCode
	}
	return p.errorlevel
}

// ---------- parsing ----------

type redir struct {
	fd     int  // 0 stdin, 1 stdout, 2 stderr, 3-9 handles no program here uses
	out    bool // > or >> (a file opened for writing), else <
	append bool
	target string // a path, or "&1"/"&2"
}

// cmdNode is one command of a pipeline: a simple command, a parenthesised block, an IF or a FOR.
type cmdNode struct {
	text   string // simple command text, redirections removed
	block  []seqItem
	redirs []redir
	forN   *forNode
	// IF: the condition's text (evaluated after delayed expansion) and the branches
	isIf    bool
	ifCond  string
	ifThen  []seqItem
	ifElse  []seqItem
	hasElse bool
}

type seqItem struct {
	op   string // "" (first), "&", "&&", "||"
	pipe []*cmdNode
}

// parser reads a command line. Like cmd.exe it never fails: an unbalanced parenthesis or quote
// ends the construct at the end of the line.
type parser struct {
	s string
	i int
}

// parseSeq parses until the end or a ')' closing a block (depth > 0).
func (ps *parser) parseSeq(depth int) []seqItem {
	var items []seqItem
	op := ""
	for {
		ps.skipSpace()
		if ps.i >= len(ps.s) {
			break
		}
		if depth > 0 && ps.s[ps.i] == ')' {
			break
		}
		pipe := ps.parsePipe(depth)
		if len(pipe) > 0 {
			items = append(items, seqItem{op: op, pipe: pipe})
		}
		ps.skipSpace()
		if ps.i >= len(ps.s) {
			break
		}
		switch {
		case strings.HasPrefix(ps.s[ps.i:], "&&"):
			op = "&&"
			ps.i += 2
		case strings.HasPrefix(ps.s[ps.i:], "||"):
			op = "||"
			ps.i += 2
		case ps.s[ps.i] == '&':
			op = "&"
			ps.i++
		case ps.s[ps.i] == '\n':
			op = "&"
			ps.i++
		case ps.s[ps.i] == ')' && depth > 0:
			return items
		default:
			ps.i++ // stray character; skip it
		}
	}
	return items
}

func (ps *parser) skipSpace() {
	for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t' || ps.s[ps.i] == ';' || ps.s[ps.i] == ',' || ps.s[ps.i] == '=' || ps.s[ps.i] == '@') {
		ps.i++
	}
}

func (ps *parser) parsePipe(depth int) []*cmdNode {
	var out []*cmdNode
	for {
		n := ps.parseCommand(depth)
		if n != nil {
			out = append(out, n)
		}
		if ps.i < len(ps.s) && ps.s[ps.i] == '|' && !strings.HasPrefix(ps.s[ps.i:], "||") {
			ps.i++
			ps.skipSpace()
			continue
		}
		return out
	}
}

func isWordBoundary(c byte) bool {
	return c == ' ' || c == '\t' || c == '(' || c == ';' || c == ',' || c == '='
}

func (ps *parser) parseCommand(depth int) *cmdNode {
	ps.skipSpace()
	if ps.i >= len(ps.s) {
		return nil
	}
	if ps.s[ps.i] == '(' {
		ps.i++
		block := ps.parseSeq(depth + 1)
		if ps.i < len(ps.s) && ps.s[ps.i] == ')' {
			ps.i++
		}
		n := &cmdNode{block: block}
		ps.parseTrailingRedirs(n, depth)
		return n
	}
	rest := ps.s[ps.i:]
	if len(rest) > 3 && strings.EqualFold(rest[:2], "if") && isWordBoundary(rest[2]) {
		return ps.parseIf(depth)
	}
	if len(rest) > 4 && strings.EqualFold(rest[:3], "for") && (rest[3] == ' ' || rest[3] == '\t') {
		return ps.parseFor(depth)
	}
	return ps.parseSimple(depth)
}

// parseSimple reads a simple command up to an unquoted operator, taking redirections out.
func (ps *parser) parseSimple(depth int) *cmdNode {
	n := &cmdNode{}
	var sb strings.Builder
	inQ := false
	for ps.i < len(ps.s) {
		c := ps.s[ps.i]
		if c == '"' {
			inQ = !inQ
			sb.WriteByte(c)
			ps.i++
			continue
		}
		if inQ {
			if c == '\n' {
				break
			}
			sb.WriteByte(c)
			ps.i++
			continue
		}
		if c == '^' && ps.i+1 < len(ps.s) {
			sb.WriteByte(ps.s[ps.i+1])
			ps.i += 2
			continue
		}
		if c == '&' || c == '|' || c == '\n' || (c == ')' && depth > 0) {
			break
		}
		if c == '>' || c == '<' {
			fd := 1
			if c == '<' {
				fd = 0
			}
			// A digit right before the operator is the handle when a token delimiter (space, tab,
			// comma, semicolon, equals sign) or the start of the command comes before it, so
			// "echo exit=0>>f" redirects handle 0 and echoes "exit=" (ReactOS's cmd parser
			// models cmd.exe's tokenizer so, base/shell/cmd/parser.c ParseToken [P]).
			cur := sb.String()
			if l := len(cur); l > 0 && cur[l-1] >= '0' && cur[l-1] <= '9' && (l == 1 || strings.IndexByte(" \t,;=", cur[l-2]) >= 0) {
				fd = int(cur[l-1] - '0')
				sb.Reset()
				sb.WriteString(cur[:l-1])
			}
			n.redirs = append(n.redirs, ps.parseRedir(c, fd, depth))
			continue
		}
		sb.WriteByte(c)
		ps.i++
	}
	n.text = sb.String()
	return n
}

func (ps *parser) parseRedir(c byte, fd, depth int) redir {
	r := redir{fd: fd, out: c == '>'}
	ps.i++
	if c == '>' && ps.i < len(ps.s) && ps.s[ps.i] == '>' {
		r.append = true
		ps.i++
	}
	for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t') {
		ps.i++
	}
	if ps.i < len(ps.s) && ps.s[ps.i] == '&' && ps.i+1 < len(ps.s) && ps.s[ps.i+1] >= '0' && ps.s[ps.i+1] <= '2' {
		r.target = ps.s[ps.i : ps.i+2]
		ps.i += 2
		return r
	}
	var sb strings.Builder
	inQ := false
	for ps.i < len(ps.s) {
		ch := ps.s[ps.i]
		if ch == '"' {
			inQ = !inQ
			ps.i++
			continue
		}
		if !inQ && (ch == ' ' || ch == '\t' || ch == '&' || ch == '|' || ch == '<' || ch == '>' || ch == '\n' || (ch == ')' && depth > 0)) {
			break
		}
		sb.WriteByte(ch)
		ps.i++
	}
	r.target = sb.String()
	return r
}

func (ps *parser) parseTrailingRedirs(n *cmdNode, depth int) {
	for {
		for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t') {
			ps.i++
		}
		if ps.i >= len(ps.s) {
			return
		}
		c := ps.s[ps.i]
		fd := 1
		if c >= '0' && c <= '9' && ps.i+1 < len(ps.s) && (ps.s[ps.i+1] == '>' || ps.s[ps.i+1] == '<') {
			fd = int(c - '0')
			ps.i++
			c = ps.s[ps.i]
		} else if c == '<' {
			fd = 0
		}
		if c != '>' && c != '<' {
			return
		}
		n.redirs = append(n.redirs, ps.parseRedir(c, fd, depth))
	}
}

// parseIf parses `if [/i] [not] cond command [else command]`. The condition is kept as text and
// evaluated after delayed expansion.
func (ps *parser) parseIf(depth int) *cmdNode {
	n := &cmdNode{isIf: true}
	ps.i += 2
	start := ps.i
	// condition: tokens; `exist X`, `errorlevel N`, `defined X`, `a==b`, `a OP b`, with /i and not
	toks := 0
	need := 0
	for {
		tok, ok := ps.nextToken()
		if !ok {
			break
		}
		toks++
		lt := strings.ToLower(tok)
		if toks == 1 || need == 0 {
			switch {
			case lt == "/i" || lt == "not":
				continue
			case lt == "exist" || lt == "errorlevel" || lt == "defined" || lt == "cmdextversion":
				need = 1
				continue
			}
		}
		if need == 1 {
			break
		}
		if strings.Contains(tok, "==") {
			if strings.HasSuffix(tok, "==") {
				need = 1
				continue
			}
			break
		}
		// maybe an OP form: a EQU b
		save := ps.i
		op, ok := ps.nextToken()
		if ok && isCompareOp(op) {
			need = 1
			continue
		}
		if ok && op == "==" {
			need = 1
			continue
		}
		if ok && strings.HasPrefix(op, "==") {
			break
		}
		ps.i = save
		break
	}
	n.ifCond = ps.s[start:ps.i]
	ps.skipSpace()
	if ps.i < len(ps.s) && ps.s[ps.i] == '(' {
		ps.i++
		n.ifThen = ps.parseSeq(depth + 1)
		if ps.i < len(ps.s) && ps.s[ps.i] == ')' {
			ps.i++
		}
		save := ps.i
		ps.skipSpace()
		rest := ps.s[ps.i:]
		if len(rest) >= 4 && strings.EqualFold(rest[:4], "else") && (len(rest) == 4 || isWordBoundary(rest[4])) {
			ps.i += 4
			n.hasElse = true
			ps.skipSpace()
			if ps.i < len(ps.s) && ps.s[ps.i] == '(' {
				ps.i++
				n.ifElse = ps.parseSeq(depth + 1)
				if ps.i < len(ps.s) && ps.s[ps.i] == ')' {
					ps.i++
				}
			} else {
				n.ifElse = ps.parseSeq(depth)
			}
		} else {
			ps.i = save
		}
		return n
	}
	n.ifThen = ps.parseSeq(depth)
	return n
}

func isCompareOp(s string) bool {
	switch strings.ToUpper(s) {
	case "EQU", "NEQ", "LSS", "LEQ", "GTR", "GEQ":
		return true
	}
	return false
}

// nextToken reads one whitespace-delimited token (quotes kept).
func (ps *parser) nextToken() (string, bool) {
	for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t') {
		ps.i++
	}
	if ps.i >= len(ps.s) || ps.s[ps.i] == '\n' {
		return "", false
	}
	start := ps.i
	inQ := false
	for ps.i < len(ps.s) {
		c := ps.s[ps.i]
		if c == '"' {
			inQ = !inQ
		} else if !inQ && (c == ' ' || c == '\t' || c == '\n') {
			break
		}
		ps.i++
	}
	return ps.s[start:ps.i], true
}

// ---------- expansion ----------

func (p *proc) dynamicVar(name string) (string, bool) {
	switch strings.ToUpper(name) {
	case "ERRORLEVEL":
		return strconv.Itoa(p.errorlevel), true
	case "CD":
		return p.cwd, true
	case "DATE":
		return p.h.localNow().Format("Mon 01/02/2006"), true
	case "TIME":
		t := p.h.localNow()
		return fmt.Sprintf("%2d:%02d:%02d.%02d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7), true
	case "RANDOM":
		return strconv.Itoa(int(p.h.clock.Now().UnixNano()/1000) % 32768), true
	}
	return "", false
}

func (p *proc) lookupVar(name string) (string, bool) {
	if v, ok := p.env.get(name); ok {
		return v, true
	}
	return p.dynamicVar(name)
}

// modifyVar applies :~n,m or :a=b to a value.
func modifyVar(val, mod string) (string, bool) {
	if strings.HasPrefix(mod, "~") {
		spec := mod[1:]
		ns, ms, hasM := strings.Cut(spec, ",")
		n, err := strconv.Atoi(strings.TrimSpace(ns))
		if err != nil {
			return "", false
		}
		r := []rune(val)
		l := len(r)
		if n < 0 {
			n += l
			if n < 0 {
				n = 0
			}
		}
		if n > l {
			n = l
		}
		end := l
		if hasM {
			m, err := strconv.Atoi(strings.TrimSpace(ms))
			if err != nil {
				return "", false
			}
			if m < 0 {
				end = l + m
			} else {
				end = n + m
			}
			if end > l {
				end = l
			}
			if end < n {
				end = n
			}
		}
		return string(r[n:end]), true
	}
	old, repl, ok := strings.Cut(mod, "=")
	if !ok || old == "" {
		return "", false
	}
	if strings.HasPrefix(old, "*") {
		old = old[1:]
		i := indexFold(val, old)
		if i < 0 {
			return val, true
		}
		return repl + val[i+len(old):], true
	}
	return replaceFold(val, old, repl), true
}

func indexFold(s, sub string) int {
	return strings.Index(strings.ToLower(s), strings.ToLower(sub))
}

func replaceFold(s, old, repl string) string {
	var sb strings.Builder
	for {
		i := indexFold(s, old)
		if i < 0 {
			sb.WriteString(s)
			return sb.String()
		}
		sb.WriteString(s[:i])
		sb.WriteString(repl)
		s = s[i+len(old):]
	}
}

// expandPercent is phase 1: %VAR%, %VAR:mod%, and in a batch %0-%9, %*, %%.
func (p *proc) expandPercent(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		if p.batch != nil {
			if i+1 < len(s) && s[i+1] == '%' {
				sb.WriteByte('%')
				i++
				continue
			}
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				k := int(s[i+1] - '0')
				if k < len(p.batch.args) {
					sb.WriteString(p.batch.args[k])
				}
				i++
				continue
			}
			if i+1 < len(s) && s[i+1] == '*' {
				if len(p.batch.args) > 1 {
					sb.WriteString(strings.Join(p.batch.args[1:], " "))
				}
				i++
				continue
			}
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			if p.batch == nil {
				sb.WriteString(s[i:])
			}
			return sb.String()
		}
		body := s[i+1 : i+1+j]
		if v, ok := p.expandVarBody(body); ok {
			sb.WriteString(v)
			i += j + 1
			continue
		}
		if p.batch != nil {
			// undefined variable in a batch: removed
			i += j + 1
			continue
		}
		// command line: left as typed; resume at the second percent
		sb.WriteByte('%')
	}
	return sb.String()
}

func (p *proc) expandVarBody(body string) (string, bool) {
	if body == "" || strings.ContainsAny(body, "\r\n") {
		return "", false
	}
	name, mod, hasMod := strings.Cut(body, ":")
	v, ok := p.lookupVar(name)
	if !ok {
		return "", false
	}
	if hasMod {
		return modifyVar(v, mod)
	}
	return v, true
}

// expandBang is delayed expansion (phase 5) of one command's text.
func (p *proc) expandBang(s string) string {
	if !p.delayed || !strings.Contains(s, "!") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '^' && i+1 < len(s) {
			sb.WriteByte(s[i+1])
			i++
			continue
		}
		if c != '!' {
			sb.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '!')
		if j < 0 {
			return sb.String() // a lone ! is removed
		}
		body := s[i+1 : i+1+j]
		if v, ok := p.expandVarBody(body); ok {
			sb.WriteString(v)
		}
		i += j + 1
	}
	return sb.String()
}

// ---------- execution ----------

func (p *proc) runLine(line string, stdout, stderr *stream) {
	ps := &parser{s: line}
	items := ps.parseSeq(0)
	p.runSeq(items, stdout, stderr)
}

func (p *proc) stop() bool {
	return p.exiting || (p.batch != nil && p.batch.done) || p.ctx.Err() != nil
}

func (p *proc) runSeq(items []seqItem, stdout, stderr *stream) {
	for _, it := range items {
		if p.stop() {
			return
		}
		switch it.op {
		case "&&":
			if p.errorlevel != 0 {
				continue
			}
		case "||":
			if p.errorlevel == 0 {
				continue
			}
		}
		p.runPipe(it.pipe, stdout, stderr)
	}
}

func (p *proc) runPipe(pipe []*cmdNode, stdout, stderr *stream) {
	if len(pipe) == 1 {
		p.runNode(pipe[0], stdout, stderr)
		return
	}
	saved := p.stdin
	for i, n := range pipe {
		if i == len(pipe)-1 {
			p.runNode(n, stdout, stderr)
			break
		}
		var buf bytes.Buffer
		p.runNode(n, &stream{w: &buf, kind: streamPipe}, stderr)
		p.stdin = &buf
	}
	p.stdin = saved
}

func (p *proc) runNode(n *cmdNode, stdout, stderr *stream) {
	out, errw, in, ok := p.applyRedirs(n.redirs, stdout, stderr)
	if !ok {
		p.errorlevel = 1
		return
	}
	savedIn := p.stdin
	if in != nil {
		p.stdin = in
		defer func() { p.stdin = savedIn }()
	}
	switch {
	case n.forN != nil:
		p.runFor(n.forN, out, errw)
	case n.isIf:
		cond, ok := p.evalIf(p.expandBang(n.ifCond), errw)
		if !ok {
			p.errorlevel = 255
			return
		}
		if cond {
			p.runSeq(n.ifThen, out, errw)
		} else if n.hasElse {
			p.runSeq(n.ifElse, out, errw)
		}
	case n.block != nil:
		p.runSeq(n.block, out, errw)
	default:
		text := p.expandBang(n.text)
		p.runSimple(text, out, errw)
	}
}

func (p *proc) applyRedirs(rs []redir, stdout, stderr *stream) (*stream, *stream, io.Reader, bool) {
	out, errw := stdout, stderr
	var in io.Reader
	for _, r := range rs {
		target := strings.TrimSpace(p.expandBang(r.target))
		switch {
		case r.fd != 0 && (target == "&1" || target == "&2"):
			src := out
			if target == "&2" {
				src = errw
			}
			if r.fd == 1 {
				out = src
			} else {
				errw = src
			}
			continue
		case r.fd == 0 && (strings.EqualFold(target, "nul") || strings.EqualFold(target, "nul:")):
			in = bytes.NewReader(nil) // the NUL device reads as an empty file
			continue
		case r.fd == 0 && r.out, r.fd > 2:
			// A file opened for writing as stdin, or as a handle no program uses: it is created
			// (or emptied), and reading it gives nothing.
			if _, ok := p.openOut(target, r.append, errw); !ok {
				return nil, nil, nil, false
			}
			if r.fd == 0 {
				in = bytes.NewReader(nil)
			}
			continue
		case r.fd == 0 || !r.out:
			data, ok := p.readFileText(target)
			if !ok {
				p.write(errw, p.loc().text("nofile")+"\r\n")
				return nil, nil, nil, false
			}
			in = bytes.NewReader(data)
			continue
		}
		s, ok := p.openOut(target, r.append, errw)
		if !ok {
			return nil, nil, nil, false
		}
		if r.fd == 2 {
			errw = s
		} else {
			out = s
		}
	}
	return out, errw, in, true
}

func (p *proc) openOut(target string, appendMode bool, errw *stream) (*stream, bool) {
	if strings.EqualFold(target, "nul") || strings.EqualFold(target, "nul:") {
		return &stream{kind: streamNul}, true
	}
	path := p.abs(target)
	h := p.h
	h.mu.Lock()
	dir := path[:strings.LastIndex(path, `\`)]
	if !h.fs.isDir(dir) {
		h.mu.Unlock()
		p.write(errw, p.loc().text("nopath")+"\r\n")
		return nil, false
	}
	if h.fs.isDir(path) {
		h.mu.Unlock()
		p.write(errw, p.loc().text("accessdenied")+"\r\n")
		return nil, false
	}
	f := h.fs.file(path)
	if f == nil {
		f = h.fs.newFile(path, h.clock.Now())
		h.fs.put(f)
	} else if !appendMode {
		if h.fileInUseLocked(path) {
			h.mu.Unlock()
			p.write(errw, "The process cannot access the file because it is being used by another process.\r\n")
			return nil, false
		}
		f.written()
		_ = h.fs.truncate(f, 0)
	}
	f.written()
	p.wroteLocked()
	h.mu.Unlock()
	return &stream{kind: streamFile, h: h, f: f}, true
}

// abs makes a path absolute against the current directory.
func (p *proc) abs(path string) string {
	path = strings.Trim(path, `"`)
	path = strings.ReplaceAll(path, "/", `\`)
	switch {
	case len(path) >= 2 && path[1] == ':':
		if len(path) == 2 {
			return path + `\`
		}
		if path[2] != '\\' {
			return path[:2] + `\` + path[2:]
		}
		return path
	case strings.HasPrefix(path, `\\`):
		return path // a UNC path
	case strings.HasPrefix(path, `\`):
		return p.cwd[:2] + path
	}
	return strings.TrimSuffix(p.cwd, `\`) + `\` + path
}

func (p *proc) readFileText(target string) ([]byte, bool) {
	path := p.abs(target)
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	f := p.h.fs.file(path)
	if f == nil {
		return nil, false
	}
	return f.data(), true
}

// evalIf evaluates an IF condition (already expanded).
func (p *proc) evalIf(cond string, errw *stream) (bool, bool) {
	ps := &parser{s: cond}
	var toks []string
	for {
		t, ok := ps.nextToken()
		if !ok {
			break
		}
		toks = append(toks, t)
	}
	fold, not := false, false
	for len(toks) > 0 {
		lt := strings.ToLower(toks[0])
		if lt == "/i" {
			fold = true
		} else if lt == "not" {
			not = true
		} else {
			break
		}
		toks = toks[1:]
	}
	if len(toks) == 0 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		return false, false
	}
	var res bool
	switch lt := strings.ToLower(toks[0]); {
	case lt == "exist" && len(toks) >= 2:
		path := p.abs(strings.Trim(toks[1], `"`))
		p.h.mu.Lock()
		res = p.h.fs.file(path) != nil || p.h.fs.isDir(path)
		if strings.HasSuffix(path, `\nul`) || strings.HasSuffix(path, `\NUL`) {
			res = p.h.fs.isDir(path[:len(path)-4])
		}
		p.h.mu.Unlock()
	case lt == "errorlevel" && len(toks) >= 2:
		n, err := strconv.Atoi(toks[1])
		if err != nil {
			p.write(errw, p.loc().text("syntax")+"\r\n")
			return false, false
		}
		res = p.errorlevel >= n
	case lt == "defined" && len(toks) >= 2:
		_, res = p.lookupVar(toks[1])
	default:
		joined := strings.Join(toks, " ")
		if a, b, ok := strings.Cut(joined, "=="); ok {
			a, b = strings.TrimSpace(a), strings.TrimSpace(b)
			if fold {
				res = strings.EqualFold(a, b)
			} else {
				res = a == b
			}
			break
		}
		if len(toks) >= 3 && isCompareOp(toks[1]) {
			res = compareOp(toks[0], strings.ToUpper(toks[1]), toks[2], fold)
			break
		}
		p.write(errw, p.loc().text("syntax")+"\r\n")
		return false, false
	}
	return res != not, true
}

func compareOp(a, op, b string, fold bool) bool {
	var c int
	ai, errA := strconv.Atoi(a)
	bi, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		switch {
		case ai < bi:
			c = -1
		case ai > bi:
			c = 1
		}
	} else {
		if fold {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		c = strings.Compare(a, b)
	}
	switch op {
	case "EQU":
		return c == 0
	case "NEQ":
		return c != 0
	case "LSS":
		return c < 0
	case "LEQ":
		return c <= 0
	case "GTR":
		return c > 0
	}
	return c >= 0
}

// splitCommand separates the command name from the rest as cmd.exe does.
func splitCommand(text string) (name, rest string) {
	text = strings.TrimLeft(text, " \t@")
	if text == "" {
		return "", ""
	}
	if text[0] == '"' {
		j := strings.IndexByte(text[1:], '"')
		if j < 0 {
			return text[1:], ""
		}
		return text[1 : j+1], text[j+2:]
	}
	i := 0
	for i < len(text) {
		c := text[i]
		if c == ' ' || c == '\t' || c == '/' && i > 0 && !strings.ContainsAny(text[:i], `\:`) || c == '(' || c == ';' || c == ',' || c == '=' || c == '"' || c == '+' {
			break
		}
		if c == '.' && i > 0 && isBuiltinName(text[:i]) {
			break
		}
		i++
	}
	return text[:i], text[i:]
}

var builtinNames = map[string]bool{
	"echo": true, "set": true, "type": true, "del": true, "erase": true, "mkdir": true, "md": true,
	"rmdir": true, "rd": true, "exit": true, "rem": true, "setlocal": true, "endlocal": true, "cd": true,
	"chdir": true, "call": true, "goto": true, "ver": true, "cls": true, "title": true, "copy": true,
	"move": true, "ren": true, "rename": true, "dir": true, "pushd": true, "popd": true, "pause": true,
	"path": true, "prompt": true, "for": true, "shift": true, "start": true, "date": true, "time": true,
	"vol": true, "verify": true, "color": true, "assoc": true, "ftype": true, "break": true,
}

func isBuiltinName(s string) bool { return builtinNames[strings.ToLower(s)] }

// runSimple runs one simple command; text has been fully expanded.
func (p *proc) runSimple(text string, out, errw *stream) {
	trimmed := strings.TrimLeft(text, " \t@")
	if trimmed == "" {
		return
	}
	if strings.HasPrefix(trimmed, ":") {
		return // a label, or a :: comment
	}
	name, rest := splitCommand(trimmed)
	lname := strings.ToLower(name)
	if builtinNames[lname] {
		p.runBuiltin(lname, rest, out, errw)
		return
	}
	p.errorlevel = p.runProgram(name, rest, out, errw)
}

func (p *proc) runBuiltin(name, rest string, out, errw *stream) {
	args := strings.TrimLeft(rest, " \t")
	switch name {
	case "rem":
	case "echo":
		p.builtinEcho(rest, out)
	case "set":
		p.builtinSet(rest, out, errw)
	case "setlocal":
		p.envStack = append(p.envStack, p.env)
		p.delayStack = append(p.delayStack, p.delayed)
		p.env = p.env.clone()
		for _, a := range strings.Fields(strings.ToLower(args)) {
			switch a {
			case "enabledelayedexpansion":
				p.delayed = true
			case "disabledelayedexpansion":
				p.delayed = false
			}
		}
		p.errorlevel = 0
	case "endlocal":
		if n := len(p.envStack); n > 0 {
			p.env = p.envStack[n-1]
			p.delayed = p.delayStack[n-1]
			p.envStack = p.envStack[:n-1]
			p.delayStack = p.delayStack[:n-1]
		}
	case "exit":
		p.builtinExit(args)
	case "type":
		p.builtinType(args, out, errw)
	case "del", "erase":
		p.builtinDel(args, out, errw)
	case "mkdir", "md":
		p.builtinMkdir(args, errw)
	case "rmdir", "rd":
		p.builtinRmdir(args, errw)
	case "cd", "chdir":
		p.builtinCd(args, out, errw)
	case "ver":
		p.write(out, "\r\nMicrosoft Windows [Version 5.2.3790]\r\n")
	case "cls", "title", "color", "break", "verify", "pause", "prompt":
	case "call":
		p.builtinCall(args, out, errw)
	case "goto":
		p.builtinGoto(args, errw)
	case "copy":
		p.builtinCopy(args, out, errw)
	case "move":
		p.builtinMove(args, out, errw)
	case "dir":
		p.builtinDir(args, out, errw)
	default:
		// Built-ins this lab does not model behave as a failed command.
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
	}
}

func (p *proc) builtinEcho(rest string, out *stream) {
	if rest == "" {
		if p.echo {
			p.write(out, p.loc().text("echoon")+"\r\n")
		} else {
			p.write(out, p.loc().text("echooff")+"\r\n")
		}
		return
	}
	msg := rest[1:] // the delimiter after ECHO is not printed
	if rest[0] == ' ' || rest[0] == '\t' {
		t := strings.TrimSpace(msg)
		switch strings.ToLower(t) {
		case "off":
			p.echo = false
			return
		case "on":
			p.echo = true
			return
		case "":
			if p.echo {
				p.write(out, p.loc().text("echoon")+"\r\n")
			} else {
				p.write(out, p.loc().text("echooff")+"\r\n")
			}
			return
		}
	}
	p.write(out, msg+"\r\n")
}

func (p *proc) builtinSet(rest string, out, errw *stream) {
	args := strings.TrimLeft(rest, " \t")
	if strings.HasPrefix(strings.ToLower(args), "/p ") || strings.HasPrefix(strings.ToLower(args), "/p\"") {
		spec := strings.TrimLeft(args[2:], " ")
		spec = strings.Trim(spec, `"`)
		name, prompt, _ := strings.Cut(spec, "=")
		p.write(out, prompt)
		line := ""
		if p.stdin != nil {
			var buf [1]byte
			var sb strings.Builder
			for {
				n, err := p.stdin.Read(buf[:])
				if n == 1 {
					if buf[0] == '\n' {
						break
					}
					sb.WriteByte(buf[0])
				}
				if err != nil {
					break
				}
			}
			line = strings.TrimSuffix(sb.String(), "\r")
		}
		if line == "" {
			p.errorlevel = 1
			return
		}
		p.env.set(name, line)
		return
	}
	if strings.HasPrefix(strings.ToLower(args), "/a") {
		p.setA(args[2:], out, errw)
		return
	}
	if strings.HasPrefix(args, `"`) {
		if j := strings.LastIndexByte(args, '"'); j > 0 {
			args = args[1:j]
		} else {
			args = args[1:]
		}
	}
	name, value, hasEq := strings.Cut(args, "=")
	if !hasEq {
		prefix := strings.ToUpper(strings.TrimSpace(name))
		var names []string
		for k := range p.env.vars {
			if strings.HasPrefix(k, prefix) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			p.write(errw, fmt.Sprintf("Environment variable %s not defined\r\n", strings.TrimSpace(name)))
			p.errorlevel = 1
			return
		}
		for _, k := range names {
			v := p.env.vars[k]
			p.write(out, v[0]+"="+v[1]+"\r\n")
		}
		return
	}
	if name == "" {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	p.env.set(name, value)
}

func (p *proc) builtinExit(args string) {
	fields := strings.Fields(args)
	code := p.errorlevel
	isB := false
	if len(fields) > 0 && strings.EqualFold(fields[0], "/b") {
		isB = true
		fields = fields[1:]
	}
	if len(fields) > 0 {
		if n, err := strconv.Atoi(fields[0]); err == nil {
			code = n
		} else {
			code = 0
		}
	}
	p.errorlevel = code
	if isB && p.batch != nil {
		p.batch.done = true
		return
	}
	p.exiting = true
	p.exitCode = code
}

func (p *proc) builtinType(args string, out, errw *stream) {
	names := splitArgs(args)
	if len(names) == 0 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	for _, n := range names {
		data, ok := p.readFileText(n)
		if !ok {
			p.write(errw, p.loc().text("nofile")+"\r\n")
			p.errorlevel = 1
			continue
		}
		if len(names) > 1 {
			p.write(errw, "\r\n"+n+"\r\n\r\n\r\n")
		}
		if len(data) >= 2 && data[0] == 0xFF && data[1] == 0xFE {
			// type converts a UTF-16 file with a BOM to the console code page.
			p.write(out, decodeUTF16LE(data[2:]))
			continue
		}
		_, _ = out.Write(data)
	}
}

func decodeUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	var sb strings.Builder
	for _, r := range utf16.Decode(u) {
		sb.WriteRune(r)
	}
	return sb.String()
}

func (p *proc) builtinDel(args string, out, errw *stream) {
	var names []string
	for _, a := range splitArgs(args) {
		if strings.HasPrefix(a, "/") {
			continue // /f /q /s accepted
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	for _, n := range names {
		path := p.abs(n)
		h := p.h
		h.mu.Lock()
		targets := []string{path}
		if hasWildcard(path) {
			targets = nil
			for _, f := range h.fs.glob(path) {
				targets = append(targets, f.path)
			}
		}
		var inUse []string
		removed := 0
		for _, t := range targets {
			if h.fileInUseLocked(t) {
				inUse = append(inUse, t)
			} else if h.fs.remove(t) {
				removed++
			}
		}
		if removed > 0 {
			p.wroteLocked()
		}
		h.mu.Unlock()
		for _, t := range inUse {
			p.write(errw, t+"\r\nThe process cannot access the file because it is being used by another process.\r\n")
		}
		if removed == 0 && len(inUse) == 0 {
			p.write(errw, fmt.Sprintf(p.loc().text("couldnotfind"), path)+"\r\n")
		}
	}
	// del leaves ERRORLEVEL alone even when a file is missing (a long-standing cmd.exe quirk).
}

func (p *proc) builtinMkdir(args string, errw *stream) {
	names := splitArgs(args)
	if len(names) == 0 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	for _, n := range names {
		path := p.abs(n)
		p.h.mu.Lock()
		exists := p.h.fs.isDir(path) || p.h.fs.file(path) != nil
		if !exists {
			p.h.fs.mkdirAll(path)
			p.wroteLocked()
		}
		p.h.mu.Unlock()
		if exists {
			p.write(errw, fmt.Sprintf(p.loc().text("direxists"), n)+"\r\n")
			p.errorlevel = 1
		}
	}
}

func (p *proc) builtinRmdir(args string, errw *stream) {
	recursive := false
	var names []string
	for _, a := range splitArgs(args) {
		if strings.EqualFold(a, "/s") {
			recursive = true
			continue
		}
		if strings.HasPrefix(a, "/") {
			continue
		}
		names = append(names, a)
	}
	for _, n := range names {
		path := normPath(p.abs(n))
		p.h.mu.Lock()
		if !p.h.fs.isDir(path) {
			p.h.mu.Unlock()
			p.write(errw, p.loc().text("nofile")+"\r\n")
			p.errorlevel = 2
			continue
		}
		hasContent := false
		for k := range p.h.fs.files {
			if strings.HasPrefix(k, path+`\`) {
				hasContent = true
			}
		}
		if hasContent && !recursive {
			p.h.mu.Unlock()
			p.write(errw, "The directory is not empty.\r\n")
			p.errorlevel = 145
			continue
		}
		for k, f := range p.h.fs.files {
			if strings.HasPrefix(k, path+`\`) {
				p.h.fs.remove(f.path)
			}
		}
		p.wroteLocked()
		for k := range p.h.fs.dirs {
			if k == path || strings.HasPrefix(k, path+`\`) {
				delete(p.h.fs.dirs, k)
			}
		}
		p.h.mu.Unlock()
	}
}

func (p *proc) builtinCd(args string, out, errw *stream) {
	a := strings.TrimSpace(args)
	if strings.HasPrefix(strings.ToLower(a), "/d") {
		a = strings.TrimSpace(a[2:])
	}
	a = strings.Trim(a, `"`)
	if a == "" {
		p.write(out, p.cwd+"\r\n")
		return
	}
	path := p.abs(a)
	p.h.mu.Lock()
	ok := p.h.fs.isDir(path)
	p.h.mu.Unlock()
	if !ok {
		p.write(errw, p.loc().text("nopath")+"\r\n")
		p.errorlevel = 1
		return
	}
	p.cwd = strings.TrimSuffix(path, `\`)
	if len(p.cwd) == 2 {
		p.cwd += `\`
	}
}

// builtinCopy is copy: one file to a file or a folder; several (a wildcard, or a+b) to a folder
// file by file, or concatenated into one file; from the host's disk or from the fleet's share.
// /b /a /v /y /-y /z are accepted (the lab copies bytes either way; /y: no overwrite prompt,
// which a batch file and cmd /c never show anyway).
func (p *proc) builtinCopy(args string, out, errw *stream) {
	var names []string
	for _, a := range splitArgs(args) {
		if !strings.HasPrefix(a, "/") {
			names = append(names, a)
		}
	}
	if len(names) == 1 {
		names = append(names, p.cwd)
	}
	if len(names) != 2 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	dst := p.abs(names[1])
	var srcs []string
	for _, s := range strings.Split(names[0], "+") {
		if s != "" {
			srcs = append(srcs, p.abs(s))
		}
	}
	if len(srcs) == 1 && strings.HasPrefix(srcs[0], `\\`) {
		p.errorlevel = p.copyFromShare(srcs[0], dst, out, errw)
		return
	}
	p.errorlevel = p.copyLocal(srcs, dst, len(srcs) > 1 || hasWildcard(srcs[0]), out, errw)
}

// copyLocal copies files of the host. With several sources (a wildcard or a+b) into a file, the
// result is their concatenation in the order found, and copy names each source as it reads it
// (the NT copy's list of sources [I]).
func (p *proc) copyLocal(srcs []string, dst string, multi bool, out, errw *stream) int {
	h := p.h
	h.mu.Lock()
	var files []*file
	for _, s := range srcs {
		if hasWildcard(s) {
			files = append(files, h.fs.glob(s)...)
		} else if f := h.fs.file(s); f != nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		h.mu.Unlock()
		p.write(errw, p.loc().text("nofile")+"\r\n")
		p.write(out, "        0 file(s) copied.\r\n")
		return 1
	}
	now := h.clock.Now()
	intoDir := h.fs.isDir(dst)
	var listed strings.Builder
	var err error
	copied := 0
	switch {
	case intoDir:
		for _, f := range files {
			target := strings.TrimSuffix(dst, `\`) + `\` + baseName(f.path)
			if multi {
				listed.WriteString(sourceName(srcs, f) + "\r\n")
			}
			if normPath(target) == normPath(f.path) {
				err = errSelfCopy
				break
			}
			if err = p.putCopyLocked(f, target, now); err != nil {
				break
			}
			copied++
		}
	case !multi:
		if normPath(dst) == normPath(files[0].path) {
			err = errSelfCopy
		} else if err = p.putCopyLocked(files[0], dst, now); err == nil {
			copied = 1
		}
	default:
		// Concatenation. A destination among the sources is emptied before it is read: copy
		// warns that its content is lost and skips it (MS-DOS COPY's LOSTERR message, kept by cmd [P]).
		nf := h.fs.newFile(dst, now)
		old := h.fs.file(dst)
		h.fs.put(nf)
		p.wroteLocked()
		for _, f := range files {
			listed.WriteString(sourceName(srcs, f) + "\r\n")
			if f == old {
				listed.WriteString("Content of destination lost before copy\r\n")
				continue
			}
			if err = h.fs.appendFile(nf, f); err != nil {
				break
			}
		}
		if err == nil {
			copied = 1
		}
	}
	h.mu.Unlock()
	p.write(out, listed.String())
	switch {
	case errors.Is(err, errSelfCopy):
		p.write(errw, "The file cannot be copied onto itself.\r\n")
	case err != nil:
		p.write(errw, textDiskFull+"\r\n")
	}
	p.write(out, fmt.Sprintf("%9d file(s) copied.\r\n", copied))
	if err != nil {
		return 1
	}
	return 0
}

// errSelfCopy is copy's "The file cannot be copied onto itself."
var errSelfCopy = errors.New("copy onto itself")

// putCopyLocked writes a copy of f at target; a copy that does not fit the free space keeps
// what fit.
func (p *proc) putCopyLocked(f *file, target string, now time.Time) error {
	h := p.h
	p.wroteLocked()
	if old := h.fs.file(target); old != nil {
		h.fs.remove(target)
	}
	if f.c == nil || f.size <= h.fs.free() {
		h.fs.put(f.clone(target, now))
		return nil
	}
	nf := h.fs.newFile(target, now)
	h.fs.put(nf)
	return h.fs.appendFile(nf, f)
}

// sourceName is how copy names a source it reads: the folder as typed, the file's name.
func sourceName(srcs []string, f *file) string {
	for _, s := range srcs {
		if i := strings.LastIndex(s, `\`); i >= 0 && strings.EqualFold(s[:i], f.path[:strings.LastIndex(f.path, `\`)]) {
			return s[:i+1] + baseName(f.path)
		}
	}
	return f.path
}

// copyFromShare copies a file of the fleet's share (the machine account reads it; a WinRM
// user's network logon cannot: the double hop, docs/facts.md §6.3). The texts are copy's:
// "Access is denied.", "The system cannot find the file specified.", "The network path was not
// found." (ERROR_BAD_NETPATH, for a server the lab does not know [I]), each followed by
// "0 file(s) copied.".
func (p *proc) copyFromShare(src, dst string, out, errw *stream) int {
	h := p.h
	share := h.opts.Share
	fail := func(text string) int {
		p.write(errw, text+"\r\n")
		p.write(out, "        0 file(s) copied.\r\n")
		return 1
	}
	if share == nil || !strings.HasPrefix(normPath(src), normPath(share.UNC)+`\`) {
		return fail("The network path was not found.")
	}
	if !p.system {
		return fail(p.loc().text("accessdenied"))
	}
	rel := src[len(strings.TrimRight(share.UNC, `\`))+1:]
	if strings.Contains(rel, `\`) || strings.Contains(rel, "..") || rel == "" {
		return fail(p.loc().text("nofile"))
	}
	r, err := os.Open(filepath.Join(share.Dir, rel))
	if err != nil {
		return fail(p.loc().text("nofile"))
	}
	defer r.Close()
	h.mu.Lock()
	if h.fs.isDir(dst) {
		dst = strings.TrimSuffix(dst, `\`) + `\` + rel
	}
	nf := h.fs.newFile(dst, h.clock.Now())
	h.fs.remove(dst)
	h.fs.put(nf)
	p.wroteLocked()
	h.mu.Unlock()
	full := false
	if p.receiveInto(nf, r, func() { full = true }) != 0 {
		if full {
			return fail(textDiskFull)
		}
		return fail("An unexpected network error occurred.") // ERROR_UNEXP_NET_ERR [I]
	}
	p.write(out, "        1 file(s) copied.\r\n")
	return 0
}

// builtinMove renames a file: move [/y] source destination, printing "1 file(s) moved." [I]
// (the count line of copy's form). Without /y an existing destination is a prompt, which cmd /c
// and batch files answer from stdin.
func (p *proc) builtinMove(args string, out, errw *stream) {
	var names []string
	overwrite := false
	for _, a := range splitArgs(args) {
		switch {
		case strings.EqualFold(a, "/y"):
			overwrite = true
		case strings.EqualFold(a, "/-y"):
			overwrite = false
		case !strings.HasPrefix(a, "/"):
			names = append(names, a)
		}
	}
	if len(names) != 2 {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	src, dst := p.abs(names[0]), p.abs(names[1])
	h := p.h
	h.mu.Lock()
	f := h.fs.file(src)
	if f == nil {
		h.mu.Unlock()
		p.write(errw, p.loc().text("nofile")+"\r\n")
		p.errorlevel = 1
		return
	}
	if h.fs.isDir(dst) {
		dst = strings.TrimSuffix(dst, `\`) + `\` + baseName(f.path)
	}
	exists := h.fs.file(dst) != nil && normPath(dst) != normPath(src)
	h.mu.Unlock()
	if exists && !overwrite {
		p.write(out, "Overwrite "+dst+"? (Yes/No/All): ") // [NC]
		if !readYes(p.stdin) {
			p.write(out, "\r\n        0 file(s) moved.\r\n")
			return
		}
	}
	h.mu.Lock()
	if h.fileInUseLocked(src) {
		h.mu.Unlock()
		p.write(errw, "The process cannot access the file because it is being used by another process.\r\n")
		p.errorlevel = 1
		return
	}
	h.fs.remove(src)
	h.fs.remove(dst)
	f.path = dst
	h.fs.put(f)
	p.wroteLocked()
	h.mu.Unlock()
	p.write(out, "        1 file(s) moved.\r\n")
	p.errorlevel = 0
}

// builtinCall runs another batch file and returns to the caller.
func (p *proc) builtinCall(args string, out, errw *stream) {
	name, rest := splitCommand(args)
	if strings.HasPrefix(name, ":") {
		p.write(errw, "Invalid attempt to call batch label outside of batch script.\r\n")
		p.errorlevel = 1
		return
	}
	saved := p.batch
	p.errorlevel = p.runProgram(name, rest, out, errw)
	p.batch = saved
}

func (p *proc) builtinGoto(args string, errw *stream) {
	label := strings.TrimPrefix(strings.TrimSpace(args), ":")
	if f := strings.Fields(label); len(f) > 0 {
		label = f[0]
	}
	if p.batch == nil {
		return
	}
	if strings.EqualFold(label, "eof") {
		p.batch.done = true
		return
	}
	for i, l := range p.batch.lines {
		t := strings.TrimLeft(l, " \t")
		if strings.HasPrefix(t, ":") {
			lab := strings.TrimPrefix(t, ":")
			if f := strings.Fields(lab); len(f) > 0 && strings.EqualFold(f[0], label) {
				p.batch.pc = i + 1
				return
			}
		}
	}
	p.write(errw, "The system cannot find the batch label specified - "+label+"\r\n")
	p.batch.done = true
	p.errorlevel = 1
}

// runBatch executes a batch file's lines.
func (p *proc) runBatch(path string, content []byte, args []string, out, errw *stream) int {
	text := decodeCP(p.loc().oem, content)
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	b := &batchCtx{lines: lines, args: append([]string{path}, args...)}
	saved, savedEcho := p.batch, p.echo
	p.batch = b
	p.echo = true
	envDepth := len(p.envStack)
	for b.pc < len(b.lines) && !b.done && !p.exiting && p.ctx.Err() == nil {
		line := b.lines[b.pc]
		b.pc++
		// a line ending inside an open parenthesis block continues on the next lines
		for parenOpen(line) && b.pc < len(b.lines) {
			line += "\n" + b.lines[b.pc]
			b.pc++
		}
		t := strings.TrimLeft(line, " \t")
		if t == "" || strings.HasPrefix(t, ":") {
			continue
		}
		expanded := p.expandPercent(line)
		if p.echo && !strings.HasPrefix(strings.TrimLeft(expanded, " \t"), "@") {
			p.write(out, "\r\n"+p.cwd+">"+strings.TrimSpace(expanded)+"\r\n")
		}
		p.runLine(expanded, out, errw)
	}
	// setlocal scopes end with the batch file
	for len(p.envStack) > envDepth {
		n := len(p.envStack)
		p.env, p.delayed = p.envStack[n-1], p.delayStack[n-1]
		p.envStack, p.delayStack = p.envStack[:n-1], p.delayStack[:n-1]
	}
	p.batch, p.echo = saved, savedEcho
	return p.errorlevel
}

// parenOpen reports whether a line leaves a parenthesis block open.
func parenOpen(line string) bool {
	depth := 0
	inQ := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '^':
			i++
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		}
	}
	return depth > 0
}

// splitArgs splits program arguments as the Microsoft C runtime does.
func splitArgs(s string) []string {
	var out []string
	var sb strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			j := i
			for j < len(s) && s[j] == '\\' {
				j++
			}
			n := j - i
			if j < len(s) && s[j] == '"' {
				sb.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					sb.WriteByte('"')
					i = j
				} else {
					i = j - 1
				}
			} else {
				sb.WriteString(strings.Repeat(`\`, n))
				i = j - 1
			}
			have = true
		case c == '"':
			if inQ && i+1 < len(s) && s[i+1] == '"' {
				sb.WriteByte('"')
				i++
			} else {
				inQ = !inQ
			}
			have = true
		case (c == ' ' || c == '\t') && !inQ:
			if have {
				out = append(out, sb.String())
				sb.Reset()
				have = false
			}
		default:
			sb.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, sb.String())
	}
	return out
}
