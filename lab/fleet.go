// Package lab runs a simulated fleet of Windows Server 2003 + IIS 6 hosts on this machine: each
// host a lab/win2003 model behind its own lab/wsman WinRM listener on a loopback address, so the
// whole tool can be seen, tested and timed without Windows.
package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/iisremedy/iisremedy/playbooks"
)

// Config describes a fleet. The zero value of every field but Password has a default.
type Config struct {
	Hosts    int    // number of hosts (0 = 1)
	Scenario string // a scenario name of win2003.Scenarios, or "mix" ("" = "mix")
	Seed     int64  // makes "mix" and per-host details reproducible

	// FirstAddr is the first host's address; the others follow it (0 = 127.0.10.1).
	FirstAddr netip.Addr
	// Port is every host's port (0 = 5985, or 5986 with HTTPS; -1 = a free port per host, for tests).
	Port int

	HTTPS            bool
	TLSProfile       string   // "modern" or "server2003" ("" = "modern")
	Auth             []string // schemes offered: "negotiate", "basic" (nil = negotiate)
	AllowUnencrypted bool
	MaxEnvelopeKB    int           // 0 = 150, as WinRM 2.0
	Latency          time.Duration // added to every WinRM reply
	TimeScale        float64       // simulated seconds per real second (0 = 60)
	// VirtualTime runs the fleet on a manual clock that jumps ahead whenever everything that
	// joined it waits (win2003.Clock.Drive): hours of installs and reboots pass as fast as the
	// hosts answer, the same on a busy machine as on an idle one. TimeScale is then unused.
	VirtualTime bool
	// Clock, when set, is the fleet's clock instead of one scaled by TimeScale; tests pass a
	// manual clock and advance it.
	Clock *win2003.Clock

	User     string // "" = Administrator
	Password string

	// Quirks are the hosts' unconfirmed behaviours (nil = win2003.DefaultQuirks()).
	Quirks *win2003.Quirks
	// InstallerSize is the size of the lab's SP2 installer images (0 =
	// win2003.DefaultInstallerSize; any size works, 400 MiB included: hosts keep sizes and
	// hashes, not bytes).
	InstallerSize int64
	// InstallersDir, when set, receives the installer files the fleet's hosts need under their
	// catalogue names, with SHA256SUMS (WriteInstallers), and is the folder behind the fleet's
	// share.
	InstallersDir string
	// Share is the UNC name of the share the hosts' SYSTEM accounts can read ("" =
	// `\\LABSHARE\installers`); it serves InstallersDir.
	Share string
	// MaxProcessesPerShell, MaxMemoryPerShellMB and IdleTimeout are the hosts' WinRM shell
	// quotas (0 = WinRM 2.0's 15, 150 and 15 minutes: wsman.Server).
	MaxProcessesPerShell int
	MaxMemoryPerShellMB  int
	IdleTimeout          time.Duration

	// Logf, when set, receives the hosts' notable events.
	Logf func(format string, args ...any)
}

// Fleet is a running set of lab hosts. Close stops it.
type Fleet struct {
	hosts     []*Host
	clock     *win2003.Clock
	stopDrive context.CancelFunc
	images    []win2003.InstallerImage
	share     string
	certs     wsman.Certs
}

// Host is one lab host: its address, scenario and the verdict a correct diagnosis gives.
type Host struct {
	Addr     string // host:port exactly as the inventory writes it
	Scenario string
	Verdict  playbooks.Verdict
	// CertSHA256 is the HTTPS certificate's SHA-256 fingerprint (hex), "" on HTTP.
	CertSHA256 string
	// Sites are the host's web sites over HTTP, each "ip:port" or "ip:port host-header" as the
	// metabase binds it (port 80 and 8530 when the fleet can bind them, a free port otherwise).
	Sites []string

	Model  *win2003.Host
	Server *wsman.Server

	addrPort  string
	ip        string
	freePorts bool
	tlsConfig *tls.Config
	legacyTLS bool
	mu        sync.Mutex
	http      *http.Server
	sites     []*site
	closed    bool
}

// site is the listener of one port of a host's web sites.
type site struct {
	addr string // ip:port, chosen once
	srv  *http.Server
}

// Start builds the hosts and starts their listeners. On error nothing is left running.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	names, err := scenarioNames(cfg)
	if err != nil {
		return nil, err
	}
	clock := cfg.Clock
	f := &Fleet{stopDrive: func() {}}
	switch {
	case clock != nil:
	case cfg.VirtualTime:
		clock = win2003.NewManualClock(win2003.DefaultStart)
		var dctx context.Context
		dctx, f.stopDrive = context.WithCancel(context.Background())
		go clock.Drive(dctx)
	default:
		clock = win2003.NewClock(win2003.DefaultStart, cfg.TimeScale)
	}
	f.clock = clock
	f.images = win2003.NewInstallerImages(cfg.InstallerSize)
	if cfg.InstallersDir != "" {
		f.share = cfg.Share
		if f.share == "" {
			f.share = DefaultShare
		}
	}
	addr := cfg.FirstAddr
	for i, name := range names {
		if i > 0 {
			addr = nextHostAddr(addr)
		}
		h, err := f.newHost(cfg, i, name, addr)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.hosts = append(f.hosts, h)
	}
	if cfg.InstallersDir != "" {
		if err := WriteInstallers(cfg.InstallersDir, f.Images()); err != nil {
			f.Close()
			return nil, err
		}
	}
	for _, h := range f.hosts {
		if err := h.listen(); err != nil {
			f.Close()
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// DefaultShare is the UNC name of the fleet's share of installers.
const DefaultShare = `\\LABSHARE\installers`

// Images returns the installer images the fleet's hosts need: one per architecture and install
// language among them, in the order of win2003.NewInstallerImages.
func (f *Fleet) Images() []win2003.InstallerImage {
	need := map[string]bool{}
	for _, h := range f.hosts {
		s := h.Model.Spec()
		need[win2003.InstallerName(s.Arch, s.Language)] = true
	}
	var out []win2003.InstallerImage
	for _, img := range f.images {
		if need[img.Name] {
			out = append(out, img)
		}
	}
	return out
}

// Share returns the UNC name of the fleet's share ("" when it serves no installers folder).
func (f *Fleet) Share() string { return f.share }

func (cfg *Config) defaults() error {
	if cfg.Hosts == 0 {
		cfg.Hosts = 1
	}
	if cfg.Hosts < 0 || cfg.Hosts > 10000 {
		return fmt.Errorf("hosts %d: want 1 to 10000", cfg.Hosts)
	}
	if cfg.Scenario == "" {
		cfg.Scenario = "mix"
	}
	if !cfg.FirstAddr.IsValid() {
		cfg.FirstAddr = netip.AddrFrom4([4]byte{127, 0, 10, 1})
	}
	if !cfg.FirstAddr.Is4() || !cfg.FirstAddr.IsLoopback() {
		return fmt.Errorf("first address %s: the lab serves on IPv4 loopback addresses only", cfg.FirstAddr)
	}
	if cfg.Port == 0 {
		cfg.Port = 5985
		if cfg.HTTPS {
			cfg.Port = 5986
		}
	}
	switch cfg.TLSProfile {
	case "":
		cfg.TLSProfile = "modern"
	case "modern", "server2003":
	default:
		return fmt.Errorf("tls profile %q: want modern or server2003", cfg.TLSProfile)
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 60
	}
	if cfg.TimeScale < 0 {
		return fmt.Errorf("time scale %g: want a positive factor", cfg.TimeScale)
	}
	for _, a := range cfg.Auth {
		if a != "negotiate" && a != "basic" {
			return fmt.Errorf("auth %q: want negotiate or basic", a)
		}
	}
	if cfg.User == "" {
		cfg.User = "Administrator"
	}
	return nil
}

func scenarioNames(cfg Config) ([]string, error) {
	if cfg.Scenario == "mix" {
		return win2003.Mix(cfg.Hosts, cfg.Seed), nil
	}
	if _, ok := win2003.ScenarioVerdict(cfg.Scenario); !ok {
		return nil, fmt.Errorf("scenario %q: want mix or one of %v", cfg.Scenario, win2003.Scenarios())
	}
	names := make([]string, cfg.Hosts)
	for i := range names {
		names[i] = cfg.Scenario
	}
	return names, nil
}

// nextHostAddr skips .0 and .255 so every address looks like a host.
func nextHostAddr(a netip.Addr) netip.Addr {
	for {
		a = a.Next()
		b := a.As4()
		if b[3] != 0 && b[3] != 255 {
			return a
		}
	}
}

func (f *Fleet) newHost(cfg Config, i int, scenario string, addr netip.Addr) (*Host, error) {
	h := &Host{Scenario: scenario, ip: addr.String(), freePorts: cfg.Port < 0}
	// Each host gets its own random source so the flaky scenario's faults are reproducible.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
	var share *win2003.Share
	if f.share != "" {
		share = &win2003.Share{UNC: f.share, Dir: cfg.InstallersDir}
	}
	model, err := win2003.NewScenario(scenario, win2003.Options{
		Seed:          cfg.Seed*100003 + int64(i),
		Clock:         f.clock,
		OnPowerChange: h.powerChanged,
		Logf:          cfg.Logf,
		Quirks:        cfg.Quirks,
		Installers:    f.images,
		Share:         share,
	})
	if err != nil {
		return nil, err
	}
	spec := model.Spec()
	h.Model, h.Verdict = model, spec.Verdict
	h.Server = &wsman.Server{
		Host:              model,
		Hostname:          model.ComputerName(),
		User:              cfg.User,
		Password:          cfg.Password,
		Auth:              cfg.Auth,
		AllowUnencrypted:  cfg.AllowUnencrypted,
		MaxEnvelopeSizeKB: cfg.MaxEnvelopeKB,
		Latency:           cfg.Latency,
		Second:            time.Duration(float64(time.Second) / cfg.TimeScale),
		// shells idle by the simulated clock, as the host's processes run by it
		Clock:                f.clock,
		MaxProcessesPerShell: cfg.MaxProcessesPerShell,
		MaxMemoryPerShellMB:  cfg.MaxMemoryPerShellMB,
		IdleTimeout:          cfg.IdleTimeout,
	}
	if spec.DropRate > 0 || spec.Fail500Rate > 0 {
		var mu sync.Mutex
		draw := func() float64 { mu.Lock(); defer mu.Unlock(); return rng.Float64() }
		h.Server.DropConnection = func(int64, *http.Request) bool { return draw() < spec.DropRate }
		h.Server.Fail500Rate = spec.Fail500Rate
	}
	port := cfg.Port
	if port < 0 {
		port = 0
	}
	h.addrPort = net.JoinHostPort(addr.String(), strconv.Itoa(port))
	if cfg.HTTPS {
		// The certificate names the address the inventory uses, as an admin's would name the host.
		tc, cert, err := f.certs.TLSConfig(cfg.TLSProfile, addr.String())
		if err != nil {
			return nil, err
		}
		h.tlsConfig = tc
		h.CertSHA256 = cert.Fingerprint
		h.legacyTLS = cfg.TLSProfile == wsman.ProfileServer2003
	}
	return h, nil
}

// listen opens the host's listener and serves it until stop.
func (h *Host) listen() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	// addrPort is empty while the model is still being built (it reports power on at birth).
	if h.closed || h.http != nil || h.addrPort == "" {
		return nil
	}
	ln, err := net.Listen("tcp", h.addrPort)
	if err != nil {
		return &ListenError{Addr: h.addrPort, Err: err}
	}
	if h.Addr == "" {
		h.Addr = ln.Addr().String()
		h.addrPort = h.Addr // a reboot comes back on the same port
	}
	srv := &http.Server{
		Handler:           h.Server,
		ConnContext:       h.Server.ConnContext,
		ConnState:         h.Server.ConnState,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          discardLog,
	}
	h.http = srv
	if h.tlsConfig != nil {
		ln = tls.NewListener(ln, h.tlsConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	return h.listenSites()
}

// ListenError is a host address the lab could not listen on (another process has it).
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return "listen on " + e.Addr + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// stop closes the listeners and every open connection: the machine is off.
func (h *Host) stop() {
	h.mu.Lock()
	srv := h.http
	h.http = nil
	var sites []*http.Server
	for _, s := range h.sites {
		sites = append(sites, s.srv)
		s.srv = nil
	}
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, s := range sites {
		if s != nil {
			_ = s.Close()
		}
	}
}

// powerChanged follows the model's power state: down closes the endpoint so connections are
// refused, as a rebooting machine's are; up opens it again with no shells left.
func (h *Host) powerChanged(up bool) {
	if !up {
		h.stop()
		h.Server.Reset()
		return
	}
	_ = h.listen()
}

// Hosts returns the fleet's hosts in inventory order.
func (f *Fleet) Hosts() []*Host { return f.hosts }

// Clock returns the fleet's clock.
func (f *Fleet) Clock() *win2003.Clock { return f.clock }

// Close stops every host.
func (f *Fleet) Close() {
	f.stopDrive()
	for _, h := range f.hosts {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.stop()
	}
}

// WriteInventory writes one host:port a line, the inventory format iisremedy reads. HTTPS hosts
// carry the settings a client needs to trust them: https=true and the certificate's pin, plus
// tls=legacy for the server2003 profile.
func (f *Fleet) WriteInventory(w io.Writer) error {
	var errs []error
	for _, h := range f.hosts {
		line := h.Addr
		if h.CertSHA256 != "" {
			line += " https=true tls_fingerprint=" + h.CertSHA256
			if h.legacyTLS {
				line += " tls=legacy"
			}
		}
		_, err := fmt.Fprintln(w, line)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Manifest is what the lab knows about its hosts: the scenario of each, the verdict a correct
// diagnosis gives and the outcome a correct remediation reaches with the default plan. Its JSON
// shape:
//
//	{"hosts": [{"host": "127.0.10.1:5985", "scenario": "installer-fails", "verdict": "affected",
//	            "outcome": "failed", "failed_step": "install", "reason": "…",
//	            "sites": ["127.0.10.1:80", "127.0.10.1:80 intranet"]},
//	           {"host": "127.0.10.2:5985", "scenario": "at-risk", "verdict": "at-risk",
//	            "outcome": "not-planned", "reason": "…", "outcome_with_at_risk": "remediated"}],
//	 "share": "\\\\LABSHARE\\installers",
//	 "installers": [{"name": "WindowsServer2003-KB914961-SP2-x86-ENU.exe", "size": 1052897, "sha256": "…"}]}
//
// outcome is "remediated", "not-planned" or "failed"; failed_step ("stage", "install",
// "reboot", "verify") and reason say where and why; outcome_with_at_risk is the outcome when
// the plan includes at-risk hosts, present where it differs. share is set when the fleet serves
// an installers folder.
type Manifest struct {
	Hosts      []ManifestHost      `json:"hosts"`
	Share      string              `json:"share,omitempty"`
	Installers []ManifestInstaller `json:"installers"`
}

// ManifestHost is one host of a Manifest; Host is the host:port exactly as the inventory line
// starts.
type ManifestHost struct {
	Host              string            `json:"host"`
	Scenario          string            `json:"scenario"`
	Verdict           playbooks.Verdict `json:"verdict"`
	Outcome           string            `json:"outcome"`
	FailedStep        string            `json:"failed_step,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	OutcomeWithAtRisk string            `json:"outcome_with_at_risk,omitempty"`
	Sites             []string          `json:"sites,omitempty"`
	CertSHA256        string            `json:"cert_sha256,omitempty"`
}

// ManifestInstaller is one installer image the fleet's hosts recognise.
type ManifestInstaller struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest returns the fleet's manifest.
func (f *Fleet) Manifest() Manifest {
	m := Manifest{Hosts: make([]ManifestHost, 0, len(f.hosts)), Share: f.share}
	for _, h := range f.hosts {
		o, _ := win2003.ScenarioOutcome(h.Scenario)
		h.mu.Lock()
		sites := slices.Clone(h.Sites)
		h.mu.Unlock()
		m.Hosts = append(m.Hosts, ManifestHost{Host: h.Addr, Scenario: h.Scenario, Verdict: h.Verdict,
			Outcome: o.Outcome, FailedStep: o.FailedStep, Reason: o.Reason, OutcomeWithAtRisk: o.WithAtRisk,
			Sites: sites, CertSHA256: h.CertSHA256})
	}
	for _, img := range f.Images() {
		m.Installers = append(m.Installers, ManifestInstaller{Name: img.Name, Size: img.Size, SHA256: img.SHA256})
	}
	return m
}

// WriteManifest writes the manifest as indented JSON.
func (f *Fleet) WriteManifest(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f.Manifest())
}

// EngineClock is a lab clock as the engine uses one (remediate.Clock): the engine then waits on
// simulated time, and its workers join a virtual clock.
type EngineClock struct{ C *win2003.Clock }

// Now is the simulated time.
func (e EngineClock) Now() time.Time { return e.C.Now() }

// Sleep waits d of simulated time, or returns ctx's error when ctx ends first.
func (e EngineClock) Sleep(ctx context.Context, d time.Duration) error {
	if !e.C.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

// AfterFunc calls f after d of simulated time.
func (e EngineClock) AfterFunc(d time.Duration, f func()) func() bool {
	return e.C.AfterFunc(d, f).Stop
}

// Join makes the calling goroutine a participant of a virtual clock (win2003.Clock.Join).
func (e EngineClock) Join(ctx context.Context) (context.Context, func()) { return e.C.Join(ctx) }

// discardLog silences net/http's own logging of client disconnects, which a reboot causes by design.
var discardLog = log.New(io.Discard, "", 0)

// Scenarios lists the scenario names a fleet accepts besides "mix".
func Scenarios() []string { return win2003.Scenarios() }
