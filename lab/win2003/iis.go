package win2003

import (
	"strconv"
	"strings"
	"time"
)

// The IIS 6 dynamics, computed lazily: a started pool starts a worker process at its first request
// (background trickle or an explicit local request). With the trigger's w3core.dll and an iisutil.dll
// below the SP2 level, or on an other-cause host, every worker dies at start with exit code
// ffffffff (W3SVC 1009, docs/facts.md §3.3); MaxCrashes of them within Interval make Rapid-Fail
// Protection disable the pool (1002, AppPoolState 4; docs/facts.md §4.1).

type pool struct {
	name       string
	autoStart  bool
	rapidFail  bool
	maxCrashes int
	interval   time.Duration
	state      int       // AppPoolState: 1 starting, 2 started, 3 stopping, 4 stopped
	nextReq    time.Time // next background request (zero = none pending)
	crashes    []time.Time
	workerPID  int
}

type site struct {
	id       int
	comment  string
	pool     string
	bindings string // IP:port:host
	state    int    // ServerState: 2 started, 4 stopped
}

// ExitCodeCrash is the exit code of a worker that dies at start (docs/facts.md §3.3), as 1009's %3.
const ExitCodeCrash = "ffffffff"

// cmpVersion compares dotted versions numerically; "" sorts lowest.
func cmpVersion(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// workersCrashLocked reports whether a worker process started now would die at start.
func (h *Host) workersCrashLocked() bool {
	if h.spec.OtherCause {
		return true
	}
	dir := h.inetsrv() + `\`
	var w3core, iisutil string
	if f := h.fs.file(dir + "w3core.dll"); f != nil {
		w3core = f.version
	}
	if f := h.fs.file(dir + "iisutil.dll"); f != nil {
		iisutil = f.version
	}
	return cmpVersion(w3core, VersionKB973917) >= 0 && cmpVersion(iisutil, VersionSP2) < 0
}

func (h *Host) w3svcRunningLocked() bool {
	s := h.serviceLocked("W3SVC")
	return s != nil && s.running
}

func (h *Host) trickle() time.Duration {
	if h.spec.NoTrickle || h.opts.RequestInterval < 0 {
		return 0
	}
	return h.opts.RequestInterval
}

func (h *Host) startPoolLocked(p *pool, t time.Time) {
	p.state = 2
	p.crashes = nil
	p.workerPID = 0
	p.nextReq = time.Time{}
	if tr := h.trickle(); tr > 0 {
		p.nextReq = t.Add(tr)
	}
}

func (h *Host) stopPoolLocked(p *pool) {
	p.state = 4
	p.workerPID = 0
	p.nextReq = time.Time{}
	p.crashes = nil
}

func (h *Host) startW3SVCPoolsLocked(t time.Time) {
	if !h.w3svcRunningLocked() {
		return
	}
	for _, p := range h.pools {
		if p.autoStart {
			h.startPoolLocked(p, t)
		}
	}
}

// settleLocked computes what happened in the pools up to now.
func (h *Host) settleLocked(now time.Time) {
	if !h.up {
		return
	}
	crash := h.workersCrashLocked()
	tr := h.trickle()
	for _, p := range h.pools {
		if p.state != 2 || p.nextReq.IsZero() || p.nextReq.After(now) {
			continue
		}
		if !crash {
			if p.workerPID == 0 {
				p.workerPID = h.newPIDLocked()
			}
			p.nextReq = time.Time{}
			continue
		}
		for n := 0; p.state == 2 && !p.nextReq.IsZero() && !p.nextReq.After(now); n++ {
			if n >= 100 && tr > 0 {
				// Without Rapid-Fail Protection a pool crashes forever; skip ahead.
				skip := now.Sub(p.nextReq) / tr
				p.nextReq = p.nextReq.Add(skip * tr)
			}
			h.crashLocked(p, p.nextReq)
			if tr > 0 {
				p.nextReq = p.nextReq.Add(tr)
			} else {
				p.nextReq = time.Time{}
			}
		}
	}
}

// crashLocked records one worker dying at start at t.
func (h *Host) crashLocked(p *pool, t time.Time) {
	pid := h.newPIDLocked()
	h.addEventLocked(Event{Logfile: "System", Source: "W3SVC", Code: 1009, Type: "warning", Time: t,
		Strings: []string{p.name, strconv.Itoa(pid), ExitCodeCrash}})
	keep := p.crashes[:0]
	for _, c := range p.crashes {
		if t.Sub(c) < p.interval {
			keep = append(keep, c)
		}
	}
	p.crashes = append(keep, t)
	p.workerPID = 0
	if p.rapidFail && len(p.crashes) >= p.maxCrashes {
		h.addEventLocked(Event{Logfile: "System", Source: "W3SVC", Code: 1002, Type: "error", Time: t,
			Strings: []string{p.name}})
		h.stopPoolLocked(p)
		h.logf("pool %s disabled by rapid-fail protection", p.name)
	}
}

// Request sends one local HTTP GET to the site bound to port and returns the status code
// (200, 503, or 0 when nothing listens), as a warm-up request made on the host would see it.
func (h *Host) Request(port int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	h.settleLocked(now)
	if !h.spec.IIS || !h.w3svcRunningLocked() {
		return 0 // connection refused
	}
	var st *site
	for _, s := range h.sites {
		if sitePort(s.bindings) == port {
			st = s
		}
	}
	if st == nil || st.state != 2 {
		return 0
	}
	p := h.poolLocked(st.pool)
	if p == nil || p.state != 2 {
		return 503
	}
	if h.workersCrashLocked() {
		h.crashLocked(p, now)
		return 503
	}
	if p.workerPID == 0 {
		p.workerPID = h.newPIDLocked()
	}
	p.nextReq = time.Time{}
	return 200
}

func sitePort(bindings string) int {
	parts := strings.Split(bindings, ":")
	if len(parts) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(parts[1])
	return n
}
