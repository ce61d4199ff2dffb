package win2003

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
)

// program is an executable of the simulated host.
type program func(p *proc, name string, args []string, raw string, out, errw *stream) int

// programFor returns the program of a system32 executable's base name, or nil.
func programFor(base string) program {
	switch base {
	case "cmd":
		return progCmd
	case "reg":
		return progReg
	case "wmic":
		return progWmic
	case "sc":
		return progSc
	case "net", "net1":
		return progNet
	case "schtasks":
		return progSchtasks
	case "shutdown":
		return progShutdown
	case "tasklist":
		return progTasklist
	case "hostname":
		return progHostname
	case "findstr":
		return progFindstr
	case "ping":
		return progPing
	case "certutil":
		return progCertutil
	case "cscript", "wscript":
		return progCscript
	case "powershell":
		return progPowershell
	case "iisreset":
		return progIisreset
	}
	return nil
}

// Memory in MB a process commits as it starts, counted against a WinRM shell's
// MaxMemoryPerShellMB. Unconfirmed figures [NC]: only their order matters, far below the 150 MB
// quota except for PowerShell's .NET runtime, certutil's decode buffers and the SP2 installer.
const (
	memCmd        = 2
	memProgram    = 3
	memPowerShell = 45
	memScript     = 6
)

func programMemory(base string) int {
	switch base {
	case "cmd":
		return memCmd
	case "powershell":
		return memPowerShell
	case "cscript", "wscript":
		return memScript
	}
	return memProgram
}

// quotaText is what a program prints when the shell's job refuses it: ERROR_NOT_ENOUGH_QUOTA
// (1816) for a process past MaxProcessesPerShell [I]; ERROR_COMMITMENT_LIMIT (1455) for memory
// past MaxMemoryPerShellMB, the text ansible/ansible#39327 shows from a command past the quota.
func quotaText(err error) string {
	if errors.Is(err, wsman.ErrProcessQuota) {
		return "Not enough quota is available to process this command."
	}
	return "The paging file is too small for this operation to complete."
}

// spawn runs a program as a process of the shell's job, which may refuse it.
func (p *proc) spawn(base string, errw *stream, run func() int) int {
	end, err := p.job.Start(programMemory(base))
	if err != nil {
		p.write(errw, quotaText(err)+"\r\n")
		return 1
	}
	defer end()
	return run()
}

// runProgram resolves and runs an external command; it returns the exit code.
func (p *proc) runProgram(name, rest string, out, errw *stream) int {
	args := splitArgs(rest)
	typed := name
	lname := strings.ToLower(strings.Trim(name, `"`))
	if strings.ContainsAny(lname, `\:`) {
		return p.runPath(typed, p.abs(lname), args, rest, out, errw)
	}
	base := strings.TrimSuffix(strings.TrimSuffix(lname, ".exe"), ".com")
	if prog := programFor(base); prog != nil && p.programInstalled(base) {
		return p.spawn(base, errw, func() int { return prog(p, base, args, rest, out, errw) })
	}
	// the current directory, then the PATH (system32, the system root), with PATHEXT
	p.h.mu.Lock()
	var found string
	sr := p.h.spec.SystemRoot
search:
	for _, dir := range []string{"", sr + `\system32\`, sr + `\`} {
		for _, ext := range []string{"", ".exe", ".cmd", ".bat", ".vbs"} {
			path := p.abs(lname + ext)
			if dir != "" {
				path = dir + lname + ext
			}
			if f := p.h.fs.file(path); f != nil && (f.c != nil || ext == ".vbs" || strings.HasSuffix(lname, ".vbs")) {
				found = path
				break search
			}
		}
	}
	p.h.mu.Unlock()
	if found != "" {
		return p.runPath(typed, found, args, rest, out, errw)
	}
	return p.notRecognized(typed, errw)
}

func (p *proc) programInstalled(base string) bool {
	if base == "powershell" {
		return p.h.spec.PowerShell
	}
	return true
}

func (p *proc) notRecognized(typed string, errw *stream) int {
	l := p.loc()
	p.write(errw, fmt.Sprintf(l.text("notrecognized1"), typed)+"\r\n"+l.text("notrecognized2")+"\r\n")
	return 9009
}

// runPath runs a file by its full path. An .exe is what its content is: one of the lab's
// installer images, a system program in the system folder, or nothing Windows can run.
func (p *proc) runPath(typed, path string, args []string, raw string, out, errw *stream) int {
	h := p.h
	h.mu.Lock()
	f := h.fs.file(path)
	var data []byte
	var img *InstallerImage
	if f != nil {
		data = f.data()
		path = f.path
		img = h.imageOfLocked(f)
	}
	h.mu.Unlock()
	if f == nil {
		return p.notRecognized(typed, errw)
	}
	lower := strings.ToLower(path)
	base := lower[strings.LastIndex(lower, `\`)+1:]
	switch {
	case strings.HasSuffix(lower, ".cmd") || strings.HasSuffix(lower, ".bat"):
		inBatch := p.batch != nil
		code := p.runBatch(path, data, args, out, errw)
		if inBatch {
			// running a batch from a batch without CALL does not return
			p.batch.done = true
		}
		return code
	case strings.HasSuffix(lower, ".vbs") || strings.HasSuffix(lower, ".js"):
		return p.spawn("cscript", errw, func() int {
			return progCscript(p, "cscript", append([]string{path}, args...), path+" "+raw, out, errw)
		})
	case img != nil:
		return p.runInstaller(path, img, args, errw)
	}
	b := strings.TrimSuffix(strings.TrimSuffix(base, ".exe"), ".com")
	if prog := programFor(b); prog != nil && f.c == nil && strings.HasPrefix(lower, normPath(h.spec.SystemRoot)) {
		return p.spawn(b, errw, func() int { return prog(p, b, args, raw, out, errw) })
	}
	// docs/facts.md §2.3 [I]: an image Windows cannot load (ERROR_BAD_EXE_FORMAT).
	p.write(errw, typed+" is not a valid Win32 application.\r\n")
	return 193
}

// ---------- cmd ----------

func progCmd(p *proc, _ string, args []string, raw string, out, errw *stream) int {
	child := p.child()
	rest := raw
	for {
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, "/") || len(rest) < 2 {
			break
		}
		sw := rest
		if i := strings.IndexAny(rest, " \t"); i >= 0 {
			sw = rest[:i]
		}
		lsw := strings.ToLower(sw)
		switch {
		case lsw == "/c" || lsw == "/k":
			body := strings.TrimLeft(rest[len(sw):], " \t")
			body = p.stripCmdQuotes(body)
			code := child.runTop(body, out, errw)
			return code
		case strings.HasPrefix(lsw, "/v:on"):
			child.delayed = true
		case strings.HasPrefix(lsw, "/v:off"):
			child.delayed = false
		case strings.HasPrefix(lsw, "/c") || strings.HasPrefix(lsw, "/k"):
			// `/c"..."`: the switch glued to its argument
			body := p.stripCmdQuotes(rest[2:])
			return child.runTop(body, out, errw)
		}
		rest = rest[len(sw):]
	}
	// An interactive cmd with no /c reads commands from stdin.
	if p.stdin != nil {
		data, _ := io.ReadAll(p.stdin)
		for _, line := range strings.Split(strings.ReplaceAll(decodeCP(p.loc().oem, data), "\r\n", "\n"), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			child.runLine(child.expandPercent(line), out, errw)
			if child.exiting {
				return child.exitCode
			}
		}
	}
	return child.errorlevel
}

// stripCmdQuotes applies cmd /c's quote rule: when the text starts with a quote, the first and the
// last quote are removed (the "old behaviour" of cmd /?), unless exactly two quotes enclose an
// existing executable's name with no special characters.
func (p *proc) stripCmdQuotes(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	if strings.Count(s, `"`) == 2 && strings.HasSuffix(strings.TrimRight(s, " \t"), `"`) {
		inner := strings.TrimRight(s, " \t")
		inner = inner[1 : len(inner)-1]
		if !strings.ContainsAny(inner, "&<>()@^|") && strings.ContainsAny(inner, " \t") {
			p.h.mu.Lock()
			exists := p.h.fs.file(p.abs(inner)) != nil
			p.h.mu.Unlock()
			if exists {
				return s // rule 1 of cmd /?: the quotes stay
			}
		}
	}
	j := strings.LastIndexByte(s, '"')
	if j == 0 {
		return s[1:]
	}
	return s[1:j] + s[j+1:]
}

// ---------- hostname ----------

func progHostname(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	if len(args) > 0 {
		p.write(errw, "sethostname: Use the Network Control Panel Applet to set hostname.\r\n")
		return 1
	}
	p.write(out, p.h.spec.ComputerName+"\r\n")
	return 0
}

// ---------- reg ----------

// progReg is reg.exe 3.0 (XP/2003): query, add, delete. Its error texts ("Error:  " with two
// spaces, no final period) are strings of an XP-era reg.exe (banner "Console Registry Tool for
// Windows - version", usage "REG QUERY KeyName [/v ValueName | /ve] [/s]") as a public YARA rule
// lists them (repository not identified); a console capture quoted in a 2011 blog post on Web Deploy
// shows the missing-key line the same way. Which text goes with which mistake and the line layout
// are inferred [I]. Exit code 1 on any failure.
func progReg(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	l := p.loc()
	if len(args) < 2 {
		p.write(errw, "Error:  Too few command-line parameters\r\n")
		return 1
	}
	op := strings.ToLower(args[0])
	keyPath := args[1]
	if root, rest, _ := strings.Cut(keyPath, `\`); p.system && (strings.EqualFold(root, "HKCU") || strings.EqualFold(root, "HKEY_CURRENT_USER")) {
		keyPath = `HKU\.DEFAULT\` + rest // SYSTEM's HKCU is the .DEFAULT hive
	}
	var valName *string
	var typ, data string
	force, all := false, false
	typ = "REG_SZ"
	for i := 2; i < len(args); i++ {
		a := strings.ToLower(args[i])
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch a {
		case "/v":
			v := next()
			valName = &v
		case "/ve":
			v := ""
			valName = &v
		case "/t":
			typ = strings.ToUpper(next())
		case "/d":
			data = next()
		case "/f":
			force = true
		case "/s":
			all = true
		case "/va":
			all = true
		case "/se":
			next()
		default:
			p.write(errw, "Error:  Invalid command-line parameters\r\n")
			return 1
		}
	}
	h := p.h
	switch op {
	case "query":
		h.mu.Lock()
		var sb strings.Builder
		code := h.regQueryLocked(&sb, keyPath, valName, all)
		h.mu.Unlock()
		if code != 0 {
			p.write(errw, l.text("regnotfound")+"\r\n")
			return code
		}
		p.write(out, sb.String())
		return 0
	case "add":
		if _, ok := canonKey(keyPath); !ok {
			p.write(errw, "Error:  Invalid command-line parameters\r\n") // [I] for a bad root key
			return 1
		}
		name := ""
		if valName != nil {
			name = *valName
		}
		h.mu.Lock()
		_, exists := h.reg.get(keyPath, name)
		h.mu.Unlock()
		if exists && !force && valName != nil {
			p.write(out, fmt.Sprintf("Value %s exists, overwrite(Y/N)? ", name))
			if !readYes(p.stdin) {
				p.write(out, "The operation was cancelled by the user.\r\n") // [NC]
				return 1
			}
		}
		h.mu.Lock()
		p.wroteLocked()
		if valName == nil {
			h.reg.ensure(keyPath)
		} else {
			if typ == "REG_MULTI_SZ" {
				data = strings.ReplaceAll(data, `\0`, "\x00")
			}
			h.reg.set(keyPath, name, typ, data)
		}
		h.mu.Unlock()
		p.write(out, "\r\n"+l.text("regok")+"\r\n\r\n")
		return 0
	case "delete":
		h.mu.Lock()
		k := h.reg.key(keyPath)
		h.mu.Unlock()
		if k == nil {
			p.write(errw, l.text("regnotfound")+"\r\n")
			return 1
		}
		if !force {
			p.write(out, "Permanently delete the registry value? (Y/N) ") // [NC]
			if !readYes(p.stdin) {
				return 1
			}
		}
		h.mu.Lock()
		p.wroteLocked()
		ok := true
		switch {
		case valName != nil:
			ok = h.reg.deleteValue(keyPath, *valName)
		case all:
			k.values = nil
		default:
			h.reg.deleteKey(keyPath)
		}
		h.mu.Unlock()
		if !ok {
			p.write(errw, l.text("regnotfound")+"\r\n")
			return 1
		}
		p.write(out, "\r\n"+l.text("regok")+"\r\n\r\n")
		return 0
	}
	p.write(errw, "Error:  Bad operation.  Use /? for help\r\n")
	return 1
}

func readYes(r io.Reader) bool {
	if r == nil {
		return false
	}
	var b [1]byte
	n, _ := r.Read(b[:])
	return n == 1 && (b[0] == 'y' || b[0] == 'Y')
}

// regQueryLocked renders reg.exe 3.0 output (docs/facts.md §5.1, checks/testdata/samples/reg-query-regexe-v3*.txt).
func (h *Host) regQueryLocked(sb *strings.Builder, keyPath string, valName *string, recurse bool) int {
	k := h.reg.key(keyPath)
	if k == nil {
		return 1
	}
	if h.quirks.RegLeadingBlankLine {
		sb.WriteString("\r\n")
	}
	sb.WriteString("! REG.EXE VERSION 3.0\r\n\r\n")
	if valName != nil {
		for _, v := range k.values {
			if strings.EqualFold(v.name, *valName) {
				sb.WriteString(k.path + "\r\n")
				sb.WriteString(regValueLine(v, h.quirks.RegSeparator))
				sb.WriteString("\r\n")
				return 0
			}
		}
		return 1
	}
	h.regQueryKey(sb, k, recurse)
	return 0
}

func (h *Host) regQueryKey(sb *strings.Builder, k *regKey, recurse bool) {
	sb.WriteString(k.path + "\r\n")
	for _, v := range k.values {
		sb.WriteString(regValueLine(v, h.quirks.RegSeparator))
	}
	sb.WriteString("\r\n")
	for _, sub := range h.reg.subkeys(k) {
		if recurse {
			h.regQueryKey(sb, h.reg.key(sub), true)
			continue
		}
		sb.WriteString(sub + "\r\n")
	}
}

// ---------- sc ----------

var scStates = map[int]string{1: "STOPPED", 2: "START_PENDING", 3: "STOP_PENDING", 4: "RUNNING"}

func (h *Host) scBlock(l *locale, typed string, s *service, state int, display bool, pid bool) string {
	var sb strings.Builder
	lab := func(i int) string { return fmt.Sprintf("        %-19s: ", l.scLabels[i]) }
	sb.WriteString(l.scLabels[0] + ": " + typed + "\r\n")
	if display {
		sb.WriteString("DISPLAY_NAME: " + s.display + "\r\n")
	}
	typ := "10  WIN32_OWN_PROCESS"
	if s.shareProcess {
		typ = "20  WIN32_SHARE_PROCESS"
	}
	// The control flags are unconfirmed too: whether IIS 6's W3SVC reports PAUSABLE is not settled
	// by any source (IIS 7.5's reports NOT_PAUSABLE).
	typeBlank, stateBlank := "", ""
	if h.quirks.ScTrailingBlanks {
		typeBlank, stateBlank = "  ", " "
	}
	sb.WriteString(lab(1) + typ + typeBlank + "\r\n")
	sb.WriteString(lab(2) + fmt.Sprintf("%d  %s", state, scStates[state]) + stateBlank + "\r\n")
	flags := "(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)"
	if state != 4 {
		flags = "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)"
	}
	sb.WriteString(strings.Repeat(" ", 32) + flags + "\r\n")
	sb.WriteString(lab(3) + "0  (0x0)\r\n")
	sb.WriteString(lab(4) + "0  (0x0)\r\n")
	sb.WriteString(lab(5) + "0x0\r\n")
	hint := "0x0"
	if state == 2 || state == 3 {
		hint = "0x7d0"
	}
	sb.WriteString(lab(6) + hint + "\r\n")
	if pid {
		sb.WriteString(fmt.Sprintf("        %-19s: %d\r\n", "PID", s.pid))
		sb.WriteString(fmt.Sprintf("        %-19s: \r\n", "FLAGS"))
	}
	return sb.String()
}

func progSc(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	l := p.loc()
	if len(args) > 0 && strings.HasPrefix(args[0], `\\`) {
		args = args[1:]
	}
	if len(args) == 0 {
		p.write(out, "DESCRIPTION:\r\n        SC is a command line program used for communicating with the\r\n        NT Service Controller and services.\r\n")
		return 0
	}
	op := strings.ToLower(args[0])
	notExist := func(fn string) int {
		p.write(out, fmt.Sprintf("[SC] %s FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", fn))
		return 1060
	}
	switch op {
	case "query", "queryex":
		h.mu.Lock()
		if len(args) < 2 || strings.Contains(args[1], "=") {
			var sb strings.Builder
			for _, s := range h.services {
				if s.running {
					sb.WriteString("\r\n" + h.scBlock(l, s.name, s, 4, true, op == "queryex"))
				}
			}
			h.mu.Unlock()
			p.write(out, sb.String())
			return 0
		}
		s := h.serviceLocked(args[1])
		if s == nil {
			h.mu.Unlock()
			return notExist("EnumQueryServicesStatus:OpenService")
		}
		state := 1
		if s.running {
			state = 4
		}
		txt := "\r\n" + h.scBlock(l, args[1], s, state, false, op == "queryex")
		h.mu.Unlock()
		p.write(out, txt)
		return 0
	case "start", "stop":
		if len(args) < 2 {
			// the first lines of sc's help for the verb [I]; the rest is not modelled
			desc := "Starts a service running."
			if op == "stop" {
				desc = "Sends a STOP control request to a service."
			}
			p.write(out, "DESCRIPTION:\r\n        "+desc+"\r\n")
			return 1
		}
		h.mu.Lock()
		s := h.serviceLocked(args[1])
		if s == nil {
			h.mu.Unlock()
			return notExist("OpenService")
		}
		if op == "start" {
			if s.running {
				h.mu.Unlock()
				p.write(out, "[SC] StartService FAILED 1056:\r\n\r\nAn instance of the service is already running.\r\n\r\n")
				return 1056
			}
			h.startServiceLocked(s)
			p.wroteLocked()
			txt := "\r\n" + h.scBlock(l, args[1], s, 2, false, true)
			h.mu.Unlock()
			p.write(out, txt)
			return 0
		}
		if !s.running {
			h.mu.Unlock()
			p.write(out, "[SC] ControlService FAILED 1062:\r\n\r\nThe service has not been started.\r\n\r\n")
			return 1062
		}
		h.stopServiceLocked(s)
		p.wroteLocked()
		txt := "\r\n" + h.scBlock(l, args[1], s, 3, false, false)
		h.mu.Unlock()
		p.write(out, txt)
		return 0
	}
	p.write(out, "[SC] This lab does not model \""+args[0]+"\".\r\n")
	return 1
}

func (h *Host) startServiceLocked(s *service) {
	now := h.clock.Now()
	h.settleLocked(now)
	if s.w3svc {
		if a := h.serviceLocked("IISADMIN"); a != nil && !a.running {
			a.running = true
			a.pid = h.newPIDLocked()
		}
	}
	s.running = true
	s.pid = h.newPIDLocked()
	if s.w3svc {
		h.startW3SVCPoolsLocked(now)
	}
}

func (h *Host) stopServiceLocked(s *service) {
	h.settleLocked(h.clock.Now())
	s.running = false
	s.pid = 0
	for _, d := range h.services {
		if d.running && strings.EqualFold(d.dependsOn, s.name) {
			h.stopServiceLocked(d)
		}
	}
	if s.w3svc {
		for _, p := range h.pools {
			h.stopPoolLocked(p)
		}
	}
}

// ---------- net ----------

func progNet(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	if len(args) == 0 {
		p.write(out, "The syntax of this command is:\r\n\r\n\r\nNET [ ACCOUNTS | COMPUTER | CONFIG | CONTINUE | FILE | GROUP | HELP |\r\n")
		return 1
	}
	op := strings.ToLower(args[0])
	if op != "start" && op != "stop" {
		p.write(errw, "The syntax of this command is:\r\n\r\n\r\nNET [ ACCOUNTS | COMPUTER | CONFIG | CONTINUE | FILE | GROUP | HELP |\r\n")
		return 1
	}
	if len(args) == 1 {
		if op == "stop" {
			p.write(errw, "The syntax of this command is:\r\n\r\n\r\nNET STOP\r\nservice\r\n\r\n")
			return 1
		}
		h.mu.Lock()
		var sb strings.Builder
		sb.WriteString("These Windows services are started:\r\n\r\n")
		for _, s := range h.services {
			if s.running {
				sb.WriteString("   " + s.display + "\r\n")
			}
		}
		sb.WriteString("\r\nThe command completed successfully.\r\n\r\n")
		h.mu.Unlock()
		p.write(out, sb.String())
		return 0
	}
	var words []string
	yes := false
	for _, a := range args[1:] {
		switch strings.ToLower(a) {
		case "/y", "/yes":
			yes = true
		case "/n", "/no":
		default:
			words = append(words, a)
		}
	}
	name := strings.Join(words, " ")
	h.mu.Lock()
	s := h.serviceLocked(name)
	if s == nil {
		for _, c := range h.services {
			if strings.EqualFold(c.display, name) {
				s = c
			}
		}
	}
	if s == nil {
		h.mu.Unlock()
		p.write(errw, "The service name is invalid.\r\n\r\nMore help is available by typing NET HELPMSG 2185.\r\n\r\n")
		return 2
	}
	if op == "start" {
		if s.running {
			h.mu.Unlock()
			p.write(errw, "The requested service has already been started.\r\n\r\nMore help is available by typing NET HELPMSG 2182.\r\n\r\n")
			return 2
		}
		h.startServiceLocked(s)
		p.wroteLocked()
		d := s.display
		h.mu.Unlock()
		p.write(out, "The "+d+" service is starting.\r\nThe "+d+" service was started successfully.\r\n\r\n")
		return 0
	}
	if !s.running {
		h.mu.Unlock()
		p.write(errw, "The "+s.display+" service is not started.\r\n\r\nMore help is available by typing NET HELPMSG 3521.\r\n\r\n")
		return 2
	}
	var deps []*service
	for _, d := range h.services {
		if d.running && strings.EqualFold(d.dependsOn, s.name) {
			deps = append(deps, d)
		}
	}
	h.mu.Unlock()
	if len(deps) > 0 {
		// The list and the question as KB969864's transcript of `net stop iisadmin /y` shows them
		// (docs/facts.md §4.3); without /y net reads the answer from stdin: no answer (NUL, or a
		// closed stdin) is the default N, and nothing is stopped [I].
		var sb strings.Builder
		sb.WriteString("The following services are dependent on the " + s.display + " service.\r\n")
		sb.WriteString("Stopping the " + s.display + " service will also stop these services.\r\n\r\n")
		for _, d := range deps {
			sb.WriteString("   " + d.display + "\r\n")
		}
		sb.WriteString("\r\n")
		p.write(out, sb.String())
		if !yes {
			p.write(out, "Do you want to continue this operation? (Y/N) [N]: ")
			if !readYes(p.stdin) {
				p.write(out, "\r\n")
				return 2
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range append(deps, s) {
		if d.running {
			h.stopServiceLocked(d)
			p.write(out, "The "+d.display+" service is stopping.\r\nThe "+d.display+" service was stopped successfully.\r\n\r\n")
		}
	}
	p.wroteLocked()
	return 0
}

// ---------- tasklist ----------

type procInfo struct {
	name string
	pid  int
	mem  int // KB
}

func (h *Host) processesLocked() []procInfo {
	ps := []procInfo{{"System Idle Process", 0, 16}, {"System", 4, 236}, {"smss.exe", 340, 412},
		{"csrss.exe", 388, 4012}, {"winlogon.exe", 412, 5200}, {"services.exe", 460, 3580}, {"lsass.exe", 472, 6412},
		{"svchost.exe", 644, 4632}, {"svchost.exe", 720, 5044}}
	for _, s := range h.services {
		if !s.running {
			continue
		}
		switch s.name {
		case "HTTPFilter": // hosted by lsass.exe
		case "IISADMIN":
			ps = append(ps, procInfo{"inetinfo.exe", s.pid, 9876})
		default:
			ps = append(ps, procInfo{"svchost.exe", s.pid, 18432})
		}
	}
	for _, p := range h.pools {
		if p.state == 2 && p.workerPID != 0 {
			ps = append(ps, procInfo{"w3wp.exe", p.workerPID, 14220})
		}
	}
	if h.installing {
		ps = append(ps, procInfo{"update.exe", 3120, 22100})
	}
	ps = append(ps, procInfo{"wmiprvse.exe", 2232, 6120}, procInfo{"cmd.exe", 2840, 1420})
	return ps
}

func progTasklist(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	var filterImage string
	csv, noHeader := false, false
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(args[i]) {
		case "/fi":
			if i+1 < len(args) {
				i++
				f := strings.Fields(args[i])
				if len(f) == 3 && strings.EqualFold(f[0], "imagename") && strings.EqualFold(f[1], "eq") {
					filterImage = f[2]
				}
			}
		case "/fo":
			if i+1 < len(args) {
				i++
				csv = strings.EqualFold(args[i], "csv")
			}
		case "/nh":
			noHeader = true
		}
	}
	h.mu.Lock()
	h.settleLocked(h.clock.Now())
	ps := h.processesLocked()
	h.mu.Unlock()
	var sel []procInfo
	for _, x := range ps {
		if filterImage == "" || strings.EqualFold(x.name, filterImage) {
			sel = append(sel, x)
		}
	}
	if len(sel) == 0 {
		// XP's wording, which 2003 shares [I]: a public script tests for this line on "Win XP" and for
		// "INFO: No tasks are running which match the specified criteria." on "Win 7"; an XP batch
		// file quotes it too (repositories not identified).
		p.write(out, "INFO: No tasks running with the specified criteria.\r\n")
		return 0
	}
	var sb strings.Builder
	if csv {
		if !noHeader {
			sb.WriteString(`"Image Name","PID","Session Name","Session#","Mem Usage"` + "\r\n")
		}
		for _, x := range sel {
			sb.WriteString(fmt.Sprintf("\"%s\",\"%d\",\"Console\",\"0\",\"%s K\"\r\n", x.name, x.pid, thousands(int64(x.mem))))
		}
	} else {
		if !noHeader {
			sb.WriteString("\r\n")
			sb.WriteString(fmt.Sprintf("%-25s %6s %-16s %8s %12s\r\n", "Image Name", "PID", "Session Name", "Session#", "Mem Usage"))
			sb.WriteString("========================= ====== ================ ======== ============\r\n")
		}
		for _, x := range sel {
			sb.WriteString(fmt.Sprintf("%-25s %6d %-16s %8d %12s\r\n", x.name, x.pid, "Console", 0, thousands(int64(x.mem))+" K"))
		}
	}
	p.write(out, sb.String())
	return 0
}

// ---------- findstr ----------

func progFindstr(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	fold, invert := false, false
	var pattern *string
	var files []string
	for _, a := range args {
		la := strings.ToLower(a)
		switch {
		case la == "/i":
			fold = true
		case la == "/v":
			invert = true
		case la == "/r" || la == "/b" || la == "/l" || la == "/n":
		case strings.HasPrefix(la, "/c:"):
			s := a[3:]
			pattern = &s
		case pattern == nil:
			s := a
			pattern = &s
		default:
			files = append(files, a)
		}
	}
	if pattern == nil {
		p.write(errw, "FINDSTR: Bad command line\r\n")
		return 2
	}
	match := func(line string) bool {
		pat := *pattern
		if pat == "^" || pat == "" || pat == "$" {
			return true
		}
		l := line
		if fold {
			l, pat = strings.ToLower(l), strings.ToLower(pat)
		}
		switch {
		case strings.HasPrefix(pat, "^"):
			return strings.HasPrefix(l, pat[1:])
		case strings.HasSuffix(pat, "$"):
			return strings.HasSuffix(l, pat[:len(pat)-1])
		}
		return strings.Contains(l, pat)
	}
	all := *pattern == "^" && !invert && len(files) == 0
	found, full := false, false
	process := func(r io.Reader) {
		if all {
			// The upload path: every line passes, written as it is complete; a last line
			// without its line end is written at the end of the input (ended with CRLF when
			// Quirks.FindstrEndsLastLine), never when findstr is killed first.
			buf := make([]byte, 32<<10)
			var pend []byte
			put := func(b []byte) bool {
				if _, err := out.Write(b); err != nil {
					full = true
				}
				return !full
			}
			for {
				n, err := r.Read(buf)
				if n > 0 {
					found = true
					pend = append(pend, buf[:n]...)
					if i := bytes.LastIndexByte(pend, '\n'); i >= 0 {
						if !put(pend[:i+1]) {
							return
						}
						pend = append(pend[:0], pend[i+1:]...)
					}
				}
				if p.ctx.Err() != nil || err != nil && err != io.EOF {
					return // killed: what is pending is lost
				}
				if err != nil {
					break
				}
			}
			if len(pend) > 0 {
				if put(pend) && p.h.quirks.FindstrEndsLastLine {
					put([]byte("\r\n"))
				}
			}
			return
		}
		data, _ := io.ReadAll(r)
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			core := strings.TrimRight(line, "\r\n")
			if match(core) != invert {
				found = true
				_, _ = out.Write([]byte(core + "\r\n"))
			}
		}
	}
	if len(files) == 0 {
		if p.stdin != nil {
			process(p.stdin)
		}
	} else {
		for _, f := range files {
			data, ok := p.readFileText(f)
			if !ok {
				p.write(errw, "FINDSTR: Cannot open "+f+"\r\n")
				continue
			}
			process(bytes.NewReader(data))
		}
	}
	if full {
		p.write(errw, textDiskFull+"\r\n")
		return 1
	}
	if found {
		return 0
	}
	return 1
}

// ---------- ping (the slow command) ----------

func progPing(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	n := 4
	target := ""
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(args[i]) {
		case "-n", "/n":
			if i+1 < len(args) {
				i++
				if v, err := strconv.Atoi(args[i]); err == nil && v > 0 {
					n = v
				}
			}
		case "-w", "-l", "-i":
			i++
		default:
			target = args[i]
		}
	}
	if target == "" {
		p.write(out, "\r\nUsage: ping [-t] [-a] [-n count] [-l size] [-f] [-i TTL] [-v TOS]\r\n")
		return 1
	}
	// A name is shown as its address only; real ping prints "Pinging name [address]" [I].
	addr := target
	if strings.EqualFold(target, "localhost") {
		addr = "127.0.0.1"
	}
	p.write(out, fmt.Sprintf("\r\nPinging %s with 32 bytes of data:\r\n\r\n", addr))
	// One reply a simulated second; on a fast clock the waits are grouped so that each real wait
	// lasts about a millisecond.
	step := 1
	if sc := p.h.clock.Scale(); sc > 1000 {
		step = int(sc / 1000)
	}
	reply := fmt.Sprintf("Reply from %s: bytes=32 time<1ms TTL=128\r\n", addr)
	p.write(out, reply) // the first reply comes at once
	for i := 1; i < n; {
		k := min(step, n-i)
		if !p.h.clock.Sleep(p.ctx, time.Duration(k)*time.Second) {
			return 1
		}
		p.write(out, strings.Repeat(reply, k))
		i += k
	}
	p.write(out, fmt.Sprintf("\r\nPing statistics for %s:\r\n    Packets: Sent = %d, Received = %d, Lost = 0 (0%% loss),\r\nApproximate round trip times in milli-seconds:\r\n    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n", addr, n, n))
	return 0
}

// ---------- certutil ----------

// progCertutil is certutil's -decode and -hashfile (docs/facts.md §5.10). Its failures print
// "CertUtil: -<verb> command FAILED: <HRESULT> (WIN32: <code>)" and the error's text, and exit
// with the HRESULT as a signed 32-bit number [I].
func progCertutil(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	force := false
	var rest []string
	for _, a := range args {
		if strings.EqualFold(a, "-f") {
			force = true
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) == 0 {
		p.write(out, "CertUtil: -dump command completed successfully.\r\n")
		return 0
	}
	verb := strings.ToLower(rest[0])
	failed := func(hr uint32, text string) int {
		what := fmt.Sprintf("(WIN32: %d)", hr&0xFFFF)
		if hr&0xFFFF0000 != 0x80070000 {
			what = fmt.Sprintf("(%d)", int32(hr))
		}
		p.write(out, fmt.Sprintf("CertUtil: %s command FAILED: 0x%08x %s\r\nCertUtil: %s\r\n", verb, hr, what, text))
		return hresultExit(hr)
	}
	h := p.h
	switch {
	case verb == "-decode" && len(rest) == 3:
		src, dst := p.abs(rest[1]), p.abs(rest[2])
		h.mu.Lock()
		f := h.fs.file(src)
		if f == nil {
			h.mu.Unlock()
			return failed(0x80070002, p.loc().text("nofile"))
		}
		if h.fs.file(dst) != nil && !force {
			h.mu.Unlock()
			return failed(0x80070050, "The file exists.")
		}
		inLen := f.size
		var decoded *content
		ok := false
		if f.b64 != nil {
			decoded, ok = f.b64.finish(h.fs.imageList())
		}
		h.mu.Unlock()
		if !ok {
			return failed(0x80090005, "Bad Data.")
		}
		if h.quirks.CertutilDecodeInMemory {
			release, err := p.job.Commit(int((inLen + decoded.size) >> 20))
			if err != nil {
				return failed(0x8007000E, "Not enough storage is available to complete this operation.")
			}
			defer release()
		}
		h.mu.Lock()
		h.fs.remove(dst)
		nf := &file{path: dst, mtime: h.clock.Now(), size: decoded.size, c: decoded}
		full := decoded.size > h.fs.free()
		if full {
			nf.size = h.fs.free()
			decoded.truncate(nf.size, h.fs)
		}
		h.fs.put(nf)
		p.wroteLocked()
		h.mu.Unlock()
		if full {
			return failed(0x80070070, textDiskFull)
		}
		p.write(out, fmt.Sprintf("Input Length = %d\r\nOutput Length = %d\r\nCertUtil: -decode command completed successfully.\r\n", inLen, decoded.size))
		return 0
	case verb == "-hashfile" && h.quirks.CertutilHashfile != "none" && len(rest) >= 2:
		alg := "SHA1"
		if len(rest) > 2 {
			if h.quirks.CertutilHashfile == "sha1" || len(rest) > 3 {
				return failed(0x80070057, "The parameter is incorrect.")
			}
			alg = strings.ToUpper(rest[2])
		}
		if alg != "SHA1" && alg != "SHA256" {
			return failed(0x80090008, "Invalid algorithm specified.")
		}
		h.mu.Lock()
		f := h.fs.file(p.abs(rest[1]))
		var s256, s1 string
		if f != nil {
			s256, s1 = f.sums()
		}
		h.mu.Unlock()
		if f == nil {
			return failed(0x80070002, p.loc().text("nofile"))
		}
		sum := s1
		if alg == "SHA256" {
			sum = s256
		}
		// The layout of Windows 7's certutil -hashfile [P]: "<ALG> hash of file <path>:", the
		// hash in spaced lower-case pairs, the completion line.
		p.write(out, alg+" hash of file "+rest[1]+":\r\n"+spacedHex(sum)+"\r\nCertUtil: -hashfile command completed successfully.\r\n")
		return 0
	}
	p.write(out, "CertUtil: Unknown arg: "+rest[0]+"\r\n")
	return hresultExit(0x80070057)
}

func spacedHex(h string) string {
	var sb strings.Builder
	for i := 0; i+1 < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// ---------- iisreset ----------

// progIisreset stops and starts the IIS services ([I]: output wording of IIS 6's iisreset).
func progIisreset(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	if !h.spec.IIS {
		return p.notRecognized("iisreset", errw)
	}
	op := "/restart"
	if len(args) > 0 {
		op = strings.ToLower(args[0])
	}
	h.mu.Lock()
	w3, admin := h.serviceLocked("W3SVC"), h.serviceLocked("IISADMIN")
	if op != "/status" {
		p.wroteLocked()
	}
	var sb strings.Builder
	switch op {
	case "/status":
		for _, s := range []*service{admin, w3} {
			st := "Stopped"
			if s.running {
				st = "Running"
			}
			sb.WriteString(fmt.Sprintf("Status for %s ( %s ) : %s\r\n", s.display, s.name, st))
		}
	case "/stop":
		h.stopServiceLocked(admin)
		sb.WriteString("\r\nAttempting stop...\r\nInternet services successfully stopped\r\n")
	case "/start":
		h.startServiceLocked(w3)
		sb.WriteString("\r\nAttempting start...\r\nInternet services successfully started\r\n")
	case "/restart", "/noforce":
		h.stopServiceLocked(admin)
		h.startServiceLocked(w3)
		sb.WriteString("\r\nAttempting stop...\r\nInternet services successfully stopped\r\nAttempting start...\r\nInternet services successfully restarted\r\n\r\n")
	default:
		h.mu.Unlock()
		p.write(errw, "Invalid command line.\r\n") // [NC]
		return 1
	}
	h.mu.Unlock()
	p.write(out, sb.String())
	return 0
}

// iisapp runs %SystemRoot%\system32\iisapp.vbs. Texts, branches and exit codes follow the
// script's source (Microsoft's IIsApp.vbs, copy in repo mmessano/VisualBasic, docs/facts.md §4.2): the
// exit code is the script's result, an HRESULT where the script quits with Err.Number. The
// "Connecting to server ...Done." line before a recycle is from the capture in docs/facts.md §4.2.
// Unknown switches are ignored (the script's own "Invalid switch" text is not modelled).
func (p *proc) iisapp(args []string, out *stream) int {
	var pool, pid string
	byName, byPID, recycle := false, false, false
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(args[i]) {
		case "/a", "/p":
			if i+1 >= len(args) {
				p.write(out, "Not enough parameters.\r\nType IIsApp /? for help.\r\n")
				return 1
			}
			i++
			if strings.EqualFold(args[i-1], "/a") {
				pool, byName = args[i], true
			} else {
				pid, byPID = args[i], true
			}
		case "/r", "/recycle":
			recycle = true
		}
	}
	h := p.h
	h.mu.Lock()
	h.settleLocked(h.clock.Now())
	type worker struct {
		pid  int
		pool string
	}
	var workers []worker
	for _, pl := range h.pools {
		if pl.state == 2 && pl.workerPID != 0 {
			workers = append(workers, worker{pl.workerPID, pl.name})
		}
	}
	var others []procInfo // processes that are not worker processes
	for _, pi := range h.processesLocked() {
		if pi.name != "w3wp.exe" {
			others = append(others, pi)
		}
	}
	h.mu.Unlock()

	var sb strings.Builder
	code := 0
	switch {
	case byName && recycle:
		return p.iisappRecycle(pool, out)
	case byName:
		sb.WriteString(fmt.Sprintf("The following W3WP.exe processes are serving AppPool: %s\r\n", pool))
		if len(workers) == 0 {
			sb.WriteString("Error - no w3wp.exe processes are running at this time\r\n")
			code = 1
		}
		for _, w := range workers {
			if strings.EqualFold(w.pool, pool) {
				sb.WriteString(fmt.Sprintf("W3WP.exe PID: %d\r\n", w.pid))
			}
		}
	case byPID:
		n, err := strconv.Atoi(strings.TrimSpace(pid))
		found := ""
		for _, w := range workers {
			if w.pid == n {
				found = w.pool
			}
		}
		other := false
		for _, pi := range others {
			other = other || pi.pid == n
		}
		switch {
		case err != nil:
			sb.WriteString("ERROR: PID is not valid\r\n")
			code = hresultExit(0x80070057)
		case found != "" && recycle:
			return p.iisappRecycle(found, out)
		case found != "":
			sb.WriteString(fmt.Sprintf("W3WP.exe PID: %d   AppPoolId: %s\r\n", n, found))
		case other:
			sb.WriteString("ERROR: ProcessId specified is NOT an instance of W3WP.exe - EXITING\r\n")
			code = hresultExit(0x8007000D)
		default:
			sb.WriteString(fmt.Sprintf("Process ID %s not found.\r\n", pid))
			code = hresultExit(0x80070002)
		}
	default:
		if len(workers) == 0 {
			sb.WriteString("Error - no results\r\n")
			code = 2
		}
		for _, w := range workers {
			sb.WriteString(fmt.Sprintf("W3WP.exe PID: %d   AppPoolId: %s\r\n", w.pid, w.pool))
		}
	}
	p.write(out, sb.String())
	return code
}

// iisappRecycle is iisapp.vbs's RecycleAppPool: IIsApplicationPool.Recycle through WMI.
func (p *proc) iisappRecycle(pool string, out *stream) int {
	h := p.h
	p.write(out, "Connecting to server ...Done.\r\n")
	h.mu.Lock()
	pl := h.poolLocked(pool)
	h.mu.Unlock()
	if pl == nil {
		p.write(out, fmt.Sprintf("Application pool '%s' does not exist.\r\n", pool))
		return hresultExit(0x80070003)
	}
	if werr := h.wmiCall(&wmiObj{class: "IIsApplicationPool", pool: pl}, "Recycle"); werr != nil {
		p.write(out, fmt.Sprintf("Failed to recycle application pool '%s'.\r\n%X : %s\r\n", pool, werr.code, werr.desc))
		return hresultExit(werr.code)
	}
	p.write(out, fmt.Sprintf("Application pool '%s' recycled successfully.\r\n", pool))
	return 0
}

// hresultExit is the exit code of a process that quits with an HRESULT: the signed 32-bit value.
func hresultExit(code uint32) int { return int(int32(code)) }
