package checks

import (
	"bytes"
	"fmt"
	"maps"
	"sort"
	"strings"
	"unicode/utf16"
)

// fakeHost describes a host for building probe captures in tests, in the formats
// docs/facts.md §5 and checks/testdata/samples/ give (reg.exe 3.0 with tabs, wmic /format:list with \r\r\n).
type fakeHost struct {
	hostname   string
	osVersion  string // "5.2"
	build      string
	csd        string // "" = RTM
	arch       string // PROCESSOR_ARCHITECTURE: x86, AMD64, IA64
	lcid       string // "0409"
	iisMajor   int    // 0 = not installed
	w3svc      int    // sc state; 0 = service does not exist
	files      map[string]string
	hotfixes   []string
	events     []fakeEvent
	pools      []fakePool
	boot       string
	local      string
	powershell string // "" = not installed

	laterReg   bool // reg.exe layout of Vista+: no header, spaces
	fileForm   bool // probe.cmd > file: wmic sections in UTF-16LE with BOM
	banner     bool // first wmic run: ASCII banner replaces the BOM (file form) / precedes output
	germanSC   bool // localized sc labels
	cutAfter   string
	dropRC     bool
	noSections map[string]bool
}

type fakeEvent struct {
	code    int
	inserts string // as wmic prints the array
	time    string
}

type fakePool struct {
	name      string
	autoStart bool
	state     int
}

const (
	sp1 = "6.0.3790.1830"
	sp2 = "6.0.3790.3959"
	kb  = "6.0.3790.4693"
)

var coreFiles = []string{"iisutil.dll", "w3core.dll", "w3dt.dll", "w3isapi.dll", "w3tp.dll", "w3wp.exe",
	"iisw3adm.dll", "w3cache.dll", "w3comlog.dll", "w3ssl.dll", "iisres.dll", "infocomm.dll", "isatq.dll",
	"iisrtl.dll", "asp.dll", "httpext.dll", "metadata.dll", "admwprox.dll", "coadmin.dll", "iisadmin.dll",
	"inetinfo.exe", "strmfilt.dll", "wam.dll"}

// inetsrvFiles returns an inetsrv listing: core files at core, w3core/w3dt at trigger (if
// not ""), the known-older files, and a few others.
func inetsrvFiles(core, trigger string) map[string]string {
	m := map[string]string{}
	for _, f := range coreFiles {
		m[f] = core
	}
	if trigger != "" {
		m["w3core.dll"] = trigger
		m["w3dt.dll"] = trigger
	}
	m["seos.dll"] = "6.0.3790.0"
	m["aqadmin.dll"] = "6.0.3790.0"
	m["iisclex4.dll"] = "6.0.3790.0"
	m["nntpsnap.dll"] = "6.0.3728.0"
	m["smtpsnap.dll"] = "6.0.3728.0"
	m["adsiis.dll"] = sp2
	m["iis.msc"] = ""
	m["history"] = ""
	return m
}

// baseHost is a healthy x86 ENU SP2 host with KB982666 installed and pools started.
func baseHost() *fakeHost {
	return &fakeHost{
		hostname: "WEB01", osVersion: "5.2", build: "3790", csd: "Service Pack 2",
		arch: "x86", lcid: "0409", iisMajor: 6, w3svc: 4,
		files:    inetsrvFiles(sp2, kb),
		hotfixes: []string{"KB925902", "KB982666"},
		pools: []fakePool{
			{"DefaultAppPool", true, 2},
			{"WsusPool", true, 2},
		},
		boot:  "20100615093000.375000+120",
		local: "20100615110000.123000+120",
	}
}

// affectedHost has SP1-level IIS files, KB982666 and the crash.
func affectedHost() *fakeHost {
	h := baseHost()
	h.files = inetsrvFiles(sp1, kb)
	h.events = []fakeEvent{
		{1009, `{"DefaultAppPool","1234","ffffffff"}`, "20100615085501.000000-000"},
		{1009, `{"DefaultAppPool","1240","ffffffff"}`, "20100615085502.000000-000"},
		{1002, `{"DefaultAppPool"}`, "20100615085503.000000-000"},
	}
	h.pools[0].state = 4
	return h
}

func (h *fakeHost) regHeader() string {
	if h.laterReg {
		return "\r\n"
	}
	return "\r\n! REG.EXE VERSION 3.0\r\n\r\n"
}

func (h *fakeHost) regValue(name, typ, data string) string {
	if h.laterReg {
		return "    " + name + "    " + typ + "    " + data + "\r\n"
	}
	return "    " + name + "\t" + typ + "\t" + data + "\r\n"
}

func (h *fakeHost) regKey(path string, values ...[3]string) string {
	var b strings.Builder
	b.WriteString(h.regHeader())
	b.WriteString(path + "\r\n")
	for _, v := range values {
		b.WriteString(h.regValue(v[0], v[1], v[2]))
	}
	b.WriteString("\r\n")
	return b.String()
}

// wmicList renders instances as wmic /format:list does: \r\r\n line ends, two blank lines
// before each instance, properties in the order given (wmic sorts them by name).
func wmicList(instances [][][2]string) string {
	var b strings.Builder
	for _, in := range instances {
		b.WriteString("\r\r\n\r\r\n")
		for _, p := range in {
			b.WriteString(p[0] + "=" + p[1] + "\r\r\n")
		}
	}
	b.WriteString("\r\r\n\r\r\n")
	return b.String()
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 2*len(u))
	for i, c := range u {
		out[2*i], out[2*i+1] = byte(c), byte(c>>8)
	}
	return out
}

type fakeSection struct {
	name string
	body []byte
	rc   int
}

func (h *fakeHost) sections() []fakeSection {
	var out []fakeSection
	add := func(name string, body string, rc int) {
		out = append(out, fakeSection{name, []byte(body), rc})
	}
	wmic := func(name string, body string, rc int) {
		switch {
		case h.fileForm && h.banner:
			out = append(out, fakeSection{name, append([]byte("Please wait while WMIC is being installed.\r\n"), utf16le(body)...), rc})
		case h.fileForm:
			out = append(out, fakeSection{name, append([]byte{0xFF, 0xFE}, utf16le(body)...), rc})
		case h.banner:
			add(name, "Please wait while WMIC is being installed.\r\n"+body, rc)
		default:
			add(name, body, rc)
		}
	}
	add("hostname", h.hostname+"\r\n", 0)
	osVals := [][3]string{
		{"CurrentBuild", "REG_SZ", "1.511.1 () (Obsolete data - do not use)"},
		{"InstallDate", "REG_DWORD", "0x4a1b2c3d"},
		{"ProductName", "REG_SZ", "Microsoft Windows Server 2003"},
		{"RegDone", "REG_SZ", ""},
		{"RegisteredOwner", "REG_SZ", "IT Department"},
		{"SoftwareType", "REG_SZ", "SYSTEM"},
		{"CurrentVersion", "REG_SZ", h.osVersion},
		{"CurrentBuildNumber", "REG_SZ", h.build},
		{"BuildLab", "REG_SZ", "3790.srv03_sp2_rtm.070216-1710"},
		{"CurrentType", "REG_SZ", "Uniprocessor Free"},
	}
	if h.csd != "" {
		osVals = append(osVals, [3]string{"CSDVersion", "REG_SZ", h.csd})
	}
	osVals = append(osVals,
		[3]string{"SystemRoot", "REG_SZ", `C:\WINDOWS`},
		[3]string{"PathName", "REG_SZ", `C:\WINDOWS`},
		[3]string{"DigitalProductId", "REG_BINARY", "A40000000300000036393731322D"},
		[3]string{"LicenseInfo", "REG_BINARY", "9A8E2B"},
	)
	osBody := h.regKey(`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, osVals...) +
		"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Accessibility\r\n" +
		"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\AeDebug\r\n\r\n"
	add("os", osBody, 0)
	add("arch", h.regKey(`HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Session Manager\Environment`,
		[3]string{"PROCESSOR_ARCHITECTURE", "REG_SZ", h.arch}), 0)
	add("lang", h.regKey(`HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Nls\Language`,
		[3]string{"InstallLanguage", "REG_SZ", h.lcid}), 0)
	if h.iisMajor > 0 {
		add("iis", h.regKey(`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\InetStp`,
			[3]string{"MajorVersion", "REG_DWORD", fmt.Sprintf("0x%x", h.iisMajor)},
			[3]string{"MinorVersion", "REG_DWORD", "0x0"},
			[3]string{"InstallPath", "REG_SZ", `C:\WINDOWS\system32\inetsrv`},
			[3]string{"PathWWWRoot", "REG_SZ", `c:\inetpub\wwwroot`},
		), 0)
	} else {
		// reg.exe prints its error to stderr (not in a WinRM stdout capture) and exits 1.
		add("iis", "", 1)
	}
	if h.w3svc > 0 {
		names := map[int]string{1: "STOPPED", 2: "START_PENDING", 3: "STOP_PENDING", 4: "RUNNING"}
		labels := [7]string{"SERVICE_NAME", "TYPE", "STATE", "WIN32_EXIT_CODE", "SERVICE_EXIT_CODE", "CHECKPOINT", "WAIT_HINT"}
		if h.germanSC {
			labels = [7]string{"DIENSTNAME", "TYP", "STATUS", "WIN32-BEENDIGUNGSCODE", "DIENST-BEENDIGUNGSCODE", "PRÜFPUNKT", "WARTEHINWEIS"}
		}
		sc := fmt.Sprintf("\r\n%s: w3svc\r\n"+
			"        %-18s : 20  WIN32_SHARE_PROCESS\r\n"+
			"        %-18s : %d  %s\r\n"+
			"                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n"+
			"        %-18s : 0  (0x0)\r\n"+
			"        %-18s : 0  (0x0)\r\n"+
			"        %-18s : 0x0\r\n"+
			"        %-18s : 0x0\r\n\r\n",
			labels[0], labels[1], labels[2], h.w3svc, names[h.w3svc], labels[3], labels[4], labels[5], labels[6])
		add("w3svc", sc, 0)
	} else {
		add("w3svc", "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", 1060)
	}
	var names []string
	for n := range h.files {
		names = append(names, n)
	}
	sort.Strings(names)
	var fileInst [][][2]string
	for _, n := range names {
		fileInst = append(fileInst, [][2]string{{"Name", `c:\windows\system32\inetsrv\` + n}, {"Version", h.files[n]}})
	}
	wmic("inetsrv", wmicList(fileInst), 0)
	if len(h.hotfixes) > 0 {
		body := h.regHeader() + "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\r\n"
		for _, k := range h.hotfixes {
			body += "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\\" + k + "\r\n"
		}
		add("hotfixes", body+"\r\n", 0)
	} else {
		add("hotfixes", "", 1)
	}
	var evInst [][][2]string
	for _, e := range h.events {
		evInst = append(evInst, [][2]string{{"EventCode", fmt.Sprint(e.code)}, {"InsertionStrings", e.inserts}, {"TimeGenerated", e.time}})
	}
	if len(evInst) > 0 {
		wmic("events", wmicList(evInst), 0)
	} else {
		wmic("events", "", 0) // "No Instance(s) Available." goes to stderr
	}
	if h.iisMajor > 0 {
		var poolInst [][][2]string
		for _, p := range h.pools {
			as := "FALSE"
			if p.autoStart {
				as = "TRUE"
			}
			poolInst = append(poolInst, [][2]string{{"AppPoolAutoStart", as}, {"AppPoolState", fmt.Sprint(p.state)}, {"Name", "W3SVC/AppPools/" + p.name}})
		}
		wmic("apppools", wmicList(poolInst), 0)
	} else {
		// Invalid namespace: wmic prints ERROR: Code = 0x8004100e and fails.
		wmic("apppools", "", -2147217394)
	}
	wmic("boot", wmicList([][][2]string{{{"LastBootUpTime", h.boot}, {"LocalDateTime", h.local}}}), 0)
	wmic("disk", wmicList([][][2]string{{{"FreeSpace", "5368709120"}, {"Size", "21474836480"}}}), 0)
	if h.powershell != "" {
		add("powershell", h.regKey(`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\PowerShell\1\PowerShellEngine`,
			[3]string{"PowerShellVersion", "REG_SZ", h.powershell}), 0)
	} else {
		add("powershell", "", 1)
	}
	return out
}

// capture renders the probe output as the host would print it.
func (h *fakeHost) capture() []byte {
	var b bytes.Buffer
	for _, s := range h.sections() {
		if h.noSections[s.name] {
			continue
		}
		b.WriteString("##iisremedy-probe v1 begin " + s.name + "##\r\n")
		b.Write(s.body)
		if h.cutAfter == s.name {
			return b.Bytes()
		}
		rc := fmt.Sprint(s.rc)
		if h.dropRC {
			rc = "!ERRORLEVEL!"
		}
		b.WriteString("##iisremedy-probe v1 end " + s.name + " rc=" + rc + "##\r\n")
	}
	return b.Bytes()
}

// instances collects what wmiInstances yields (a map it reuses, so each is copied).
func instances(text string) []wmiInstance {
	var out []wmiInstance
	for in := range wmiInstances(text) {
		out = append(out, maps.Clone(in))
	}
	return out
}

// withBody replaces the body of section name in a capture.
func withBody(c []byte, name string, body []byte) []byte {
	begin := []byte(markerV1 + "begin " + name + "##\r\n")
	i := bytes.Index(c, begin) + len(begin)
	j := bytes.Index(c, []byte(markerV1+"end "+name+" "))
	out := append([]byte(nil), c[:i]...)
	out = append(out, body...)
	return append(out, c[j:]...)
}
