package win2003

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// progShutdown implements shutdown.exe of Server 2003: /r /s /a /f /t 0-600 /d [p:]xx:yy /c "comment"
// (docs/facts.md §5.6).
func progShutdown(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	restart, shutdown, abort := false, false, false
	delay := 30 * time.Second // the default /t on 2003
	comment := ""
	// The reason code of event 1074 when /d is absent; unconfirmed ([NC]).
	reason := uint32(0x80020002)
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
			r, ok := shutdownReason(args[i])
			if !ok {
				return shutdownUsage(p, errw)
			}
			reason = r
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
	p.wroteLocked()
	if abort {
		if h.shutdownTimer == nil {
			h.mu.Unlock()
			// the "text.(code)" form as public captures show it (later Windows); [I] for 2003
			p.write(errw, "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
			return 1116
		}
		h.shutdownTimer.Stop()
		h.shutdownTimer = nil
		h.shutdownSeq++ // a timer that fires anyway finds its shutdown aborted
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
		Strings: []string{"shutdown.exe", h.spec.ComputerName, "", fmt.Sprintf("0x%x", reason), map[bool]string{true: "restart", false: "power off"}[restart], comment},
		User:    h.spec.ComputerName + `\Administrator`})
	h.scheduleShutdownLocked(delay, restart && !h.spec.NeverReturns)
	return 0
}

// shutdownReason parses /d [u][p]:xx:yy (major below 256, minor below 65536; docs/facts.md §5.6, ss64)
// into the reason code event 1074 shows: the planned flag 0x80000000, the user-defined flag
// 0x40000000, major<<16 | minor (SHTDN_REASON_* layout).
func shutdownReason(s string) (uint32, bool) {
	parts := strings.Split(strings.ToLower(s), ":")
	var flags string
	switch len(parts) {
	case 2:
	case 3:
		flags, parts = parts[0], parts[1:]
	default:
		return 0, false
	}
	var code uint32
	switch flags {
	case "":
	case "p":
		code = 0x80000000
	case "u":
		code = 0x40000000
	case "up":
		code = 0xC0000000
	default:
		return 0, false
	}
	major, err1 := strconv.ParseUint(parts[0], 10, 8)
	minor, err2 := strconv.ParseUint(parts[1], 10, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return code | uint32(major)<<16 | uint32(minor), true
}

// shutdownUsage prints the first line of shutdown.exe's usage text and fails. The line is XP-era
// shutdown.exe's as public code quotes it (repositories not identified); that 2003 prints the same
// is inferred [I]. The help lines that follow it are not modelled.
func shutdownUsage(p *proc, errw *stream) int {
	p.write(errw, "Usage: shutdown [-i | -l | -s | -r | -a] [-f] [-m \\\\computername] [-t xx] [-c \"comment\"] [-d up:xx:yy]\r\n")
	return 1
}

// scheduleShutdownLocked takes the host down after delay and, when reboot is set, brings it back
// after the boot duration.
func (h *Host) scheduleShutdownLocked(delay time.Duration, reboot bool) {
	h.shutdownSeq++
	seq := h.shutdownSeq
	h.shutdownTimer = h.clock.AfterFunc(delay, func() { h.powerOff(seq, reboot) })
}

// powerOff runs when a shutdown's delay has passed.
func (h *Host) powerOff(seq int, reboot bool) {
	h.mu.Lock()
	if h.shutdownSeq != seq || !h.up {
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

// PowerOff takes the host down at once, as pulling the plug does.
func (h *Host) PowerOff() {
	h.mu.Lock()
	h.shutdownSeq++ // supersedes a pending shutdown
	seq := h.shutdownSeq
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
