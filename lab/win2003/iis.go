package win2003

import (
	"fmt"
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
	bindings []binding
	state    int // ServerState: 2 started, 4 stopped
}

// binding is one ServerBindings entry, the metabase's "IP:Port:Hostname" (IIS 6 SDK,
// ServerBindings, ms524773: IP and host name empty = any).
type binding struct {
	ip   string
	port int
	host string
}

func (b binding) String() string { return fmt.Sprintf("%s:%d:%s", b.ip, b.port, b.host) }

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
	return cmpVersion(w3core, h.quirks.VersionKB973917) >= 0 && cmpVersion(iisutil, VersionSP2) < 0
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

// Request sends one local HTTP GET without a Host header to the site bound to port; see
// RequestHost.
func (h *Host) Request(port int) int { return h.RequestHost(port, "") }

// RequestHost sends one HTTP GET to port with the Host header host ("" = none) and returns the
// status a client sees: 200 from a worker process; 503 when the site's pool is stopped or its
// worker dies at start (the request that starts a worker on mismatched binaries crashes it:
// W3SVC 1009, and Rapid-Fail Protection's 1002 after MaxCrashes); 400 when no site on the port
// takes that host name (HTTP.sys's "Bad Request (Invalid Hostname)"); 0 when nothing listens
// (the host is down, W3SVC is stopped, or no site binds the port). A binding with a host name
// is chosen before one without.
func (h *Host) RequestHost(port int, host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	h.settleLocked(now)
	if !h.up || !h.spec.IIS || !h.w3svcRunningLocked() {
		return 0 // connection refused
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host, "]") {
		host = host[:i]
	}
	var st, any *site
	listens := false
	for _, s := range h.sites {
		if s.state != 2 {
			continue
		}
		for _, b := range s.bindings {
			if b.port != port {
				continue
			}
			listens = true
			switch {
			case b.host != "" && strings.EqualFold(b.host, host):
				st = s
			case b.host == "" && any == nil:
				any = s
			}
		}
	}
	if st == nil {
		st = any
	}
	if st == nil {
		if listens {
			return 400
		}
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

// SiteBinding is one binding of a web site of the host.
type SiteBinding struct {
	Site    int    // the site's number (W3SVC/N)
	Comment string // ServerComment
	Port    int
	Host    string // host header ("" = any)
}

// SiteBindings lists the bindings of the host's web sites (none without IIS).
func (h *Host) SiteBindings() []SiteBinding {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []SiteBinding
	for _, s := range h.sites {
		for _, b := range s.bindings {
			out = append(out, SiteBinding{Site: s.id, Comment: s.comment, Port: b.port, Host: b.host})
		}
	}
	return out
}

// RebindPorts moves the bindings of each port in ports (old port: new port) in the metabase:
// the fleet does it when it serves the sites on other ports than the metabase's (port 80 needs
// privileges).
func (h *Host) RebindPorts(ports map[int]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sites {
		for i := range s.bindings {
			if to, ok := ports[s.bindings[i].port]; ok {
				s.bindings[i].port = to
			}
		}
	}
}
