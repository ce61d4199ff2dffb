package win2003

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// progShutdown implements shutdown.exe of Server 2003: /r /s /a /f /t 0-600 /d [p:]xx:yy /c "comment"
// (FACTS.md §5).
func progShutdown(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	restart, shutdown, abort := false, false, false
	delay := 30 * time.Second // the default /t on 2003
	comment := ""
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(args[i])
		if strings.HasPrefix(a, "-") {
			a = "/" + a[1:]
		}
		switch a {
		case "/r":
			restart = true
		case "/s", "/p":
			shutdown = true
		case "/a":
			abort = true
		case "/f":
		case "/t":
			if i+1 >= len(args) {
				return shutdownUsage(p, errw)
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 0 || n > 600 {
				return shutdownUsage(p, errw)
			}
			delay = time.Duration(n) * time.Second
		case "/d":
			if i+1 >= len(args) {
				return shutdownUsage(p, errw)
			}
			i++
		case "/c":
			if i+1 >= len(args) {
				return shutdownUsage(p, errw)
			}
			i++
			comment = args[i]
			if len(comment) > 127 {
				p.write(errw, "The comment exceeds the maximum length of 127 characters.\r\n") // [NC]
				return 87
			}
		case "/m":
			i++
		default:
			return shutdownUsage(p, errw)
		}
	}
	if !abort && !restart && !shutdown {
		return shutdownUsage(p, errw)
	}
	h.mu.Lock()
	if abort {
		if h.shutdownTimer == nil {
			h.mu.Unlock()
			p.write(errw, "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
			return 1116
		}
		h.shutdownTimer.Stop()
		h.shutdownTimer = nil
		h.mu.Unlock()
		return 0
	}
	if h.shutdownTimer != nil {
		h.mu.Unlock()
		p.write(errw, "A system shutdown is in progress.(1115)\r\n")
		return 1115
	}
	defer h.mu.Unlock()
	now := h.clock.Now()
	h.addEventLocked(Event{Logfile: "System", Source: "USER32", Code: 1074, Type: "information", Time: now,
		Strings: []string{"shutdown.exe", h.spec.ComputerName, "", "0x80020002", map[bool]string{true: "restart", false: "power off"}[restart], comment},
		User:    h.spec.ComputerName + `\Administrator`})
	h.scheduleShutdownLocked(delay, restart && !h.spec.NeverReturns)
	return 0
}

func shutdownUsage(p *proc, errw *stream) int {
	p.write(errw, "Usage: shutdown [-i | -l | -s | -r | -a] [-f] [-m \\\\computername] [-t xx] [-c \"comment\"] [-d up:xx:yy]\r\n")
	return 1
}

// scheduleShutdownLocked takes the host down after delay and, when reboot is set, brings it back
// after the boot duration.
func (h *Host) scheduleShutdownLocked(delay time.Duration, reboot bool) {
	h.shutdownAt = h.clock.Now().Add(delay)
	h.shutdownSeq++
	seq := h.shutdownSeq
	h.shutdownTimer = h.clock.AfterFunc(delay, func() { h.powerOff(seq, reboot) })
}

// powerOff runs when a shutdown's delay has passed.
func (h *Host) powerOff(seq int, reboot bool) {
	h.mu.Lock()
	if h.shutdownTimer == nil || h.shutdownSeq != seq || !h.up {
		h.mu.Unlock()
		return
	}
	now := h.clock.Now()
	h.settleLocked(now)
	h.addEventLocked(Event{Logfile: "System", Source: "EventLog", Code: 6006, Type: "information", Time: now})
	h.shutdownTimer = nil
	if h.procStop != nil {
		h.procStop() // kills running commands, tasks and installers
	}
	for _, tk := range h.tasks {
		tk.running = false
		if tk.timer != nil {
			tk.timer.Stop()
			tk.timer = nil
		}
	}
	for _, s := range h.services {
		s.running = false
	}
	for _, p := range h.pools {
		h.stopPoolLocked(p)
	}
	h.installing = false
	notify := h.setPowerLocked(false)
	if reboot {
		h.clock.AfterFunc(h.opts.BootDuration, func() { h.boot(h.clock.Now(), true) })
	}
	h.mu.Unlock()
	notify()
}

// PowerOff takes the host down at once (as pulling the plug); PowerOn boots it if it is down.
func (h *Host) PowerOff() {
	h.mu.Lock()
	h.shutdownSeq++
	seq := h.shutdownSeq
	h.shutdownTimer = &Timer{c: h.clock}
	h.mu.Unlock()
	h.powerOff(seq, false)
}

// PowerOn boots a host that is down.
func (h *Host) PowerOn() {
	if h.Up() {
		return
	}
	h.boot(h.clock.Now(), true)
}

// ---------- schtasks ----------

type task struct {
	name       string
	run        string
	user       string
	sc         string
	st         string
	sd         string
	running    bool
	lastRun    time.Time
	lastResult int
	ranOnce    bool
	timer      *Timer
	couldNot   bool
	at         time.Time // a ONCE task's start (zero for other schedules)
}

// armTaskLocked sets the timer of a ONCE task whose start time is still ahead (2003 never runs a
// ONCE task whose time has passed).
func (h *Host) armTaskLocked(t *task) {
	now := h.clock.Now()
	if t.at.IsZero() || !t.at.After(now) || t.ranOnce {
		return
	}
	t.timer = h.clock.AfterFunc(t.at.Sub(now), func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if t.timer != nil && h.up && !t.running {
			t.timer = nil
			h.startTaskLocked(t)
		}
	})
}

// SchtasksAcceptHHMM lets /st take HH:MM as well as the HH:MM:SS that Server 2003 documents
// ([NC] FACTS.md §5).
var SchtasksAcceptHHMM = false

var vistaSwitches = map[string]bool{"/rl": true, "/xml": true, "/v1": true, "/np": true, "/delay": true, "/hresult": true, "/tr:": true, "/ec": true, "/z": false}

func progSchtasks(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	op := "/query"
	if len(args) > 0 && strings.HasPrefix(args[0], "/") {
		op = strings.ToLower(args[0])
		args = args[1:]
	}
	opts := map[string]string{}
	flags := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(args[i])
		if vistaSwitches[a] || !strings.HasPrefix(a, "/") {
			p.write(errw, fmt.Sprintf("ERROR: Invalid argument/option - '%s'.\r\nType \"SCHTASKS %s /?\" for usage.\r\n", args[i], strings.ToUpper(op)))
			return 1
		}
		switch a {
		case "/f", "/v", "/nh", "/it", "/k":
			flags[a] = true
		default:
			if i+1 >= len(args) {
				p.write(errw, fmt.Sprintf("ERROR: Invalid syntax. Value expected for '%s'.\r\nType \"SCHTASKS %s /?\" for usage.\r\n", args[i], strings.ToUpper(op)))
				return 1
			}
			opts[a] = args[i+1]
			i++
		}
	}
	h := p.h
	switch op {
	case "/create":
		return schtasksCreate(p, opts, flags, out, errw)
	case "/run", "/end", "/delete":
		name, ok := opts["/tn"]
		if !ok {
			p.write(errw, "ERROR: Invalid syntax. Mandatory option '/tn' is missing.\r\nType \"SCHTASKS "+strings.ToUpper(op)+" /?\" for usage.\r\n")
			return 1
		}
		for k := range opts {
			if k != "/tn" && k != "/s" && k != "/u" && k != "/p" {
				p.write(errw, fmt.Sprintf("ERROR: Invalid argument/option - '%s'.\r\nType \"SCHTASKS %s /?\" for usage.\r\n", k, strings.ToUpper(op)))
				return 1
			}
		}
		h.mu.Lock()
		if op == "/delete" && name == "*" {
			for _, t := range h.tasks {
				if t.timer != nil {
					t.timer.Stop()
				}
			}
			h.tasks = nil
			h.mu.Unlock()
			p.write(out, "SUCCESS: The scheduled task \"*\" was successfully deleted.\r\n")
			return 0
		}
		idx := -1
		for i, t := range h.tasks {
			if strings.EqualFold(t.name, name) {
				idx = i
			}
		}
		if idx < 0 {
			h.mu.Unlock()
			p.write(errw, "ERROR: The system cannot find the file specified.\r\n")
			return 1
		}
		t := h.tasks[idx]
		switch op {
		case "/run":
			if !t.running {
				h.startTaskLocked(t)
			}
			h.mu.Unlock()
			p.write(out, fmt.Sprintf("SUCCESS: Attempted to run the scheduled task \"%s\".\r\n", t.name))
			return 0
		case "/end":
			running := t.running
			h.mu.Unlock()
			if !running {
				p.write(errw, fmt.Sprintf("ERROR: The scheduled task \"%s\" is not running.\r\n", t.name)) // [NC]
				return 1
			}
			p.write(out, fmt.Sprintf("SUCCESS: The scheduled task \"%s\" has been terminated successfully.\r\n", t.name))
			return 0
		}
		if !flags["/f"] {
			h.mu.Unlock()
			p.write(out, fmt.Sprintf("WARNING: Are you sure you want to remove the task \"%s\" (Y/N )? ", t.name))
			if !readYes(p.stdin) {
				p.write(out, "\r\n")
				return 0
			}
			h.mu.Lock()
		}
		if t.timer != nil {
			t.timer.Stop()
		}
		for i, x := range h.tasks {
			if x == t {
				h.tasks = append(h.tasks[:i], h.tasks[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
		p.write(out, fmt.Sprintf("SUCCESS: The scheduled task \"%s\" was successfully deleted.\r\n", t.name))
		return 0
	case "/query":
		for k := range opts {
			if k != "/fo" && k != "/s" && k != "/u" && k != "/p" {
				// Server 2003's /query has no /tn (FACTS.md §5)
				p.write(errw, fmt.Sprintf("ERROR: Invalid argument/option - '%s'.\r\nType \"SCHTASKS /QUERY /?\" for usage.\r\n", k))
				return 1
			}
		}
		h.mu.Lock()
		txt := h.schtasksQueryLocked(strings.ToUpper(opts["/fo"]), flags["/v"], flags["/nh"])
		h.mu.Unlock()
		p.write(out, txt)
		return 0
	}
	p.write(errw, fmt.Sprintf("ERROR: Invalid argument/option - '%s'.\r\nType \"SCHTASKS /?\" for usage.\r\n", op))
	return 1
}

func schtasksCreate(p *proc, opts map[string]string, flags map[string]bool, out, errw *stream) int {
	h := p.h
	for _, req := range []string{"/sc", "/tn", "/tr"} {
		if _, ok := opts[req]; !ok {
			p.write(errw, fmt.Sprintf("ERROR: Invalid syntax. Mandatory option '%s' is missing.\r\nType \"SCHTASKS /CREATE /?\" for usage.\r\n", req))
			return 1
		}
	}
	sc := strings.ToUpper(opts["/sc"])
	switch sc {
	case "MINUTE", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "ONCE", "ONSTART", "ONLOGON", "ONIDLE":
	default:
		p.write(errw, "ERROR: Invalid schedule type specified.\r\nType \"SCHTASKS /CREATE /?\" for usage.\r\n") // [NC]
		return 1
	}
	st, hasST := opts["/st"]
	if sc == "ONCE" && !hasST {
		p.write(errw, "ERROR: Invalid syntax. Mandatory option '/st' is missing.\r\nType \"SCHTASKS /CREATE /?\" for usage.\r\n") // [NC]
		return 1
	}
	var stTime time.Duration
	if hasST {
		d, ok := parseST(st)
		if !ok {
			p.write(errw, "ERROR: Invalid Start Time.\r\n") // [NC]
			return 1
		}
		stTime = d
	}
	user := ""
	if ru, ok := opts["/ru"]; ok {
		user = ru
	}
	h.mu.Lock()
	for _, t := range h.tasks {
		if strings.EqualFold(t.name, opts["/tn"]) {
			h.mu.Unlock()
			p.write(errw, "ERROR: Cannot create a file when that file already exists.\r\n") // [NC]
			return 1
		}
	}
	t := &task{name: opts["/tn"], run: opts["/tr"], user: user, sc: sc, st: st, sd: opts["/sd"]}
	h.tasks = append(h.tasks, t)
	var msg strings.Builder
	switch {
	case strings.EqualFold(user, "SYSTEM") || strings.EqualFold(user, `NT AUTHORITY\SYSTEM`):
		msg.WriteString("INFO: The task will be created under user name (\"NT AUTHORITY\\SYSTEM\").\r\n")
		msg.WriteString(fmt.Sprintf("SUCCESS: The scheduled task \"%s\" has successfully been created.\r\n", t.name))
	case opts["/rp"] != "":
		msg.WriteString(fmt.Sprintf("SUCCESS: The scheduled task \"%s\" has successfully been created.\r\n", t.name))
	default:
		// 2003 creates the task but cannot store the account's password without /rp.
		t.couldNot = true
		msg.WriteString(fmt.Sprintf("WARNING: The Scheduled task \"%s\" has been created, but may not run because the account information could not be set.\r\n", t.name))
	}
	if sc == "ONCE" {
		now := h.localNowLocked()
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
		if sd := opts["/sd"]; sd != "" {
			if d, err := time.ParseInLocation("01/02/2006", sd, now.Location()); err == nil {
				day = d
			}
		}
		t.at = day.Add(stTime)
		h.armTaskLocked(t)
	}
	h.mu.Unlock()
	p.write(out, msg.String())
	return 0
}

func parseST(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 && !(SchtasksAcceptHHMM && len(parts) == 2) {
		return 0, false
	}
	var n [3]int
	for i, x := range parts {
		v, err := strconv.Atoi(x)
		if err != nil || len(x) != 2 {
			return 0, false
		}
		n[i] = v
	}
	if n[0] > 23 || n[1] > 59 || n[2] > 59 {
		return 0, false
	}
	return time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second, true
}

func (h *Host) localNowLocked() time.Time {
	return h.clock.Now().In(time.FixedZone("", h.spec.TZOffset*60))
}

// startTaskLocked starts a task's program as SYSTEM in its own goroutine.
func (h *Host) startTaskLocked(t *task) {
	t.lastRun = h.clock.Now()
	t.ranOnce = true
	if t.couldNot {
		t.lastResult = 1
		return
	}
	t.running = true
	ctx := h.procCtx
	go func() {
		p := h.newProc(ctx, true)
		name, rest := splitCommand(t.run)
		nul := &stream{kind: streamNul}
		code := p.runProgram(name, rest, nul, nul)
		h.mu.Lock()
		if ctx.Err() == nil {
			t.running = false
			t.lastResult = code
		}
		h.mu.Unlock()
		h.logf("task %s ended with %d", t.name, code)
	}()
}

func (h *Host) schtasksQueryLocked(fo string, verbose, noHeader bool) string {
	var sb strings.Builder
	status := func(t *task) string {
		switch {
		case t.running:
			return "Running"
		case t.couldNot && t.ranOnce:
			return "Could not start"
		}
		return ""
	}
	next := func(t *task) string {
		if t.timer != nil && t.st != "" {
			now := h.localNowLocked()
			return fmt.Sprintf("%s, %d/%d/%d", t.st, now.Month(), now.Day(), now.Year())
		}
		return "Never"
	}
	lastRun := func(t *task) string {
		if !t.ranOnce {
			return "Never"
		}
		lr := t.lastRun.In(time.FixedZone("", h.spec.TZOffset*60))
		return fmt.Sprintf("%s, %d/%d/%d", lr.Format("15:04:05"), lr.Month(), lr.Day(), lr.Year())
	}
	switch fo {
	case "LIST":
		for _, t := range h.tasks {
			sb.WriteString("\r\n")
			sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "HostName:", h.spec.ComputerName))
			sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "TaskName:", t.name))
			sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Next Run Time:", next(t)))
			sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Status:", status(t)))
			if verbose {
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Last Run Time:", lastRun(t)))
				sb.WriteString(fmt.Sprintf("%-34s%d\r\n", "Last Result:", t.lastResult))
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Creator:", "Administrator"))
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Task To Run:", t.run))
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Scheduled Type:", scheduleTypeName(t.sc)))
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Start Time:", t.st))
				sb.WriteString(fmt.Sprintf("%-34s%s\r\n", "Run As User:", t.user))
			}
		}
	case "CSV":
		if !noHeader {
			if verbose {
				sb.WriteString(`"HostName","TaskName","Next Run Time","Status","Last Run Time","Last Result","Creator","Task To Run","Run As User"` + "\r\n")
			} else {
				sb.WriteString(`"TaskName","Next Run Time","Status"` + "\r\n")
			}
		}
		for _, t := range h.tasks {
			if verbose {
				sb.WriteString(fmt.Sprintf("%q,%q,%q,%q,%q,\"%d\",%q,%q,%q\r\n", h.spec.ComputerName, t.name, next(t), status(t), lastRun(t), t.lastResult, "Administrator", t.run, t.user))
			} else {
				sb.WriteString(fmt.Sprintf("%q,%q,%q\r\n", t.name, next(t), status(t)))
			}
		}
	default:
		if len(h.tasks) == 0 {
			return "INFO: There are no scheduled tasks present in the system.\r\n"
		}
		if !noHeader {
			sb.WriteString("\r\n")
			sb.WriteString(fmt.Sprintf("%-36s %-24s %-15s\r\n", "TaskName", "Next Run Time", "Status"))
			sb.WriteString(strings.Repeat("=", 36) + " " + strings.Repeat("=", 24) + " " + strings.Repeat("=", 15) + "\r\n")
		}
		for _, t := range h.tasks {
			sb.WriteString(fmt.Sprintf("%-36s %-24s %-15s\r\n", t.name, next(t), status(t)))
		}
	}
	return sb.String()
}

func scheduleTypeName(sc string) string {
	if sc == "" {
		return ""
	}
	return sc[:1] + strings.ToLower(sc[1:])
}
