// Package win2003 simulates a Windows Server 2003 host with IIS 6 for the lab: its registry, files
// with versions, installed updates, System event log, services, IIS metabase (pools and sites),
// scheduled tasks, boot time and disk, and a small cmd.exe with the programs iisremedy's probe and
// remediation use (reg, wmic, sc, net, schtasks, shutdown, tasklist, hostname, findstr, ping,
// certutil, iisreset, iisapp.vbs, the SP2 installer and the scripts iisremedy writes). Output
// formats follow docs/facts.md (the project's reference notes) or the source a comment
// names; where no source settles a format the comment says "unconfirmed" ([NC]) or "inferred" ([I]),
// and the choice is a field of Quirks (Options.Quirks; DefaultQuirks documents each).
//
// # Hosts and scenarios
//
// NewScenario(name, Options) builds a host of a named scenario (Scenarios lists them,
// ScenarioVerdict gives the verdict a correct diagnosis reaches, Mix spreads them over a fleet
// reproducibly). New(Spec, Options) builds any other host. A Host implements wsman.Host: Exec runs
// one command line as `cmd /c` would under a WinRM shell, writing the host's code page (OEM for
// console programs, ANSI for wmic to a pipe, UTF-16LE for wmic to a file).
//
// # Time
//
// Time is a Clock: NewClock(start, scale) runs scale simulated seconds per real second (60 = one
// simulated minute per second), NewManualClock stands still until Advance. Tests use a manual
// clock, so that their outcome never depends on the machine's speed: they advance it past the
// timers the host sets (Pending, WaitPending, AdvanceToNext). One Clock may drive a whole fleet. State is mostly data: worker starts, crashes and Rapid-Fail
// Protection are computed lazily from the clock when something looks, so an idle host runs no
// goroutine and costs about 30 KB. Timers exist only for a pending shutdown, a boot, a scheduled
// task waiting for its start time, and a running task or installer.
//
// # Power
//
// A host is up or down. `shutdown /r /t N` takes it down after N simulated seconds (commands and
// tasks in flight are killed) and boots it again after Options.BootDuration, with a newer
// LastBootUpTime, pending file replacements applied, W3SVC and its auto-start pools started; a
// never-returns host stays down. The fleet follows the state through any of: Options.OnPowerChange
// (called with false/true, without the host's lock, not for the first boot in New), Up, and
// PowerChanged (a channel closed at the next change). While down, Exec fails with exit code 1; the
// fleet is expected to refuse connections and to Reset its wsman server on each change.
//
// # Scripts
//
// The host cannot run VBScript or PowerShell. It recognises the scripts iisremedy writes by their
// content (scripts.go, powershell.go): the staging decoder and downloads, a file's SHA-256, a
// local warm-up request. Anything else fails as Windows would. An SP2 installer is recognised by
// its content, whatever its name: a file whose size and SHA-256 are those of one of the lab's
// installer images (InstallerImage, NewInstallerImages; Options.Installers). Big files (over
// SmallFileLimit) are kept as a size, running hashes and the part of an image they hold.
//
// # Logs and shares
//
// Commands and InstallerRuns log what the host ran, with the user and the exit code. A Share
// (Options.Share) is a folder of the fleet that the host's SYSTEM account can read and the WinRM
// user cannot (the double hop). Inside a WinRM shell the programs count against the shell's job
// (wsman.JobOf): MaxProcessesPerShell and MaxMemoryPerShellMB.
//
// # Flaky hosts
//
// Spec.DropRate and Spec.Fail500Rate are the flaky scenario's connection-drop and HTTP 500 rates;
// the host model does not apply them: the fleet sets the wsman server's fault knobs from them.
package win2003

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/iisremedy/iisremedy/playbooks"
)

// Versions of the IIS 6 files at each Windows Server 2003 level (docs/facts.md §1.2).
const (
	VersionRTM = "6.0.3790.0"
	VersionSP1 = "6.0.3790.1830"
	VersionSP2 = "6.0.3790.3959"
	// VersionKB982666 is w3core.dll and w3dt.dll after KB982666 [P] (docs/facts.md §1.2).
	VersionKB982666 = "6.0.3790.4693"
)

// Options configures a host. The zero value of every field has a default.
type Options struct {
	ComputerName string // "" = a name derived from Seed, e.g. WEB042
	Seed         int64  // varies pids, boot time, pool names and other details reproducibly
	Clock        *Clock // nil = a scaled clock at scale 60 started at 2010-06-21 09:00 UTC

	// BootDuration is the simulated time from power-off to a running host (0 = 3 minutes).
	BootDuration time.Duration
	// InstallDuration is the simulated run time of the SP2 installer (0 = 25 minutes, [NC] docs/facts.md §2.4).
	InstallDuration time.Duration
	// RequestInterval is the simulated interval of the background request trickle per pool
	// (0 = 1 minute; negative = no background requests).
	RequestInterval time.Duration

	// Quirks are the unconfirmed behaviours (nil = DefaultQuirks()).
	Quirks *Quirks
	// Installers are the installer images the host recognises (nil = NewInstallerImages of
	// InstallerSize, computed when first needed). A fleet computes them once for all its hosts.
	Installers []InstallerImage
	// InstallerSize is the size of the images when Installers is nil (0 = DefaultInstallerSize).
	InstallerSize int64
	// Share is the network share the host's SYSTEM account can read (nil = none).
	Share *Share

	// OnPowerChange, when set, is called with false when the host goes down and true when it is up
	// again. It runs without the host's lock held, in a timer goroutine.
	OnPowerChange func(up bool)
	// Logf, when set, receives one line per notable state change.
	Logf func(format string, args ...any)
}

// Host is one simulated Windows Server 2003 machine. Its methods are safe for concurrent use.
type Host struct {
	opts   Options
	spec   Spec
	clock  *Clock
	quirks Quirks

	mu       sync.Mutex
	up       bool
	powerCh  chan struct{}
	bootTime time.Time
	procCtx  context.Context // cancelled when the host goes down: kills running commands
	procStop context.CancelFunc

	reg      *registry
	fs       *fileSystem
	events   []Event
	nextRec  int
	services []*service
	pools    []*pool
	sites    []*site
	tasks    []*task
	pending  []pendingFile // file replacements applied at the next boot
	nextPID  int

	wmicInstalled bool
	installing    bool
	shutdownTimer *Timer
	shutdownSeq   int

	commands []*CommandRecord
	installs []*InstallerRun
	web      *http.Client // the host's HTTP client (MSXML2.ServerXMLHTTP, Net.WebRequest)
}

// Spec is the static description of a host that a scenario produces. Fields are exported so a test
// or the fleet can build variations with New.
type Spec struct {
	Scenario     string
	Verdict      playbooks.Verdict // what a correct diagnosis gives
	ComputerName string
	Arch         string // "x86" or "AMD64"
	Language     string // "0409" English or "0C0A" Spanish
	SystemRoot   string // `C:\WINDOWS` or `D:\WINNT`
	ServicePack  int    // 0, 1 or 2
	IIS          bool
	IISLevel     string            // version of the IIS files IIS was installed with
	Overrides    map[string]string // file name (lower case) -> version, e.g. updates' files
	Hotfixes     []string          // KB numbers registered under Updates\...\SP3 (or SP2 on SP1)
	OtherCause   bool              // workers crash with ffffffff although binaries match
	PowerShell   bool              // WMF 2.0 present
	DiskSize     int64
	FreeDisk     int64
	TZOffset     int // minutes east of UTC
	NeverReturns bool
	NoTrickle    bool // no background requests (pools never start a worker on their own)
	Pools        []string
	// DropRate and Fail500Rate are the flaky scenario's connection-drop and HTTP 500 rates
	// (0..1); the fleet applies them through the wsman server's fault knobs.
	DropRate    float64
	Fail500Rate float64
	// InstallerFails names why the SP2 installer fails on this host: "" (it works), "disk" (it
	// finds too little space whatever is free) or "inf" (an INF check fails, as in the failure
	// sample of docs/facts.md §2.3).
	InstallerFails string
	// PendingReboot: an earlier update left a file replacement waiting for the next boot
	// (PendingFileRenameOperations is set).
	PendingReboot bool
	WMICInstalled bool // false = the next wmic run prints the first-run banner
	BootAgo       time.Duration
}

// New builds a host from spec. It returns an error for an impossible spec.
func New(spec Spec, opts Options) (*Host, error) {
	if spec.Arch == "" {
		spec.Arch = "x86"
	}
	if spec.Arch != "x86" && spec.Arch != "AMD64" {
		return nil, fmt.Errorf("win2003: unsupported architecture %q", spec.Arch)
	}
	if spec.Language == "" {
		spec.Language = "0409"
	}
	if _, ok := locales[strings.ToUpper(spec.Language)]; !ok {
		return nil, fmt.Errorf("win2003: unsupported install language %q", spec.Language)
	}
	spec.Language = strings.ToUpper(spec.Language)
	if spec.SystemRoot == "" {
		spec.SystemRoot = `C:\WINDOWS`
	}
	if len(spec.SystemRoot) < 4 || spec.SystemRoot[1] != ':' || spec.SystemRoot[2] != '\\' {
		return nil, fmt.Errorf("win2003: bad system root %q", spec.SystemRoot)
	}
	if spec.ComputerName == "" {
		spec.ComputerName = opts.ComputerName
	}
	if spec.ComputerName == "" {
		spec.ComputerName = fmt.Sprintf("WEB%03d", uint64(opts.Seed)%1000)
	}
	spec.ComputerName = strings.ToUpper(spec.ComputerName)
	if spec.IIS && spec.IISLevel == "" {
		spec.IISLevel = VersionSP2
	}
	if spec.IIS && len(spec.Pools) == 0 {
		spec.Pools = []string{"DefaultAppPool"}
	}
	if spec.DiskSize == 0 {
		spec.DiskSize = 40 << 30
	}
	if spec.FreeDisk == 0 {
		spec.FreeDisk = 12 << 30
	}
	if spec.BootAgo == 0 {
		spec.BootAgo = 50 * time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(DefaultStart, 60)
	}
	if opts.BootDuration <= 0 {
		opts.BootDuration = 3 * time.Minute
	}
	if opts.InstallDuration <= 0 {
		opts.InstallDuration = 25 * time.Minute
	}
	if opts.RequestInterval == 0 {
		opts.RequestInterval = time.Minute
	}
	q := DefaultQuirks()
	if opts.Quirks != nil {
		q = opts.Quirks.withDefaults()
	}
	h := &Host{opts: opts, spec: spec, clock: opts.Clock, quirks: q, powerCh: make(chan struct{}),
		web: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	h.nextPID = 1000 + int(uint64(opts.Seed)%997)*4
	h.wmicInstalled = spec.WMICInstalled
	h.build()
	now := h.clock.Now()
	h.boot(now.Add(-spec.BootAgo), false)
	h.mu.Lock()
	if spec.PendingReboot {
		// an earlier security update's replacement of a file in use, waiting for the next boot
		name, v := "mswsock.dll", "5.2.3790.4318"
		h.pending = append(h.pending, pendingFile{path: spec.SystemRoot + `\system32\` + name, version: v, size: fileSize(name, v)})
		h.setPendingRenamesLocked()
	}
	h.settleLocked(now)
	h.mu.Unlock()
	return h, nil
}

// DefaultStart is the simulated instant a default clock starts at: a Monday after KB982666's release.
var DefaultStart = time.Date(2010, 6, 21, 9, 0, 0, 0, time.UTC)

// ComputerName reports the host's NetBIOS name (upper case).
func (h *Host) ComputerName() string { return h.spec.ComputerName }

// Spec returns the static description the host was built from.
func (h *Host) Spec() Spec { return h.spec }

// Scenario reports the scenario name the host was built from ("" for a hand-made Spec).
func (h *Host) Scenario() string { return h.spec.Scenario }

// Verdict reports what a correct diagnosis of the host, as built, gives.
func (h *Host) Verdict() playbooks.Verdict { return h.spec.Verdict }

// Clock returns the host's clock.
func (h *Host) Clock() *Clock { return h.clock }

// Up reports whether the host is powered on and answering.
func (h *Host) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// PowerChanged returns a channel that is closed at the host's next power change, after
// Options.OnPowerChange has run for it.
func (h *Host) PowerChanged() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.powerCh
}

// LastBootUpTime reports when the host last booted (simulated time).
func (h *Host) LastBootUpTime() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bootTime
}

// Event is one entry of the simulated System event log.
type Event struct {
	Record  int
	Logfile string
	Source  string
	Code    int
	Type    string // "warning", "error", "information"
	Time    time.Time
	Strings []string // insertion strings
	User    string
}

// Events returns a copy of the System log entries from the given source ("" = all), oldest first.
func (h *Host) Events(source string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked(h.clock.Now())
	var out []Event
	for _, e := range h.events {
		if source == "" || strings.EqualFold(e.Source, source) {
			out = append(out, e)
		}
	}
	return out
}

// PoolState reports a pool's AppPoolState (1 starting, 2 started, 3 stopping, 4 stopped), 0 when
// the pool does not exist.
func (h *Host) PoolState(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked(h.clock.Now())
	if p := h.poolLocked(name); p != nil {
		return p.state
	}
	return 0
}

// FileVersion reports the version of a file by full path ("" when absent or unversioned).
func (h *Host) FileVersion(path string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.fs.file(path); f != nil {
		return f.version
	}
	return ""
}

// Installing reports whether an SP2 installer is running.
func (h *Host) Installing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.installing
}

func (h *Host) logf(format string, args ...any) {
	if h.opts.Logf != nil {
		h.opts.Logf(h.spec.ComputerName+": "+format, args...)
	}
}

// setPowerLocked changes the power state; the caller calls the returned func after unlocking.
func (h *Host) setPowerLocked(up bool) func() {
	if h.up == up {
		return func() {}
	}
	h.up = up
	changed := h.powerCh
	h.powerCh = make(chan struct{})
	cb := h.opts.OnPowerChange
	h.logf("power up=%v", up)
	// The callback runs before the channel closes, so whoever waits on PowerChanged finds the
	// fleet's listener already closed (down) or open again (up).
	return func() {
		if cb != nil {
			cb(up)
		}
		close(changed)
	}
}

// boot brings the host up at t: pending file replacements, services, pools. notify is false for
// the first boot in New (nobody is listening yet).
func (h *Host) boot(t time.Time, notify bool) {
	h.mu.Lock()
	t = t.Truncate(time.Second).Add(500 * time.Millisecond)
	h.bootTime = t
	for _, pf := range h.pending {
		if f := h.fs.file(pf.path); f != nil {
			f.version = pf.version
			f.size = pf.size
			f.mtime = t
		} else {
			h.fs.put(&file{path: pf.path, version: pf.version, size: pf.size, mtime: t})
		}
	}
	if len(h.pending) > 0 {
		h.reg.deleteValue(`HKLM\SYSTEM\CurrentControlSet\Control\Session Manager`, "PendingFileRenameOperations")
	}
	h.pending = nil
	h.installing = false
	h.shutdownTimer = nil
	h.procCtx, h.procStop = context.WithCancel(context.Background())
	h.addEventLocked(Event{Logfile: "System", Source: "EventLog", Code: 6009, Type: "information", Time: t,
		Strings: []string{"5.02.", "3790", h.csdVersion(), "Multiprocessor Free"}})
	h.addEventLocked(Event{Logfile: "System", Source: "EventLog", Code: 6005, Type: "information", Time: t})
	for _, s := range h.services {
		s.running = s.auto
		if s.running {
			s.pid = h.newPIDLocked()
		}
	}
	h.startW3SVCPoolsLocked(t)
	for _, tk := range h.tasks {
		h.armTaskLocked(tk)
	}
	for _, st := range h.sites {
		st.state = 2
	}
	if !notify {
		h.up = true
		h.mu.Unlock()
		return
	}
	cb := h.setPowerLocked(true)
	h.mu.Unlock()
	cb()
}

// csdVersion is the CSDVersion text of the host's service pack ("" on RTM).
func (h *Host) csdVersion() string {
	if h.spec.ServicePack == 0 {
		return ""
	}
	return fmt.Sprintf("Service Pack %d", h.spec.ServicePack)
}

// zone is the host's local time zone (Spec.TZOffset).
func (h *Host) zone() *time.Location { return time.FixedZone("", h.spec.TZOffset*60) }

// localNow is the simulated time in the host's time zone.
func (h *Host) localNow() time.Time { return h.clock.Now().In(h.zone()) }

func (h *Host) newPIDLocked() int {
	h.nextPID += 4 + h.nextPID%13*4
	if h.nextPID > 60000 {
		h.nextPID = 1000 + h.nextPID%1000*4
	}
	return h.nextPID
}

// maxEvents bounds the event log like a wrapping log of the default size.
const maxEvents = 2000

func (h *Host) addEventLocked(e Event) {
	h.nextRec++
	e.Record = h.nextRec
	e.Time = e.Time.Truncate(time.Second)
	// keep time order: new events are nearly always the newest
	i := len(h.events)
	for i > 0 && h.events[i-1].Time.After(e.Time) {
		i--
	}
	h.events = append(h.events, Event{})
	copy(h.events[i+1:], h.events[i:])
	h.events[i] = e
	if len(h.events) > maxEvents {
		h.events = append(h.events[:0:0], h.events[len(h.events)-maxEvents:]...)
	}
}

// Exec runs one command line as `cmd /c` under a WinRM shell would, and returns its exit code.
// It implements wsman.Host: the command's context names the shell's user and job (wsman.JobOf),
// whose quotas the programs it runs count against.
func (h *Host) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	job := wsman.JobOf(ctx)
	user := job.User()
	if user == "" {
		user = "Administrator"
	}
	h.mu.Lock()
	up := h.up
	pctx := h.procCtx
	rec := &CommandRecord{Start: h.clock.Now(), User: user, CommandLine: cmdline}
	if up {
		h.logCommandLocked(rec)
	}
	h.mu.Unlock()
	if !up {
		// The endpoint refuses connections while down; a command that slips through fails.
		return 1
	}
	defer func() {
		h.mu.Lock()
		rec.End, rec.ExitCode = h.clock.Now(), code
		h.mu.Unlock()
	}()
	ctx, cancel := mergeCtx(ctx, pctx)
	defer cancel()
	defer func() {
		// A bug in the simulation must not take the whole lab down: the command fails instead.
		if r := recover(); r != nil {
			h.logf("internal error running %q: %v", cmdline, r)
			code = 255
		}
	}()
	out, errw := &stream{w: stdout, kind: streamPipe}, &stream{w: stderr, kind: streamPipe}
	p := h.newProc(ctx, false)
	p.stdin, p.rec, p.job, p.user = stdin, rec, job, user
	// The shell's own cmd.exe is the job's first process.
	end, err := job.Start(memCmd)
	if err != nil {
		p.write(errw, quotaText(err)+"\r\n")
		return 1
	}
	defer end()
	return p.runTop(cmdline, out, errw)
}

// mergeCtx returns a context done when either a or b is done.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	if b == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

type pendingFile struct {
	path    string
	version string
	size    int64
}

type service struct {
	name, display string
	dependsOn     string // the service it needs (stopping that one stops this one)
	auto          bool
	running       bool
	pid           int
	shareProcess  bool
	w3svc         bool
}

func (h *Host) serviceLocked(name string) *service {
	for _, s := range h.services {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

func (h *Host) poolLocked(name string) *pool {
	name = strings.TrimPrefix(strings.ToLower(name), "w3svc/apppools/")
	for _, p := range h.pools {
		if strings.EqualFold(p.name, name) {
			return p
		}
	}
	return nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// imageOfLocked returns the installer image f holds whole, or nil.
func (h *Host) imageOfLocked(f *file) *InstallerImage { return h.fs.image(f) }
