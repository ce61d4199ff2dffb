package win2003

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schtasks.exe of Server 2003 (docs/facts.md §5.5) and the tasks it schedules: ONCE tasks armed on the
// clock, run as SYSTEM in their own goroutine, killed by /end or a power-off.

type task struct {
	name       string
	run        string
	user       string
	sc         string
	st         string
	running    bool
	lastRun    time.Time
	lastResult int
	ranOnce    bool
	timer      *Timer
	stop       context.CancelFunc // ends the running program (schtasks /end)
	couldNot   bool
	at         time.Time // a ONCE task's start (zero for other schedules)
}

// armTaskLocked sets the timer of a ONCE task whose start time is still ahead (2003 never runs a
// ONCE task whose time has passed [I]).
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
// ([NC] docs/facts.md §5.5).
var SchtasksAcceptHHMM = false

// vistaSwitches are schtasks switches that Windows Vista added; Server 2003 rejects them
// (docs/facts.md §5.5).
var vistaSwitches = map[string]bool{"/rl": true, "/xml": true, "/v1": true, "/np": true, "/delay": true, "/hresult": true, "/ec": true}

func progSchtasks(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	// The verb is optional for a query: `schtasks [/query] [/fo ...] [/nh] [/v]` (docs/facts.md §5.5).
	op := "/query"
	if len(args) > 0 {
		switch v := strings.ToLower(args[0]); v {
		case "/create", "/delete", "/query", "/run", "/end", "/change":
			op = v
			args = args[1:]
		}
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
		case "/f", "/v", "/nh", "/it", "/k", "/z":
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
			if running {
				t.stop()
				t.running = false
			}
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
				// Server 2003's /query has no /tn (docs/facts.md §5.5)
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
	t := &task{name: opts["/tn"], run: opts["/tr"], user: user, sc: sc, st: st}
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
		now := h.localNow()
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

// startTaskLocked starts a task's program as SYSTEM in its own goroutine.
func (h *Host) startTaskLocked(t *task) {
	t.lastRun = h.clock.Now()
	t.ranOnce = true
	if t.couldNot {
		t.lastResult = 1
		return
	}
	t.running = true
	ctx, stop := context.WithCancel(h.procCtx)
	t.stop = stop
	// The task is part of the simulation: on virtual time the clock waits for it to finish or
	// to sleep (the installer's run time) before it moves.
	ctx, leave := h.clock.Join(ctx)
	go func() {
		defer leave()
		defer stop()
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
	// times as "HH:MM:SS, M/D/YYYY" [I]
	stamp := func(t time.Time) string {
		t = t.In(h.zone())
		return fmt.Sprintf("%s, %d/%d/%d", t.Format("15:04:05"), t.Month(), t.Day(), t.Year())
	}
	next := func(t *task) string {
		if t.timer != nil {
			return stamp(t.at)
		}
		return "Never"
	}
	lastRun := func(t *task) string {
		if !t.ranOnce {
			return "Never"
		}
		return stamp(t.lastRun)
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
