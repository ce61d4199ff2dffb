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
			p.wroteLocked()
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
		p.wroteLocked()
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
		d, ok := parseST(st, h.quirks.SchtasksAcceptHHMM)
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
			order, sep := h.dateOrderLocked(p)
			d, ok := parseSD(sd, order, sep, now.Location())
			if !ok {
				h.tasks = h.tasks[:len(h.tasks)-1]
				h.mu.Unlock()
				p.write(errw, "ERROR: Invalid Start Date (Date should be in \""+dateFormatName(order, sep)+"\" format).\r\n") // [NC]
				return 1
			}
			day = d
		}
		t.at = day.Add(stTime)
		h.armTaskLocked(t)
	}
	p.wroteLocked()
	h.mu.Unlock()
	p.write(out, msg.String())
	return 0
}

// parseST reads /st: HH:MM:SS, or HH:MM when hhmm (Quirks.SchtasksAcceptHHMM).
// dateOrderLocked is the date order and separator /sd is read in (Quirks.SchtasksDateHive): the
// calling user's HKCU\Control Panel\International, or HKU\.DEFAULT's; iDate 0 month first,
// 1 day first, 2 year first (docs/facts.md §5.5).
func (h *Host) dateOrderLocked(p *proc) (order int, sep string) {
	root := `HKCU`
	if p.system || h.quirks.SchtasksDateHive == "default" {
		root = `HKU\.DEFAULT`
	}
	order, sep = 0, "/"
	if v, ok := h.reg.get(root+`\Control Panel\International`, "iDate"); ok {
		order, _ = strconv.Atoi(v.data)
	}
	if v, ok := h.reg.get(root+`\Control Panel\International`, "sDate"); ok && v.data != "" {
		sep = v.data
	}
	return order, sep
}

// parseSD reads a /sd date in the given order: two-digit day and month, four-digit year [I]
// (the documentation's "mm/dd/yyyy" form); a date that does not exist is refused.
func parseSD(s string, order int, sep string, loc *time.Location) (time.Time, bool) {
	parts := strings.Split(s, sep)
	if len(parts) != 3 {
		return time.Time{}, false
	}
	var y, m, d string
	switch order {
	case 1:
		d, m, y = parts[0], parts[1], parts[2]
	case 2:
		y, m, d = parts[0], parts[1], parts[2]
	default:
		m, d, y = parts[0], parts[1], parts[2]
	}
	t, err := time.ParseInLocation("2006-01-02", y+"-"+m+"-"+d, loc)
	return t, err == nil
}

// dateFormatName is the format schtasks names in its error: "mm/dd/yyyy" in the host's order.
func dateFormatName(order int, sep string) string {
	switch order {
	case 1:
		return "dd" + sep + "mm" + sep + "yyyy"
	case 2:
		return "yyyy" + sep + "mm" + sep + "dd"
	}
	return "mm" + sep + "dd" + sep + "yyyy"
}

func parseST(s string, hhmm bool) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 && !(hhmm && len(parts) == 2) {
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
	rec := &CommandRecord{Start: h.clock.Now(), User: "SYSTEM", Task: t.name, CommandLine: t.run}
	h.logCommandLocked(rec)
	go func() {
		defer leave()
		defer stop()
		p := h.newProc(ctx, true)
		p.rec = rec
		name, rest := splitCommand(t.run)
		nul := &stream{kind: streamNul}
		code := p.runProgram(name, rest, nul, nul)
		h.mu.Lock()
		rec.End, rec.ExitCode = h.clock.Now(), code
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
	// Status: "Running", "Could not start", and in /v lists "Not yet run" for a task that
	// never ran (cc772785's example, docs/facts.md §5.5); blank otherwise [I].
	status := func(t *task) string {
		switch {
		case t.running:
			return "Running"
		case t.couldNot && t.ranOnce:
			return "Could not start"
		case verbose && !t.ranOnce:
			return "Not yet run"
		}
		return ""
	}
	// Times as 2003's schtasks writes them: the locale's time, a space before the comma, the
	// locale's short date ("2:42:00 PM , 2/4/2001" on an English host; Microsoft's example in
	// cc772785 shows "14:42:00 PM , 2/4/2001", docs/facts.md §5.5 [P]).
	stamp := func(t time.Time) string {
		t = t.In(h.zone())
		if h.spec.Language == "0C0A" {
			return t.Format("15:04:05 , 02/01/2006")
		}
		return t.Format("3:04:05 PM , 1/2/2006")
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
