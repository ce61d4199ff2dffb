package checks

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

// Facts is what one probe established about a host. Fields whose section is missing or
// failed keep their zero value; Sections says which is which.
type Facts struct {
	Hostname string `json:"hostname,omitempty"`
	OS       OS     `json:"os"`
	// SystemRoot is %SystemRoot% (C:\WINDOWS) from the os section; SystemDrive its drive.
	SystemRoot  string `json:"system_root,omitempty"`
	SystemDrive string `json:"system_drive,omitempty"`
	// Arch is x86, x64 or ia64 (from PROCESSOR_ARCHITECTURE x86, AMD64, IA64); other
	// values are kept in lower case.
	Arch string `json:"arch,omitempty"`
	// InstallLanguage is the install language LCID in hex as the registry holds it ("0409");
	// Language its three-letter code ("ENU"), "" when unknown.
	InstallLanguage string `json:"install_language,omitempty"`
	Language        string `json:"language,omitempty"`
	// IIS is nil when the InetStp key does not exist (IIS not installed).
	IIS *IIS `json:"iis,omitempty"`
	// W3SVC is the World Wide Web Publishing service; Installed false when sc says it does
	// not exist.
	W3SVC Service `json:"w3svc"`
	// Files maps each file in %SystemRoot%\system32\inetsrv (lower-case name) to its
	// version as wmic prints it ("" for files without a version resource).
	Files map[string]string `json:"inetsrv_files,omitempty"`
	// Hotfixes are the KB subkeys of HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3
	// (upper case, e.g. KB982666).
	Hotfixes []string `json:"hotfixes,omitempty"`
	// Events are the W3SVC 1002/1009 events of the System log, newest first.
	Events []Event `json:"events,omitempty"`
	Pools  []Pool  `json:"pools,omitempty"`
	// BootTime and LocalTime are the host's LastBootUpTime and LocalDateTime, with its UTC
	// offset.
	BootTime  *time.Time `json:"boot_time,omitempty"`
	LocalTime *time.Time `json:"local_time,omitempty"`
	// Disk is the system drive's space.
	Disk *Disk `json:"disk,omitempty"`
	// PowerShellVersion is "" when PowerShell is not installed.
	PowerShellVersion string `json:"powershell_version,omitempty"`

	// Sections maps every probe section to its state: "ok", "missing" (absent from the
	// capture), "cut-short" (no end marker) or "failed" (present, but its output did not
	// establish the facts).
	Sections map[string]string `json:"sections"`
	// Problems explain every state other than ok, and lesser oddities, one sentence each; at
	// most maxSectionProblems a section, then one that counts the rest.
	Problems []Problem `json:"problems,omitempty"`

	problemCount map[string]int // problems per section, listed or not
}

// Bounds of the facts kept from one capture, whatever its size: a capture from a broken or
// hostile host costs memory in proportion to what is kept, not to what it printed. A real
// IIS 6 host has a few hundred inetsrv files and registered updates, tens of pools, and W3SVC
// events by the tens; what lies past a bound is left out and a problem says so.
const (
	maxFiles    = 4096 // inetsrv files
	maxHotfixes = 4096 // KB subkeys under SP3
	maxPools    = 2048 // application pools
	maxEvents   = 1000 // W3SVC events, the newest kept
	maxInserts  = 16   // insertion strings of one event (1009 has three)

	// maxValue bounds one kept value (a name, a version, an insertion string): what the probe
	// reads is tens of bytes, a pool or file name at most a few hundred.
	maxValue = 512

	maxSectionProblems = 20 // problems listed for one section
	maxQuotedValue     = 64 // bytes of a host's value quoted in a problem
)

// Section states in Facts.Sections.
const (
	sectionOK       = "ok"
	sectionMissing  = "missing"
	sectionCutShort = "cut-short"
	sectionFailed   = "failed"
)

// Problem is one thing the probe could not establish, or an oddity worth showing.
type Problem struct {
	Section string `json:"section"`
	Msg     string `json:"msg"`
}

// OS is the Windows version from HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion.
type OS struct {
	ProductName string `json:"product_name,omitempty"` // Microsoft Windows Server 2003
	Version     string `json:"version,omitempty"`      // CurrentVersion: 5.2
	Build       string `json:"build,omitempty"`        // CurrentBuildNumber: 3790
	CSDVersion  string `json:"csd_version,omitempty"`  // "Service Pack 2", localized
	ServicePack int    `json:"service_pack"`           // the number in CSDVersion; 0 without one
	BuildLab    string `json:"build_lab,omitempty"`
}

// IIS is HKLM\SOFTWARE\Microsoft\InetStp.
type IIS struct {
	MajorVersion int    `json:"major_version"`
	MinorVersion int    `json:"minor_version"`
	InstallPath  string `json:"install_path,omitempty"`
}

// Service is a Windows service's state from sc query.
type Service struct {
	Installed bool `json:"installed"`
	State     int  `json:"state,omitempty"` // 4 running, 1 stopped, ...
}

// running reports whether the service is running.
func (s Service) running() bool { return s.Installed && s.State == serviceRunning }

// Event is a W3SVC event from the System log.
type Event struct {
	Code int       `json:"code"`
	Time time.Time `json:"time"` // TimeGenerated with the host's offset; zero if unreadable
	Pool string    `json:"pool,omitempty"`
	// PID is the worker process ID (1009), 0 when absent.
	PID int `json:"pid,omitempty"`
	// ExitCode is the worker's exit code (1009's third insertion string) normalized to
	// lower-case hex without 0x and leading zeros ("ffffffff", "80"); "" when absent.
	ExitCode string   `json:"exit_code,omitempty"`
	Inserts  []string `json:"insertion_strings,omitempty"`
}

// Pool is an IIS 6 application pool (IIsApplicationPoolSetting).
type Pool struct {
	Name      string `json:"name"` // DefaultAppPool
	Path      string `json:"path"` // W3SVC/AppPools/DefaultAppPool
	AutoStart bool   `json:"auto_start"`
	State     int    `json:"state"` // 1 starting, 2 started, 3 stopping, 4 stopped
}

// poolStopped is AppPoolState 4 (docs/facts.md §4.1: 1 starting, 2 started, 3 stopping, 4
// stopped).
const poolStopped = 4

// Disk is a logical disk's space in bytes.
type Disk struct {
	Drive     string `json:"drive,omitempty"`
	FreeBytes uint64 `json:"free_bytes"`
	SizeBytes uint64 `json:"size_bytes"`
}

// established reports whether a section's facts were established.
func (f *Facts) established(section string) bool {
	return f != nil && f.Sections[section] == sectionOK
}

// hasHotfix reports whether the KB (e.g. "KB982666", any case) is registered, also as a
// re-release with a suffix (KB932370-v3).
func (f *Facts) hasHotfix(kb string) bool {
	kb = strings.ToUpper(kb)
	for _, h := range f.Hotfixes {
		if h == kb || strings.HasPrefix(h, kb+"-") {
			return true
		}
	}
	return false
}

// fileVersion returns a file's parsed version from the inetsrv listing (any case).
// ok is false when the file is absent or its version does not parse.
func (f *Facts) fileVersion(name string) (v playbooks.Version, raw string, ok bool) {
	raw, present := f.Files[strings.ToLower(name)]
	if !present {
		return v, "", false
	}
	v, ok = parseFileVersion(raw)
	return v, raw, ok
}

// parseFileVersion reads the a.b.c.d at the start of a version string, allowing trailing
// text ("6.0.3790.3959 (srv03_sp2_rtm.070216-1710)"). A version with fewer parts does not
// parse: read as 6.0.3790.0 it would look older than the baseline and condemn the host.
func parseFileVersion(s string) (playbooks.Version, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t("); i >= 0 {
		s = s[:i]
	}
	v, err := playbooks.ParseVersion(s)
	return v, err == nil
}

// Facts establishes the facts of a capture, section by section. It never fails: what a
// section could not establish is recorded in Sections and Problems.
func (c *Capture) Facts() *Facts {
	f := &Facts{Sections: map[string]string{}}
	for _, p := range c.Problems {
		f.Problems = append(f.Problems, Problem{Section: "capture", Msg: p})
	}
	for _, ps := range probeV1 {
		s := c.Section(ps.name)
		if s != nil {
			if n := longLines(s.Text); n > 0 {
				f.problem(ps.name, "%d lines longer than %d bytes cut", n, maxLine)
			}
		}
		switch {
		case s == nil:
			f.Sections[ps.name] = sectionMissing
			f.problem(ps.name, "section missing from the capture")
			continue
		case !s.Complete:
			f.Sections[ps.name] = sectionCutShort
			f.problem(ps.name, "section cut short (no end marker)")
			continue
		}
		if err := f.section(ps.name, s); err != nil {
			f.Sections[ps.name] = sectionFailed
			f.problem(ps.name, "%s", err.Error())
			continue
		}
		f.Sections[ps.name] = sectionOK
	}
	f.detach()
	for _, ps := range probeV1 {
		if n := f.problemCount[ps.name] - maxSectionProblems; n > 0 {
			f.Problems = append(f.Problems, Problem{Section: ps.name, Msg: fmt.Sprintf("%d more problems not listed", n)})
		}
	}
	return f
}

// detach copies every kept string out of the capture's text, which would otherwise stay in
// memory, whole, for as long as the facts do; a value longer than maxValue is cut, and the
// cut recorded.
func (f *Facts) detach() {
	keep := func(section string, p *string) {
		v := *p
		if len(v) > maxValue {
			f.problem(section, "value of %d bytes cut to %d: %s", len(v), maxValue, hostValue(v))
			v = strings.ToValidUTF8(v[:maxValue], "")
		}
		*p = strings.Clone(v)
	}
	keep(sectionHostname, &f.Hostname)
	for _, p := range []*string{&f.OS.ProductName, &f.OS.Version, &f.OS.Build, &f.OS.CSDVersion, &f.OS.BuildLab,
		&f.SystemRoot, &f.SystemDrive} {
		keep(sectionOS, p)
	}
	keep(sectionArch, &f.Arch)
	keep(sectionLang, &f.InstallLanguage)
	keep(sectionPowerShell, &f.PowerShellVersion)
	if f.IIS != nil {
		keep(sectionIIS, &f.IIS.InstallPath)
	}
	if f.Files != nil {
		files := make(map[string]string, len(f.Files))
		for k, v := range f.Files {
			keep(sectionInetsrv, &k)
			keep(sectionInetsrv, &v)
			files[k] = v
		}
		f.Files = files
	}
	for i := range f.Hotfixes {
		keep(sectionHotfixes, &f.Hotfixes[i])
	}
	for i := range f.Events {
		e := &f.Events[i]
		keep(sectionEvents, &e.Pool)
		keep(sectionEvents, &e.ExitCode)
		for j := range e.Inserts {
			keep(sectionEvents, &e.Inserts[j])
		}
	}
	for i := range f.Pools {
		keep(sectionAppPools, &f.Pools[i].Name)
		keep(sectionAppPools, &f.Pools[i].Path)
	}
}

// ParseFacts parses a capture and establishes its facts.
func ParseFacts(data []byte) (*Facts, error) {
	c, err := ParseCapture(data)
	if err != nil {
		return nil, err
	}
	return c.Facts(), nil
}

func (f *Facts) problem(section, format string, args ...any) {
	if f.problemCount == nil {
		f.problemCount = map[string]int{}
	}
	if f.problemCount[section]++; f.problemCount[section] > maxSectionProblems {
		return
	}
	f.Problems = append(f.Problems, Problem{Section: section, Msg: fmt.Sprintf(format, args...)})
}

// hostValue is a host's value in a problem's arguments: it is quoted only when the problem
// is listed (a hostile capture may bring millions that are only counted).
type hostValue string

func (v hostValue) String() string { return quoted(string(v)) }

// quoted renders a host's value for a problem or an error: Go-quoted, cut at maxQuotedValue
// bytes.
func quoted(v string) string {
	if len(v) <= maxQuotedValue {
		return strconv.Quote(v)
	}
	return strconv.Quote(strings.ToValidUTF8(v[:maxQuotedValue], "")) + fmt.Sprintf("…(%d bytes)", len(v))
}

// regQuery parses a reg query section, recording what its bounds left out.
func (f *Facts) regQuery(section, text string) *regQuery {
	q := parseRegQuery(text)
	if q.Dropped > 0 {
		f.problem(section, "%d registry lines past %d keys or %d values a key ignored", q.Dropped, maxRegKeys, maxRegValues)
	}
	return q
}

// rcNote describes a section's exit code for error messages.
func rcNote(s *Section) string {
	if !s.RCKnown {
		return "no exit code"
	}
	return fmt.Sprintf("exit code %d", s.RC)
}

// regMissing reports whether a reg query section says "key or value not found": reg.exe
// exits 1 and prints no key (its ERROR text is localized and may go to stderr).
func regMissing(s *Section, q *regQuery) bool {
	return s.RCKnown && s.RC == 1 && len(q.Keys) == 0
}

func (f *Facts) section(name string, s *Section) error {
	switch name {
	case sectionHostname:
		if s.RCKnown && s.RC != 0 {
			return fmt.Errorf("hostname failed (%s)", rcNote(s))
		}
		for l := range lines(s.Text) {
			if l = strings.TrimSpace(l); l != "" {
				f.Hostname = l
				return nil
			}
		}
		return fmt.Errorf("no host name printed")
	case sectionOS:
		return f.osSection(s)
	case sectionArch:
		q := f.regQuery(name, s.Text)
		v, ok := q.Value("PROCESSOR_ARCHITECTURE")
		if !ok || strings.TrimSpace(v.Data) == "" {
			return fmt.Errorf("no PROCESSOR_ARCHITECTURE value (%s)", rcNote(s))
		}
		f.Arch = normalizeArch(v.Data)
		return nil
	case sectionLang:
		q := f.regQuery(name, s.Text)
		v, ok := q.Value("InstallLanguage")
		if !ok || strings.TrimSpace(v.Data) == "" {
			return fmt.Errorf("no InstallLanguage value (%s)", rcNote(s))
		}
		f.InstallLanguage = strings.ToUpper(strings.TrimSpace(v.Data))
		f.Language = playbooks.LanguageForLCID(f.InstallLanguage)
		if f.Language == "" {
			f.problem(name, "install language %s is not a known language", f.InstallLanguage)
		}
		return nil
	case sectionIIS:
		return f.iisSection(s)
	case sectionW3SVC:
		if state, ok := parseSCQuery(s.Text); ok {
			f.W3SVC = Service{Installed: true, State: state}
			return nil
		}
		// ERROR_SERVICE_DOES_NOT_EXIST: sc exits 1060 (its message text is localized).
		if s.RCKnown && s.RC == 1060 {
			f.W3SVC = Service{}
			return nil
		}
		return fmt.Errorf("no service state in sc query output (%s)", rcNote(s))
	case sectionInetsrv:
		return f.inetsrvSection(s)
	case sectionHotfixes:
		q := f.regQuery(name, s.Text)
		if regMissing(s, q) {
			return nil // no update registered under SP3
		}
		if len(q.Keys) == 0 {
			return fmt.Errorf("no registry key printed (%s)", rcNote(s))
		}
		seen := map[string]bool{}
		more := 0
		for _, k := range q.Keys {
			last := k.Path[strings.LastIndex(k.Path, `\`)+1:]
			u := strings.ToUpper(last)
			switch {
			case !strings.HasPrefix(u, "KB") || seen[u]:
			case len(f.Hotfixes) >= maxHotfixes:
				more++
			default:
				seen[u] = true
				f.Hotfixes = append(f.Hotfixes, u)
			}
		}
		if more > 0 {
			f.problem(name, "%d updates past the first %d ignored", more, maxHotfixes)
		}
		sort.Strings(f.Hotfixes)
		return nil
	case sectionEvents:
		return f.eventsSection(s)
	case sectionAppPools:
		return f.poolsSection(s)
	case sectionBoot:
		in, ok := firstInstance(s.Text)
		if !ok {
			return fmt.Errorf("no Win32_OperatingSystem instance (%s)", rcNote(s))
		}
		if v, ok := in.get("LastBootUpTime"); ok {
			t, err := parseWMIDatetime(strings.TrimSpace(v), nil)
			if err != nil {
				return err
			}
			f.BootTime = &t
		} else {
			return fmt.Errorf("no LastBootUpTime")
		}
		if v, ok := in.get("LocalDateTime"); ok {
			if t, err := parseWMIDatetime(strings.TrimSpace(v), nil); err == nil {
				f.LocalTime = &t
			} else {
				f.problem(name, "%v", err)
			}
		}
		return nil
	case sectionDisk:
		in, ok := firstInstance(s.Text)
		if !ok {
			return fmt.Errorf("no Win32_LogicalDisk instance (%s)", rcNote(s))
		}
		fv, ok1 := in.get("FreeSpace")
		sv, ok2 := in.get("Size")
		free, ok3 := parseUintField(strings.TrimSpace(fv))
		size, ok4 := parseUintField(strings.TrimSpace(sv))
		if !(ok1 && ok2 && ok3 && ok4) {
			return fmt.Errorf("FreeSpace/Size not numbers: %s, %s", quoted(fv), quoted(sv))
		}
		f.Disk = &Disk{Drive: f.SystemDrive, FreeBytes: free, SizeBytes: size}
		return nil
	case sectionPowerShell:
		q := f.regQuery(name, s.Text)
		if v, ok := q.Value("PowerShellVersion"); ok {
			f.PowerShellVersion = strings.TrimSpace(v.Data)
			return nil
		}
		if regMissing(s, q) {
			return nil // not installed
		}
		return fmt.Errorf("no PowerShellVersion value (%s)", rcNote(s))
	}
	return nil
}

func normalizeArch(s string) string {
	switch a := strings.ToLower(strings.TrimSpace(s)); a {
	case "x86":
		return "x86"
	case "amd64", "em64t", "x64":
		return "x64"
	case "ia64":
		return "ia64"
	default:
		return a
	}
}

func (f *Facts) osSection(s *Section) error {
	q := f.regQuery(sectionOS, s.Text)
	ver, ok := q.Value("CurrentVersion")
	if !ok || strings.TrimSpace(ver.Data) == "" {
		return fmt.Errorf("no CurrentVersion value (%s)", rcNote(s))
	}
	f.OS.Version = strings.TrimSpace(ver.Data)
	if v, ok := q.Value("CurrentBuildNumber"); ok {
		f.OS.Build = strings.TrimSpace(v.Data)
	}
	if v, ok := q.Value("ProductName"); ok {
		f.OS.ProductName = strings.TrimSpace(v.Data)
	}
	if v, ok := q.Value("BuildLab"); ok {
		f.OS.BuildLab = strings.TrimSpace(v.Data)
	}
	if v, ok := q.Value("CSDVersion"); ok {
		f.OS.CSDVersion = strings.TrimSpace(v.Data)
		// "Service Pack 2" is localized ("Service Pack 2", "Paquete de servicio 2"...), so
		// take the number, not the words.
		n, found := lastNumber(f.OS.CSDVersion)
		if !found && f.OS.CSDVersion != "" {
			f.problem(sectionOS, "CSDVersion %s has no service pack number", hostValue(f.OS.CSDVersion))
		}
		f.OS.ServicePack = n
	}
	if v, ok := q.Value("SystemRoot"); ok {
		f.SystemRoot = strings.TrimSpace(v.Data)
		if len(f.SystemRoot) >= 2 && f.SystemRoot[1] == ':' {
			f.SystemDrive = strings.ToUpper(f.SystemRoot[:2])
		}
	}
	return nil
}

func lastNumber(s string) (int, bool) {
	end := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return 0, false
	}
	start := end
	for start > 0 && s[start-1] >= '0' && s[start-1] <= '9' {
		start--
	}
	if end-start > 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s[start:end])
	return n, err == nil
}

func (f *Facts) iisSection(s *Section) error {
	q := f.regQuery(sectionIIS, s.Text)
	if regMissing(s, q) {
		f.IIS = nil // IIS not installed
		return nil
	}
	mv, ok := q.Value("MajorVersion")
	if !ok {
		return fmt.Errorf("no MajorVersion value in InetStp (%s)", rcNote(s))
	}
	major, ok := mv.number()
	if !ok || major > 1000 {
		return fmt.Errorf("MajorVersion %s is not a number", quoted(mv.Data))
	}
	iis := &IIS{MajorVersion: int(major)}
	if v, ok := q.Value("MinorVersion"); ok {
		if n, ok := v.number(); ok && n <= 1000 {
			iis.MinorVersion = int(n)
		}
	}
	if v, ok := q.Value("InstallPath"); ok {
		iis.InstallPath = strings.TrimSpace(v.Data)
	}
	f.IIS = iis
	return nil
}

func (f *Facts) inetsrvSection(s *Section) error {
	f.Files = map[string]string{}
	more, instances := 0, 0
	for in := range wmiInstances(s.Text) {
		instances++
		name, ok := in.get("Name")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		base := strings.ToLower(name[strings.LastIndexAny(name, `\/`)+1:])
		if base == "" {
			continue
		}
		if _, known := f.Files[base]; !known && len(f.Files) >= maxFiles {
			more++
			continue
		}
		ver, _ := in.get("Version")
		f.Files[base] = strings.TrimSpace(ver)
	}
	if s.RCKnown && s.RC != 0 && instances == 0 {
		f.Files = nil
		return fmt.Errorf("wmic datafile failed (%s)", rcNote(s))
	}
	if more > 0 {
		f.problem(sectionInetsrv, "%d files past the first %d ignored", more, maxFiles)
	}
	return nil
}

// normalizeExitCode turns "0xFFFFFFFF", "ffffffff", "FFFFFFFF" into "ffffffff" and
// "0x00000080" into "80"; "" for anything that is not 1..8 hex digits.
func normalizeExitCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	if s == "" || len(s) > 8 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0"
	}
	return s
}

func (f *Facts) eventsSection(s *Section) error {
	instances, older := 0, 0
	z := zones{}
	// f.Events keeps the maxEvents newest: sorted and cut each time it doubles; once it is
	// full, an event not newer than the oldest kept is counted and left at once.
	var cutoff time.Time
	full := false
	newest := func() {
		sort.SliceStable(f.Events, func(i, j int) bool { return f.Events[i].Time.After(f.Events[j].Time) })
		if len(f.Events) >= maxEvents {
			older += len(f.Events) - maxEvents
			// A copy: the dropped tail of the old array holds strings of the capture's text.
			f.Events = slices.Clone(f.Events[:maxEvents])
			cutoff, full = f.Events[maxEvents-1].Time, true
		}
	}
	for in := range wmiInstances(s.Text) {
		instances++
		cs, _ := in.get("EventCode")
		code, ok := atoi(strings.TrimSpace(cs))
		if !ok {
			f.problem(sectionEvents, "event with EventCode %s skipped", hostValue(cs))
			continue
		}
		ev := Event{Code: code}
		if ts, ok := in.get("TimeGenerated"); ok {
			if t, err := parseWMIDatetime(strings.TrimSpace(ts), z); err == nil {
				ev.Time = t
			} else {
				f.problem(sectionEvents, "event %d: %v", code, err)
			}
		}
		if full && !ev.Time.After(cutoff) {
			older++
			continue
		}
		if is, ok := in.get("InsertionStrings"); ok {
			var more bool
			if ev.Inserts, more = parseWMIArray(is, maxInserts); more {
				f.problem(sectionEvents, "event %d: insertion strings past the first %d ignored", code, maxInserts)
			}
		}
		// Insertion strings (docs/facts.md §3.3): 1009 {pool, pid decimal, exit code hex without
		// 0x}; 1002 {pool}.
		if len(ev.Inserts) > 0 {
			ev.Pool = ev.Inserts[0]
		}
		if code == 1009 && len(ev.Inserts) >= 3 {
			if pid, err := strconv.Atoi(strings.TrimSpace(ev.Inserts[1])); err == nil {
				ev.PID = pid
			}
			ev.ExitCode = normalizeExitCode(ev.Inserts[2])
		}
		if f.Events = append(f.Events, ev); len(f.Events) >= 2*maxEvents {
			newest()
		}
	}
	if s.RCKnown && s.RC != 0 && instances == 0 {
		return fmt.Errorf("wmic ntevent failed (%s)", rcNote(s))
	}
	newest()
	if older > 0 {
		f.problem(sectionEvents, "%d older events past the newest %d ignored", older, maxEvents)
	}
	return nil
}

func (f *Facts) poolsSection(s *Section) error {
	instances, more := 0, 0
	for in := range wmiInstances(s.Text) {
		instances++
		name, _ := in.get("Name")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if len(f.Pools) >= maxPools {
			more++
			continue
		}
		p := Pool{Path: name, Name: name[strings.LastIndex(name, "/")+1:]}
		if v, ok := in.get("AppPoolAutoStart"); ok {
			b, ok := parseWMIBool(v)
			if !ok {
				f.problem(sectionAppPools, "pool %s: AppPoolAutoStart %s is not a boolean", hostValue(p.Name), hostValue(v))
			}
			p.AutoStart = b
		}
		if v, ok := in.get("AppPoolState"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				p.State = n
			} else {
				f.problem(sectionAppPools, "pool %s: AppPoolState %s is not a number", hostValue(p.Name), hostValue(v))
			}
		}
		f.Pools = append(f.Pools, p)
	}
	if s.RCKnown && s.RC != 0 && instances == 0 {
		// Without IIS the MicrosoftIISv2 namespace does not exist and wmic fails.
		return fmt.Errorf("wmic IIsApplicationPoolSetting failed (%s)", rcNote(s))
	}
	if more > 0 {
		f.problem(sectionAppPools, "%d pools past the first %d ignored", more, maxPools)
	}
	return nil
}

// atoi is strconv.Atoi for decimal digits, without the error value that costs an allocation
// a call: a hostile capture can bring millions of bad numbers.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func parseWMIBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "-1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}
