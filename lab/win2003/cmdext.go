package win2003

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"time"
)

// set /a and for: the two cmd.exe features a generated batch file most often needs beyond the basics.

// setA evaluates `set /a` expressions: integers, + - * / %, parentheses, variables by name,
// assignments = += -= *= /= %=, several expressions separated by commas. On the command line (not
// in a batch) cmd prints the last value without a line end.
func (p *proc) setA(expr string, out, errw *stream) {
	expr = strings.Trim(strings.TrimSpace(expr), `"`)
	var last int64
	for _, part := range strings.Split(expr, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rhs, op := "", part, ""
		for _, o := range []string{"+=", "-=", "*=", "/=", "%=", "="} {
			if i := strings.Index(part, o); i > 0 && !strings.ContainsAny(part[:i], "+-*/%()") {
				name, rhs, op = strings.TrimSpace(part[:i]), part[i+len(o):], o
				break
			}
		}
		ev := &arith{s: rhs, p: p}
		v := ev.expr()
		ev.skip()
		if ev.bad || ev.i != len(ev.s) {
			p.write(errw, "Missing operand.\r\n")
			p.errorlevel = 1
			return
		}
		if ev.div0 {
			p.write(errw, "Divide by zero error.\r\n")
			p.errorlevel = 1073750993
			return
		}
		if name != "" {
			cur := p.varInt(name)
			switch op {
			case "+=":
				v = cur + v
			case "-=":
				v = cur - v
			case "*=":
				v = cur * v
			case "/=", "%=":
				if v == 0 {
					p.write(errw, "Divide by zero error.\r\n")
					p.errorlevel = 1073750993
					return
				}
				if op == "/=" {
					v = cur / v
				} else {
					v = cur % v
				}
			}
			p.env.set(name, strconv.FormatInt(int64(int32(v)), 10))
		}
		last = int64(int32(v))
	}
	if p.batch == nil {
		p.write(out, strconv.FormatInt(last, 10))
	}
}

func (p *proc) varInt(name string) int64 {
	v, _ := p.lookupVar(name)
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 0, 64)
	return n
}

type arith struct {
	s    string
	i    int
	p    *proc
	bad  bool
	div0 bool
}

func (a *arith) skip() {
	for a.i < len(a.s) && (a.s[a.i] == ' ' || a.s[a.i] == '\t') {
		a.i++
	}
}

func (a *arith) expr() int64 {
	v := a.term()
	for {
		a.skip()
		if a.i >= len(a.s) || (a.s[a.i] != '+' && a.s[a.i] != '-') {
			return v
		}
		op := a.s[a.i]
		a.i++
		w := a.term()
		if op == '+' {
			v += w
		} else {
			v -= w
		}
	}
}

func (a *arith) term() int64 {
	v := a.factor()
	for {
		a.skip()
		if a.i >= len(a.s) || !strings.ContainsRune("*/%", rune(a.s[a.i])) {
			return v
		}
		op := a.s[a.i]
		a.i++
		w := a.factor()
		switch {
		case op == '*':
			v *= w
		case w == 0:
			a.div0 = true
		case op == '/':
			v /= w
		default:
			v %= w
		}
	}
}

func (a *arith) factor() int64 {
	a.skip()
	if a.i >= len(a.s) {
		a.bad = true
		return 0
	}
	switch c := a.s[a.i]; {
	case c == '(':
		a.i++
		v := a.expr()
		a.skip()
		if a.i >= len(a.s) || a.s[a.i] != ')' {
			a.bad = true
			return 0
		}
		a.i++
		return v
	case c == '-':
		a.i++
		return -a.factor()
	case c == '+':
		a.i++
		return a.factor()
	case c >= '0' && c <= '9':
		j := a.i
		for j < len(a.s) && (a.s[j] >= '0' && a.s[j] <= '9' || a.s[j] == 'x' || a.s[j] >= 'a' && a.s[j] <= 'f' || a.s[j] >= 'A' && a.s[j] <= 'F') {
			j++
		}
		n, err := strconv.ParseInt(a.s[a.i:j], 0, 64)
		if err != nil {
			a.bad = true
		}
		a.i = j
		return n
	default:
		j := a.i
		for j < len(a.s) && !strings.ContainsRune(" \t+-*/%()", rune(a.s[j])) {
			j++
		}
		if j == a.i {
			a.bad = true
			return 0
		}
		name := a.s[a.i:j]
		a.i = j
		return a.p.varInt(name)
	}
}

// ---------- for ----------

// forNode is a parsed FOR command: the header and the body text, substituted and parsed per item.
type forNode struct {
	mode    string // "", "/f", "/l", "/d"
	options string
	varName string // the letter after % (case-sensitive)
	list    string // the text inside in ( )
	body    string
}

// parseFor parses `for [/f ["options"]|/l|/d] %x in (list) do command`.
func (ps *parser) parseFor(depth int) *cmdNode {
	start := ps.i
	ps.i += 3
	fn := &forNode{}
	for {
		tok, ok := ps.nextToken()
		if !ok {
			ps.i = len(ps.s)
			return &cmdNode{text: ps.s[start:]}
		}
		lt := strings.ToLower(tok)
		switch {
		case lt == "/f" || lt == "/l" || lt == "/d" || lt == "/r":
			fn.mode = lt
			continue
		case strings.HasPrefix(tok, `"`) && fn.varName == "":
			fn.options = strings.Trim(tok, `"`)
			continue
		case strings.HasPrefix(tok, "%") && len(tok) >= 2:
			fn.varName = tok[len(tok)-1:]
			continue
		case lt == "in":
		default:
			ps.i = len(ps.s)
			return &cmdNode{text: ps.s[start:]}
		}
		break
	}
	for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t') {
		ps.i++
	}
	if ps.i >= len(ps.s) || ps.s[ps.i] != '(' {
		ps.i = len(ps.s)
		return &cmdNode{text: ps.s[start:]}
	}
	ps.i++
	ls := ps.i
	inQ, inSQ := false, false
	for ps.i < len(ps.s) {
		c := ps.s[ps.i]
		if c == '"' && !inSQ {
			inQ = !inQ
		} else if c == '\'' && !inQ {
			inSQ = !inSQ
		} else if c == ')' && !inQ && !inSQ {
			break
		}
		ps.i++
	}
	fn.list = ps.s[ls:min(ps.i, len(ps.s))]
	ps.i++
	if tok, ok := ps.nextToken(); !ok || !strings.EqualFold(tok, "do") {
		ps.i = len(ps.s)
		return &cmdNode{text: ps.s[start:]}
	}
	for ps.i < len(ps.s) && (ps.s[ps.i] == ' ' || ps.s[ps.i] == '\t') {
		ps.i++
	}
	bs := ps.i
	if ps.i < len(ps.s) && ps.s[ps.i] == '(' {
		d := 0
		inQ := false
		for ps.i < len(ps.s) {
			c := ps.s[ps.i]
			if c == '"' {
				inQ = !inQ
			} else if !inQ && c == '(' {
				d++
			} else if !inQ && c == ')' {
				d--
				if d == 0 {
					ps.i++
					break
				}
			}
			ps.i++
		}
	} else {
		// the body runs to the end of the line (or of the enclosing block)
		sub := &parser{s: ps.s, i: ps.i}
		sub.parseSeq(depth)
		ps.i = sub.i
	}
	fn.body = ps.s[bs:ps.i]
	return &cmdNode{forN: fn}
}

func (p *proc) runFor(fn *forNode, out, errw *stream) {
	if fn.varName == "" {
		p.write(errw, p.loc().text("syntax")+"\r\n")
		p.errorlevel = 1
		return
	}
	run := func(vals map[string]string) bool {
		p.runLine(p.substFor(fn.body, vals), out, errw)
		return !p.stop()
	}
	list := p.expandBang(fn.list)
	switch fn.mode {
	case "/l":
		f := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(f) != 3 {
			return
		}
		a, _ := strconv.Atoi(f[0])
		st, _ := strconv.Atoi(f[1])
		b, _ := strconv.Atoi(f[2])
		for i := a; (st > 0 && i <= b) || (st < 0 && i >= b); i += st {
			if !run(map[string]string{fn.varName: strconv.Itoa(i)}) {
				return
			}
		}
	case "/f":
		p.runForF(fn, list, run, errw)
	default:
		for _, item := range splitArgsKeepQuotes(list) {
			for _, v := range p.expandFileSet(item) {
				if !run(map[string]string{fn.varName: v}) {
					return
				}
			}
		}
	}
}

// expandFileSet turns one item of a FOR set into its values: an item with * or ? names the
// files (not folders) that match, in the folder's order, as typed with the file's name; any
// other item is itself. Nothing matches in a missing folder (for /?).
func (p *proc) expandFileSet(item string) []string {
	unq := strings.Trim(item, `"`)
	if !strings.ContainsAny(unq, "*?") {
		return []string{item}
	}
	q := ""
	if strings.HasPrefix(item, `"`) {
		q = `"`
	}
	prefix := ""
	if i := strings.LastIndexAny(unq, `\:`); i >= 0 {
		prefix = unq[:i+1]
	}
	p.h.mu.Lock()
	files := p.h.fs.glob(p.abs(unq))
	p.h.mu.Unlock()
	var out []string
	for _, f := range files {
		out = append(out, q+prefix+baseName(f.path)+q)
	}
	return out
}

// substFor replaces FOR variables in a command: %X by the value, %~[modifiers]X by the parts
// the modifiers name (for /?): ~ removes quotes; f full path, d drive, p path, n name,
// x extension, s short name (the same here), a attributes, t date and time, z size. With
// several, the attributes, time and size come first, space-separated, then the path parts.
func (p *proc) substFor(body string, vals map[string]string) string {
	var sb strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] != '%' || i+1 >= len(body) {
			sb.WriteByte(body[i])
			continue
		}
		if v, ok := vals[body[i+1:i+2]]; ok {
			sb.WriteString(v)
			i++
			continue
		}
		if body[i+1] != '~' {
			sb.WriteByte('%')
			continue
		}
		j := i + 2
		for j < len(body) && strings.IndexByte("fdpnxsatz", body[j]) >= 0 {
			j++
		}
		mods, name := body[i+2:j], ""
		if j < len(body) {
			name = body[j : j+1]
		}
		if _, ok := vals[name]; !ok && mods != "" {
			// the variable's letter is itself a modifier letter: %~nxf with variable f
			mods, name, j = mods[:len(mods)-1], mods[len(mods)-1:], j-1
		}
		v, ok := vals[name]
		if !ok {
			sb.WriteByte('%')
			continue
		}
		sb.WriteString(p.forModifiers(strings.Trim(v, `"`), mods))
		i = j
	}
	return sb.String()
}

func (p *proc) forModifiers(v, mods string) string {
	if mods == "" {
		return v
	}
	full := p.abs(v)
	h := p.h
	h.mu.Lock()
	f := h.fs.file(full)
	var size int64
	var mtime time.Time
	if f != nil {
		size, mtime, full = f.size, f.mtime, f.path
	}
	loc := h.zone()
	h.mu.Unlock()
	var head []string
	if f != nil {
		if strings.Contains(mods, "a") {
			head = append(head, "--a------") // archive set, as a file a program wrote [I]
		}
		if strings.Contains(mods, "t") {
			head = append(head, mtime.In(loc).Format("01/02/2006 03:04 PM"))
		}
		if strings.Contains(mods, "z") {
			head = append(head, strconv.FormatInt(size, 10))
		}
	}
	dir, name := full[:strings.LastIndex(full, `\`)+1], baseName(full)
	ext := ""
	if k := strings.LastIndex(name, "."); k >= 0 {
		name, ext = name[:k], name[k:]
	}
	var path string
	switch {
	case !strings.ContainsAny(mods, "fdpnxsatz"):
		path = v // %~X: the value without its quotes
	case strings.Contains(mods, "f") || !strings.ContainsAny(mods, "dpnx") && strings.Contains(mods, "s"):
		path = full // short names are the long ones here
	default:
		if strings.Contains(mods, "d") {
			path += full[:2]
		}
		if strings.Contains(mods, "p") {
			path += dir[2:]
		}
		if strings.Contains(mods, "n") {
			path += name
		}
		if strings.Contains(mods, "x") {
			path += ext
		}
	}
	if path != "" {
		head = append(head, path)
	}
	return strings.Join(head, " ")
}

func splitArgsKeepQuotes(s string) []string {
	var out []string
	var sb strings.Builder
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQ = !inQ
		}
		if !inQ && (c == ' ' || c == '\t' || c == ',' || c == ';') {
			if sb.Len() > 0 {
				out = append(out, sb.String())
				sb.Reset()
			}
			continue
		}
		sb.WriteByte(c)
	}
	if sb.Len() > 0 {
		out = append(out, sb.String())
	}
	return out
}

func (p *proc) runForF(fn *forNode, list string, run func(map[string]string) bool, errw *stream) {
	delims, eol, skip := " \t", ";", 0
	tokens := []int{1}
	rest := false
	usebackq := false
	opts := fn.options
	for opts != "" {
		opts = strings.TrimLeft(opts, " ")
		key, val, _ := strings.Cut(opts, "=")
		lk := strings.ToLower(strings.TrimSpace(key))
		if strings.HasPrefix(lk, "usebackq") {
			usebackq = true
			opts = opts[len("usebackq"):]
			continue
		}
		switch lk {
		case "delims":
			// delims runs to the end or to the next option keyword after a space
			end := len(val)
			for _, kw := range []string{" tokens=", " skip=", " eol=", " usebackq"} {
				if i := strings.Index(strings.ToLower(val), kw); i >= 0 && i < end {
					end = i
				}
			}
			delims, opts = val[:end], val[end:]
			continue
		case "tokens", "skip", "eol":
			v, after, _ := strings.Cut(val, " ")
			opts = after
			switch lk {
			case "skip":
				skip, _ = strconv.Atoi(v)
			case "eol":
				eol = v
			default:
				tokens = nil
				if strings.HasSuffix(v, "*") {
					rest = true
					v = strings.TrimSuffix(v, "*")
				}
				for _, t := range strings.Split(v, ",") {
					if a, b, ok := strings.Cut(t, "-"); ok {
						x, _ := strconv.Atoi(a)
						y, _ := strconv.Atoi(b)
						for i := x; i <= y; i++ {
							tokens = append(tokens, i)
						}
					} else if n, err := strconv.Atoi(t); err == nil {
						tokens = append(tokens, n)
					}
				}
			}
			continue
		}
		break
	}
	src := strings.TrimSpace(list)
	// unquote drops the opening quote and, when present, the closing one.
	unquote := func(q string) string { return strings.TrimSuffix(src[1:], q) }
	var text string
	switch {
	case (!usebackq && strings.HasPrefix(src, "'")) || (usebackq && strings.HasPrefix(src, "`")):
		cmdline := unquote(src[:1])
		var buf bytes.Buffer
		child := p.child()
		child.stdin = nil
		child.runTop(cmdline, &stream{w: &buf, kind: streamPipe}, errw)
		text = decodeCP(p.loc().oem, buf.Bytes())
	case (!usebackq && strings.HasPrefix(src, `"`)) || (usebackq && strings.HasPrefix(src, `'`)):
		text = unquote(src[:1])
	default:
		for _, name := range splitArgs(src) {
			data, ok := p.readFileText(name)
			if !ok {
				p.write(errw, p.loc().text("nofile")+"\r\n")
				p.errorlevel = 1
				return
			}
			text += decodeCP(p.loc().oem, data)
		}
	}
	// Lines end at LF with one CR removed: wmic's CR CR LF leaves a CR at the end of each line and
	// makes its blank lines non-empty, the well-known quirk of for /f over wmic output [I].
	lines := strings.Split(text, "\n")
	for _, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if eol != "" && strings.HasPrefix(line, eol[:1]) {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(delims, r) })
		if delims == "" {
			fields = []string{line}
		}
		vals := map[string]string{}
		letter := fn.varName[0]
		for i, t := range tokens {
			if t-1 < len(fields) {
				vals[string(letter+byte(i))] = fields[t-1]
			}
		}
		if rest {
			last := 0
			if len(tokens) > 0 {
				last = tokens[len(tokens)-1]
			}
			// the remainder after the last token, delimiters inside kept
			rem := line
			for k := 0; k < last && rem != ""; k++ {
				rem = strings.TrimLeft(rem, delims)
				if i := strings.IndexAny(rem, delims); i >= 0 {
					rem = rem[i:]
				} else {
					rem = ""
				}
			}
			vals[string(letter+byte(len(tokens)))] = strings.TrimLeft(rem, delims)
		}
		if len(vals) == 0 {
			continue
		}
		if !run(vals) {
			return
		}
	}
}

// ---------- dir ----------

// builtinDir lists a directory: `dir /b` names only, otherwise the 2003 layout with sizes [I].
func (p *proc) builtinDir(args string, out, errw *stream) {
	bare := false
	target := p.cwd
	for _, a := range splitArgs(args) {
		switch {
		case strings.EqualFold(a, "/b"):
			bare = true
		case strings.HasPrefix(a, "/"):
		default:
			target = p.abs(a)
		}
	}
	h := p.h
	h.mu.Lock()
	var files []*file
	var dirs []string
	single := h.fs.file(target)
	dir := normPath(target)
	if single != nil {
		files = []*file{single}
		dir = normPath(target[:strings.LastIndex(target, `\`)])
	} else if h.fs.isDir(target) {
		prefix := dir
		if !strings.HasSuffix(prefix, `\`) {
			prefix += `\`
		}
		for _, k := range sortedKeys(h.fs.files) {
			if strings.HasPrefix(k, prefix) && !strings.Contains(k[len(prefix):], `\`) {
				files = append(files, h.fs.files[k])
			}
		}
		for k := range h.fs.dirs {
			if strings.HasPrefix(k, prefix) && len(k) > len(prefix) && !strings.Contains(k[len(prefix):], `\`) {
				dirs = append(dirs, k[len(prefix):])
			}
		}
	} else {
		h.mu.Unlock()
		p.write(errw, "File Not Found\r\n")
		p.errorlevel = 1
		return
	}
	free := h.freeLocked()
	loc := h.zone()
	h.mu.Unlock()
	var sb strings.Builder
	sort.Strings(dirs)
	if bare {
		for _, d := range dirs {
			sb.WriteString(d + "\r\n")
		}
		for _, f := range files {
			sb.WriteString(f.path[strings.LastIndex(f.path, `\`)+1:] + "\r\n")
		}
		p.write(out, sb.String())
		return
	}
	stamp := func(f *file) string { return f.mtime.In(loc).Format("01/02/2006  03:04 PM") }
	sb.WriteString(" Volume in drive " + strings.ToUpper(target[:1]) + " has no label.\r\n Volume Serial Number is A4C3-E1F2\r\n\r\n")
	sb.WriteString(" Directory of " + displayDir(target, single != nil) + "\r\n\r\n")
	dirStamp := h.clock.Now().In(loc).Format("01/02/2006  03:04 PM")
	if single == nil && len(dir) > 3 {
		dirs = append([]string{".", ".."}, dirs...)
	}
	for _, d := range dirs {
		sb.WriteString(dirStamp + "    <DIR>          " + d + "\r\n")
	}
	var total int64
	for _, f := range files {
		sb.WriteString(stamp(f) + " " + padLeft(thousands(f.size), 17) + " " + f.path[strings.LastIndex(f.path, `\`)+1:] + "\r\n")
		total += f.size
	}
	sb.WriteString(padLeft(strconv.Itoa(len(files)), 16) + " File(s) " + padLeft(thousands(total), 14) + " bytes\r\n")
	sb.WriteString(padLeft(strconv.Itoa(len(dirs)), 16) + " Dir(s) " + padLeft(thousands(free), 15) + " bytes free\r\n")
	p.write(out, sb.String())
}

func displayDir(target string, isFile bool) string {
	if isFile {
		return target[:strings.LastIndex(target, `\`)]
	}
	return strings.TrimSuffix(target, `\`)
}

func padLeft(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat(" ", n-len(s)) + s
}

// thousands formats n with comma thousands separators, as dir and tasklist print sizes.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
