package win2003

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// wmic: aliases os, datafile, logicaldisk, ntevent, qfe, service, process and the classes of
// root\MicrosoftIISv2; get (list, table, csv formats), call Start/Stop/Recycle, where clauses.

// FormatInsertionStrings renders a string array as wmic prints it, e.g.
// {"DefaultAppPool","1234","ffffffff"}. Unconfirmed (docs/facts.md §3.3, §5.3).
func FormatInsertionStrings(a []string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"` + s + `"`)
	}
	sb.WriteByte('}')
	return sb.String()
}

// WMIDateTime formats t as a CIM datetime, yyyymmddHHMMSS.ffffff±UUU with the offset in minutes
// (docs/facts.md §5.2, checks/testdata/samples/wmi-datetime-sample.txt).
func WMIDateTime(t time.Time) string {
	_, off := t.Zone()
	m := off / 60
	sign := '+'
	if m < 0 {
		sign = '-'
		m = -m
	}
	return fmt.Sprintf("%s.%06d%c%03d", t.Format("20060102150405"), t.Nanosecond()/1000, sign, m)
}

// EventDateTime renders an event's TimeGenerated/TimeWritten: UTC with the offset written "-000"
// [P]: Microsoft's ATA SIEM-integration docs show WMI's "TimeGenerated=20150310132717.784882-000"
// (a later Windows). The classic event log keeps whole seconds (EVENTLOGRECORD), so on 2003 the
// fraction is .000000 [I].
func EventDateTime(t time.Time) string {
	return t.UTC().Format("20060102150405") + fmt.Sprintf(".%06d-000", t.Nanosecond()/1000)
}

type wmiProp struct {
	name  string
	value string
}

type wmiObj struct {
	class string
	key   string // the relative path's key part, e.g. Name="W3SVC/AppPools/DefaultAppPool"
	props []wmiProp
	pool  *pool
	site  *site
}

func (o *wmiObj) get(name string) (string, bool) {
	for _, p := range o.props {
		if strings.EqualFold(p.name, name) {
			return p.value, true
		}
	}
	return "", false
}

type wmiError struct {
	code uint32
	desc string
}

var (
	errInvalidClass     = &wmiError{0x80041010, "Invalid class "}
	errInvalidNamespace = &wmiError{0x8004100E, "Invalid namespace "}
	errInvalidQuery     = &wmiError{0x80041017, "Invalid query "}
)

// wmicExitCode is the process exit code after a WMI error: the HRESULT as a signed 32-bit number.
// Unconfirmed.
func wmicExitCode(code uint32) int { return hresultExit(code) }

var wmicAliases = map[string]string{
	"os": "Win32_OperatingSystem", "datafile": "CIM_DataFile", "logicaldisk": "Win32_LogicalDisk",
	"ntevent": "Win32_NTLogEvent", "qfe": "Win32_QuickFixEngineering", "service": "Win32_Service",
	"process": "Win32_Process", "computersystem": "Win32_ComputerSystem",
}

func progWmic(p *proc, _ string, args []string, _ string, out, errw *stream) int {
	h := p.h
	namespace := `root\cimv2`
	format := ""
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "/"); i++ {
		a := strings.ToLower(args[i])
		switch {
		case strings.HasPrefix(a, "/namespace:"):
			namespace = strings.TrimLeft(args[i][len("/namespace:"):], `\`)
		case strings.HasPrefix(a, "/format:"):
			format = strings.ToLower(args[i][len("/format:"):])
		}
	}
	// the first-run banner (docs/facts.md §5.3)
	h.mu.Lock()
	first := !h.wmicInstalled
	h.wmicInstalled = true
	h.mu.Unlock()
	w := &wmicWriter{p: p, out: out, errw: errw, banner: first}
	// wmic reads a stdin that is not a console and waits until it ends (docs/facts.md §5.3,
	// wmic-stdin): after its output, which flush writes first.
	defer p.drainStdin()
	defer w.flush()
	if i >= len(args) {
		w.errText("wmic:root\\cli>") // the interactive prompt; interactive mode is not modelled
		return 0
	}
	class := ""
	target := strings.ToLower(args[i])
	i++
	switch target {
	case "path", "class":
		if i >= len(args) {
			w.errText("Invalid GET Expression.\r\n")
			return 44135
		}
		class = args[i]
		i++
	default:
		c, ok := wmicAliases[target]
		if !ok || !strings.EqualFold(namespace, `root\cimv2`) {
			w.errText(args[i-1] + " - Alias not found.\r\n")
			return 44135
		}
		class = c
	}
	var where string
	if i < len(args) && strings.EqualFold(args[i], "where") {
		if i+1 < len(args) {
			where = args[i+1]
		}
		i += 2
	} else if i < len(args) && strings.HasPrefix(strings.ToLower(args[i]), "where(") {
		where = args[i][5:]
		i++
	}
	verb := "get"
	var verbArgs []string
	if i < len(args) {
		verb = strings.ToLower(args[i])
		verbArgs = args[i+1:]
	}
	var props []string
	for _, a := range verbArgs {
		la := strings.ToLower(a)
		switch {
		case strings.HasPrefix(la, "/format:"):
			format = strings.TrimPrefix(la, "/format:")
		case la == "/value":
			format = "list"
		case strings.HasPrefix(la, "/"):
		default:
			for _, pr := range strings.Split(a, ",") {
				if pr = strings.TrimSpace(pr); pr != "" {
					props = append(props, pr)
				}
			}
		}
	}
	h.mu.Lock()
	h.settleLocked(h.clock.Now())
	objs, werr := h.wmiInstancesLocked(namespace, class)
	if werr == nil && where != "" {
		expr, ok := parseWQL(where)
		if !ok {
			werr = errInvalidQuery
		} else {
			var sel []*wmiObj
			for _, o := range objs {
				m, ok := expr.eval(o)
				if !ok {
					werr = errInvalidQuery
					break
				}
				if m {
					sel = append(sel, o)
				}
			}
			objs = sel
		}
	}
	h.mu.Unlock()
	if werr != nil {
		w.wmiErr(werr)
		return wmicExitCode(werr.code)
	}
	switch verb {
	case "get", "list":
		if verb == "list" {
			props = nil
			if format == "" {
				format = "table"
			}
		}
		if len(objs) == 0 {
			w.errText(p.loc().text("noinstances") + "\r\n")
			return 0
		}
		if len(props) == 0 {
			for _, pr := range objs[0].props {
				props = append(props, pr.name)
			}
		}
		// resolve the spelling of each property and check it exists
		var names []string
		for _, pr := range props {
			found := ""
			for _, op := range objs[0].props {
				if strings.EqualFold(op.name, pr) {
					found = op.name
				}
			}
			if found == "" {
				w.wmiErr(errInvalidQuery)
				return wmicExitCode(errInvalidQuery.code)
			}
			names = append(names, found)
		}
		// wmic prints properties in alphabetical order, not in the order asked for [I].
		sort.SliceStable(names, func(a, b int) bool { return strings.ToLower(names[a]) < strings.ToLower(names[b]) })
		w.text(renderWmic(format, names, objs, h.spec.ComputerName, h.quirks.WmicLineEnd))
		return 0
	case "call":
		p.wrote()
		if len(verbArgs) == 0 {
			w.errText("Invalid method call.\r\n") // [NC]
			return 44135
		}
		method := verbArgs[0]
		if len(objs) == 0 {
			w.errText(p.loc().text("noinstances") + "\r\n")
			return 0
		}
		for _, o := range objs {
			w.text(fmt.Sprintf("Executing (\\\\%s\\%s:%s.%s)->%s()%s", h.spec.ComputerName, strings.ToUpper(namespace[:4])+namespace[4:], o.class, o.key, method, h.quirks.WmicLineEnd))
			if werr := h.wmiCall(o, method); werr != nil {
				w.wmiErr(werr)
				return wmicExitCode(werr.code)
			}
			le := h.quirks.WmicLineEnd
			w.text("Method execution successful." + le + "Out Parameters:" + le + "instance of __PARAMETERS" + le + "{" + le + "};" + le + le)
		}
		return 0
	}
	w.errText("Invalid Verb Switch.\r\n") // [NC]
	return 44135
}

func renderWmic(format string, names []string, objs []*wmiObj, node, le string) string {
	var sb strings.Builder

	switch format {
	case "list", "value", "list:full", "textvaluelist":
		for _, o := range objs {
			sb.WriteString(le + le)
			for _, n := range names {
				v, _ := o.get(n)
				sb.WriteString(n + "=" + v + le)
			}
		}
		sb.WriteString(le + le)
	case "csv":
		sb.WriteString(le + "Node," + strings.Join(names, ",") + le)
		for _, o := range objs {
			sb.WriteString(node)
			for _, n := range names {
				v, _ := o.get(n)
				sb.WriteString("," + v)
			}
			sb.WriteString(le)
		}
	default: // table
		widths := make([]int, len(names))
		for i, n := range names {
			widths[i] = len([]rune(n))
			for _, o := range objs {
				v, _ := o.get(n)
				if l := len([]rune(v)); l > widths[i] {
					widths[i] = l
				}
			}
		}
		row := func(vals func(i int) string) {
			for i := range names {
				v := vals(i)
				sb.WriteString(v + strings.Repeat(" ", widths[i]-len([]rune(v))+2))
			}
			sb.WriteString(le)
		}
		row(func(i int) string { return names[i] })
		for _, o := range objs {
			row(func(i int) string { v, _ := o.get(names[i]); return v })
		}
		sb.WriteString(le)
	}
	return sb.String()
}

// wmicWriter buffers wmic's stdout and encodes it at the end: UTF-16LE to a file (the banner in
// place of the BOM on the first run), the ANSI code page to a pipe.
type wmicWriter struct {
	p      *proc
	out    *stream
	errw   *stream
	banner bool
	buf    strings.Builder
}

func (w *wmicWriter) text(s string) { w.buf.WriteString(s) }

// errText writes to stderr at once, in the console code page.
func (w *wmicWriter) errText(s string) { w.p.write(w.errw, s) }

func (w *wmicWriter) wmiErr(e *wmiError) {
	facility := "WMI"
	if e.code&0xFFFF0000 == 0x80070000 {
		facility = "Win32"
	}
	w.errText(fmt.Sprintf("ERROR:\r\nCode = 0x%08x\r\nDescription = %s\r\nFacility = %s\r\n\r\n", e.code, e.desc, facility))
}

func (w *wmicWriter) flush() {
	l := w.p.loc()
	s := w.buf.String()
	if w.out.kind == streamFile {
		var b []byte
		if w.banner {
			b = append(b, encodeCP(l.ansi, l.text("wmicbanner"))...)
		} else {
			b = append(b, 0xFF, 0xFE)
		}
		b = append(b, utf16le(s)...)
		_, _ = w.out.Write(b)
		return
	}
	cm := l.ansi
	if w.p.h.quirks.WmicPipeUsesOEM {
		cm = l.oem
	}
	if w.banner {
		s = l.text("wmicbanner") + s
	}
	if s != "" {
		_, _ = w.out.Write(encodeCP(cm, s))
	}
}

// ---------- instances ----------

func boolStr(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

func (h *Host) wmiInstancesLocked(namespace, class string) ([]*wmiObj, *wmiError) {
	ns := strings.ToLower(strings.ReplaceAll(namespace, "/", `\`))
	switch ns {
	case `root\cimv2`:
	case `root\microsoftiisv2`:
		if !h.spec.IIS {
			return nil, errInvalidNamespace
		}
		// the provider needs IISADMIN; when it is stopped WMI starts it on demand [I]
		if a := h.serviceLocked("IISADMIN"); !a.running {
			a.running, a.pid = true, h.newPIDLocked()
		}
		return h.iisInstancesLocked(class)
	default:
		return nil, errInvalidNamespace
	}
	switch strings.ToLower(class) {
	case "win32_operatingsystem":
		return []*wmiObj{h.osObjLocked()}, nil
	case "cim_datafile":
		return h.datafileObjsLocked(), nil
	case "win32_logicaldisk":
		return h.diskObjsLocked(), nil
	case "win32_ntlogevent":
		return h.eventObjsLocked(), nil
	case "win32_quickfixengineering":
		return h.qfeObjsLocked(), nil
	case "win32_service":
		var out []*wmiObj
		for _, s := range h.services {
			state := "Stopped"
			if s.running {
				state = "Running"
			}
			out = append(out, &wmiObj{class: "Win32_Service", key: fmt.Sprintf("Name=%q", s.name), props: []wmiProp{
				{"Caption", s.display}, {"DisplayName", s.display}, {"Name", s.name}, {"ProcessId", strconv.Itoa(s.pid)},
				{"StartMode", "Auto"}, {"Started", boolStr(s.running)}, {"State", state}, {"Status", "OK"}}})
		}
		return out, nil
	case "win32_process":
		var out []*wmiObj
		for _, pi := range h.processesLocked() {
			cl := ""
			if pi.name == "w3wp.exe" {
				for _, pl := range h.pools {
					if pl.workerPID == pi.pid {
						cl = fmt.Sprintf(`c:\%s\system32\inetsrv\w3wp.exe -a \\.\pipe\iisipm%d -ap "%s"`, strings.ToLower(h.spec.SystemRoot[3:]), pi.pid, pl.name)
					}
				}
			}
			out = append(out, &wmiObj{class: "Win32_Process", key: fmt.Sprintf("Handle=\"%d\"", pi.pid), props: []wmiProp{
				{"Caption", pi.name}, {"CommandLine", cl}, {"Handle", strconv.Itoa(pi.pid)}, {"Name", pi.name}, {"ProcessId", strconv.Itoa(pi.pid)}}})
		}
		return out, nil
	case "win32_computersystem":
		return []*wmiObj{{class: "Win32_ComputerSystem", key: fmt.Sprintf("Name=%q", h.spec.ComputerName), props: []wmiProp{
			{"Caption", h.spec.ComputerName}, {"Domain", "WORKGROUP"}, {"Manufacturer", "VMware, Inc."}, {"Model", "VMware Virtual Platform"},
			{"Name", h.spec.ComputerName}, {"NumberOfProcessors", "2"}, {"SystemType", map[string]string{"x86": "X86-based PC", "AMD64": "x64-based PC"}[h.spec.Arch]},
			{"TotalPhysicalMemory", "2146951168"}}}}, nil
	}
	return nil, errInvalidClass
}

func (h *Host) osObjLocked() *wmiObj {
	s := h.spec
	loc := h.zone()
	caption := "Microsoft(R) Windows(R) Server 2003, Standard Edition"
	if s.Arch == "AMD64" {
		caption = "Microsoft(R) Windows(R) Server 2003 Standard x64 Edition"
	}
	osLang := map[string]string{"0409": "1033", "0C0A": "3082"}[s.Language]
	country := map[string]string{"0409": "1", "0C0A": "34"}[s.Language]
	installDate := DefaultStart.Add(-400 * 24 * time.Hour).In(loc)
	return &wmiObj{class: "Win32_OperatingSystem", key: `@`, props: []wmiProp{
		{"BootDevice", `\Device\HarddiskVolume1`},
		{"BuildNumber", "3790"},
		{"BuildType", "Multiprocessor Free"},
		{"Caption", caption},
		{"CodeSet", strconv.Itoa(h.loc().ansiCP)},
		{"CountryCode", country},
		{"CSDVersion", h.csdVersion()},
		{"CSName", s.ComputerName},
		{"CurrentTimeZone", strconv.Itoa(s.TZOffset)},
		{"FreePhysicalMemory", "1204332"},
		{"InstallDate", WMIDateTime(installDate)},
		{"LastBootUpTime", WMIDateTime(h.bootTime.In(loc))},
		{"LocalDateTime", WMIDateTime(h.clock.Now().In(loc))},
		{"Locale", strings.ToLower(s.Language)},
		{"Manufacturer", "Microsoft Corporation"},
		{"Name", "Microsoft Windows Server 2003 Standard Edition|" + s.SystemRoot + `|\Device\Harddisk0\Partition1`},
		{"OSLanguage", osLang},
		{"OSType", "18"},
		{"ServicePackMajorVersion", strconv.Itoa(s.ServicePack)},
		{"ServicePackMinorVersion", "0"},
		{"SystemDirectory", s.SystemRoot + `\system32`},
		{"SystemDrive", s.SystemRoot[:2]},
		{"Version", "5.2.3790"},
		{"WindowsDirectory", s.SystemRoot},
	}}
}

func (h *Host) datafileObjsLocked() []*wmiObj {
	loc := h.zone()
	var out []*wmiObj
	for _, k := range sortedKeys(h.fs.files) {
		f := h.fs.files[k]
		name := strings.ToLower(f.path) // CIM_DataFile names are lower case (docs/facts.md §5.3)
		i := strings.LastIndex(name, `\`)
		dir, base := name[2:i+1], name[i+1:]
		fileName, ext := base, ""
		if j := strings.LastIndex(base, "."); j >= 0 {
			fileName, ext = base[:j], base[j+1:]
		}
		mt := WMIDateTime(f.mtime.In(loc))
		version := f.version
		if f.c != nil && h.fs.image(f) != nil {
			version = h.quirks.InstallerVersion // an installer's version resource
		}
		out = append(out, &wmiObj{class: "CIM_DataFile", key: fmt.Sprintf("Name=%q", name), props: []wmiProp{
			{"Archive", "TRUE"}, {"Caption", name}, {"Compressed", "FALSE"}, {"CreationDate", mt},
			{"CSName", h.spec.ComputerName}, {"Description", name}, {"Drive", name[:2]}, {"Encrypted", "FALSE"},
			{"Extension", ext}, {"FileName", fileName}, {"FileSize", strconv.FormatInt(f.size, 10)},
			{"FileType", fileType(ext)}, {"FSName", "NTFS"}, {"Hidden", "FALSE"}, {"InstallDate", mt},
			{"LastAccessed", mt}, {"LastModified", mt}, {"Manufacturer", manufacturer(version)}, {"Name", name},
			{"Path", dir}, {"Readable", "TRUE"}, {"Status", "OK"}, {"System", "FALSE"}, {"Version", version},
			{"Writeable", "TRUE"},
		}})
	}
	return out
}

func manufacturer(version string) string {
	if version != "" {
		return "Microsoft Corporation"
	}
	return ""
}

func fileType(ext string) string {
	switch ext {
	case "dll":
		return "Application Extension"
	case "exe":
		return "Application"
	case "txt", "log":
		return "Text Document"
	case "":
		return "File"
	}
	return strings.ToUpper(ext) + " File"
}

// FreeSpace reports the system drive's free bytes.
func (h *Host) FreeSpace() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freeLocked()
}

func (h *Host) freeLocked() int64 { return h.fs.free() }

// SetFreeSpace leaves free bytes free on the system drive, as when something else on the host
// fills it (logs, another admin's copy): the files written so far stay, and what is written
// next counts against the new room. Tests use it to meet a full disk between plan and apply.
func (h *Host) SetFreeSpace(free int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fs.capacity = h.fs.used + max(free, 0)
}

func (h *Host) diskObjsLocked() []*wmiObj {
	sys := strings.ToUpper(h.spec.SystemRoot[:2])
	mk := func(id string, size, free int64) *wmiObj {
		return &wmiObj{class: "Win32_LogicalDisk", key: fmt.Sprintf("DeviceID=%q", id), props: []wmiProp{
			{"Caption", id}, {"Description", "Local Fixed Disk"}, {"DeviceID", id}, {"DriveType", "3"},
			{"FileSystem", "NTFS"}, {"FreeSpace", strconv.FormatInt(free, 10)}, {"Name", id},
			{"Size", strconv.FormatInt(size, 10)}, {"VolumeName", ""}, {"VolumeSerialNumber", "A4C3E1F2"}}}
	}
	out := []*wmiObj{}
	if sys != "C:" {
		out = append(out, mk("C:", 8<<30, 3<<30))
	}
	out = append(out, mk(sys, h.spec.DiskSize, h.freeLocked()))
	return out
}

func eventIdentifier(e Event) uint32 {
	sev := uint32(0x40000000)
	switch e.Type {
	case "warning":
		sev = 0x80000000
	case "error":
		sev = 0xC0000000
	}
	return sev | uint32(e.Code)
}

func (h *Host) eventObjsLocked() []*wmiObj {
	l := h.loc()
	out := make([]*wmiObj, 0, len(h.events))
	for i := len(h.events) - 1; i >= 0; i-- { // newest first [I]
		e := h.events[i]
		etype := map[string]string{"error": "1", "warning": "2", "information": "3"}[e.Type]
		msg := ""
		if e.Source == "W3SVC" {
			msg = expandMessage(l.text(strconv.Itoa(e.Code)), e.Strings)
		}
		var ins string
		if len(e.Strings) > 0 {
			ins = FormatInsertionStrings(e.Strings)
		}
		tg := EventDateTime(e.Time)
		out = append(out, &wmiObj{class: "Win32_NTLogEvent", key: fmt.Sprintf("Logfile=%q,RecordNumber=%d", e.Logfile, e.Record), props: []wmiProp{
			{"Category", "0"}, {"CategoryString", ""}, {"ComputerName", h.spec.ComputerName}, {"Data", ""},
			{"EventCode", strconv.Itoa(e.Code)}, {"EventIdentifier", strconv.FormatUint(uint64(eventIdentifier(e)), 10)},
			{"EventType", etype}, {"InsertionStrings", ins}, {"Logfile", e.Logfile}, {"Message", msg},
			{"RecordNumber", strconv.Itoa(e.Record)}, {"SourceName", e.Source}, {"TimeGenerated", tg},
			{"TimeWritten", tg}, {"Type", l.text(e.Type)}, {"User", e.User},
		}})
	}
	return out
}

func (h *Host) qfeObjsLocked() []*wmiObj {
	var out []*wmiObj
	root := h.reg.key(`HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003`)
	if root == nil {
		return nil
	}
	for _, spKey := range h.reg.subkeys(root) {
		sp := spKey[strings.LastIndex(spKey, `\`)+1:]
		for _, kbKey := range h.reg.subkeys(h.reg.key(spKey)) {
			kb := kbKey[strings.LastIndex(kbKey, `\`)+1:]
			desc, _ := h.reg.get(kbKey, "Description")
			by, _ := h.reg.get(kbKey, "InstalledBy")
			on, _ := h.reg.get(kbKey, "InstalledDate")
			out = append(out, &wmiObj{class: "Win32_QuickFixEngineering", key: fmt.Sprintf("HotFixID=%q,ServicePackInEffect=%q", kb, sp), props: []wmiProp{
				{"Caption", "http://support.microsoft.com/?kbid=" + strings.TrimPrefix(kb, "KB")},
				{"CSName", h.spec.ComputerName}, {"Description", desc.data}, {"FixComments", ""},
				{"HotFixID", kb}, {"InstallDate", ""}, {"InstalledBy", by.data}, {"InstalledOn", on.data},
				{"Name", ""}, {"ServicePackInEffect", sp}, {"Status", ""},
			}})
		}
	}
	return out
}

func (h *Host) iisInstancesLocked(class string) ([]*wmiObj, *wmiError) {
	var out []*wmiObj
	switch strings.ToLower(class) {
	case "iisapplicationpool":
		for _, p := range h.pools {
			n := "W3SVC/AppPools/" + p.name
			out = append(out, &wmiObj{class: "IIsApplicationPool", key: fmt.Sprintf("Name=%q", n), pool: p, props: []wmiProp{
				{"Caption", ""}, {"Description", ""}, {"InstallDate", ""}, {"Name", n}, {"Status", ""}}})
		}
	case "iisapplicationpoolsetting":
		for _, p := range h.pools {
			n := "W3SVC/AppPools/" + p.name
			out = append(out, &wmiObj{class: "IIsApplicationPoolSetting", key: fmt.Sprintf("Name=%q", n), pool: p, props: []wmiProp{
				{"AppPoolAutoStart", boolStr(p.autoStart)}, {"AppPoolCommand", map[bool]string{true: "1", false: "2"}[p.state == 2]},
				{"AppPoolIdentityType", "2"}, {"AppPoolQueueLength", "4000"}, {"AppPoolState", strconv.Itoa(p.state)},
				{"AutoShutdownAppPoolExe", ""}, {"Caption", ""}, {"IdleTimeout", "20"}, {"MaxProcesses", "1"}, {"Name", n},
				{"PeriodicRestartTime", "1740"}, {"RapidFailProtection", boolStr(p.rapidFail)},
				{"RapidFailProtectionInterval", strconv.Itoa(int(p.interval / time.Minute))},
				{"RapidFailProtectionMaxCrashes", strconv.Itoa(p.maxCrashes)}, {"SettingID", ""},
				{"ShutdownTimeLimit", "90"}, {"StartupTimeLimit", "90"}}})
		}
	case "iiswebserver":
		for _, s := range h.sites {
			n := fmt.Sprintf("W3SVC/%d", s.id)
			out = append(out, &wmiObj{class: "IIsWebServer", key: fmt.Sprintf("Name=%q", n), site: s, props: []wmiProp{
				{"Caption", ""}, {"Description", ""}, {"InstallDate", ""}, {"Name", n}, {"ServerState", strconv.Itoa(s.state)}, {"Status", ""}}})
		}
	case "iiswebserversetting":
		for _, s := range h.sites {
			n := fmt.Sprintf("W3SVC/%d", s.id)
			out = append(out, &wmiObj{class: "IIsWebServerSetting", key: fmt.Sprintf("Name=%q", n), site: s, props: []wmiProp{
				{"AppPoolId", s.pool}, {"Name", n}, {"ServerAutoStart", "TRUE"}, {"ServerBindings", h.serverBindings(s)},
				{"ServerComment", s.comment}, {"ServerState", strconv.Itoa(s.state)}}})
		}
	default:
		return nil, errInvalidClass
	}
	return out, nil
}

// serverBindings renders IIsWebServerSetting.ServerBindings as Quirks.WmicServerBindings says:
// the ServerBinding embedded instances in MOF text, or the metabase strings.
func (h *Host) serverBindings(s *site) string {
	if h.quirks.WmicServerBindings == "strings" {
		var strs []string
		for _, b := range s.bindings {
			strs = append(strs, b.String())
		}
		return FormatInsertionStrings(strs)
	}
	le := h.quirks.WmicLineEnd
	var objs []string
	for _, b := range s.bindings {
		objs = append(objs, "instance of ServerBinding"+le+"{"+le+
			"\tHostname = \""+b.host+"\";"+le+"\tIP = \""+b.ip+"\";"+le+"\tPort = \""+strconv.Itoa(b.port)+"\";"+le+"};")
	}
	return "{" + strings.Join(objs, ","+le) + "}"
}

// wmiCall runs a method on an IIS object.
func (h *Host) wmiCall(o *wmiObj, method string) *wmiError {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	h.settleLocked(now)
	m := strings.ToLower(method)
	switch {
	case o.pool != nil && (o.class == "IIsApplicationPool"):
		if !h.w3svcRunningLocked() {
			return &wmiError{0x80070426, "The service has not been started. "}
		}
		switch m {
		case "start":
			if o.pool.state != 2 {
				h.startPoolLocked(o.pool, now)
			}
			return nil
		case "stop":
			h.stopPoolLocked(o.pool)
			return nil
		case "recycle":
			if o.pool.state != 2 {
				return &wmiError{0x80070015, "The device is not ready. "} // [NC]
			}
			o.pool.workerPID = 0
			if tr := h.trickle(); tr > 0 {
				o.pool.nextReq = now.Add(tr)
			}
			return nil
		}
	case o.site != nil && o.class == "IIsWebServer":
		switch m {
		case "start":
			o.site.state = 2
			return nil
		case "stop":
			o.site.state = 4
			return nil
		}
	}
	return &wmiError{0x80041055, "Method not implemented "} // [NC] WBEM_E_METHOD_NOT_IMPLEMENTED
}

// ---------- WQL where ----------

type wqlExpr interface {
	eval(o *wmiObj) (bool, bool)
}

type wqlAnd struct{ a, b wqlExpr }
type wqlOr struct{ a, b wqlExpr }
type wqlNot struct{ a wqlExpr }
type wqlCmp struct {
	prop, op, lit string
	isStr         bool
}

func (e wqlAnd) eval(o *wmiObj) (bool, bool) {
	x, ok := e.a.eval(o)
	if !ok {
		return false, false
	}
	y, ok := e.b.eval(o)
	return x && y, ok
}
func (e wqlOr) eval(o *wmiObj) (bool, bool) {
	x, ok := e.a.eval(o)
	if !ok {
		return false, false
	}
	y, ok := e.b.eval(o)
	return x || y, ok
}
func (e wqlNot) eval(o *wmiObj) (bool, bool) {
	x, ok := e.a.eval(o)
	return !x, ok
}
func (e wqlCmp) eval(o *wmiObj) (bool, bool) {
	v, ok := o.get(e.prop)
	if !ok {
		return false, false
	}
	switch e.op {
	case "is null":
		return v == "", true
	case "is not null":
		return v != "", true
	case "like":
		return likeMatch(strings.ToLower(v), strings.ToLower(e.lit)), true
	}
	var c int
	a, errA := strconv.ParseFloat(v, 64)
	b, errB := strconv.ParseFloat(e.lit, 64)
	if !e.isStr && errA == nil && errB == nil {
		switch {
		case a < b:
			c = -1
		case a > b:
			c = 1
		}
	} else {
		c = strings.Compare(strings.ToLower(v), strings.ToLower(e.lit))
	}
	switch e.op {
	case "=":
		return c == 0, true
	case "<>", "!=":
		return c != 0, true
	case "<":
		return c < 0, true
	case ">":
		return c > 0, true
	case "<=":
		return c <= 0, true
	case ">=":
		return c >= 0, true
	}
	return false, false
}

func likeMatch(s, pat string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if likeMatch(s[i:], pat[1:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && likeMatch(s[1:], pat[1:])
	}
	return s != "" && s[0] == pat[0] && likeMatch(s[1:], pat[1:])
}

type wqlParser struct {
	toks []string
	i    int
	bad  bool
}

// tokenizeWQL splits a WQL condition; string literals keep their quote as the first byte and have
// backslash escapes resolved.
func tokenizeWQL(s string) ([]string, bool) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '\'' || c == '"':
			var sb strings.Builder
			sb.WriteByte('\'')
			j := i + 1
			closed := false
			for j < len(s) {
				if s[j] == '\\' && j+1 < len(s) {
					sb.WriteByte(s[j+1])
					j += 2
					continue
				}
				if s[j] == c {
					closed = true
					j++
					break
				}
				sb.WriteByte(s[j])
				j++
			}
			if !closed {
				return nil, false
			}
			toks = append(toks, sb.String())
			i = j
		case strings.ContainsRune("=<>!", rune(c)):
			j := i + 1
			for j < len(s) && strings.ContainsRune("=<>", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()=<>!'\"", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, true
}

func parseWQL(s string) (wqlExpr, bool) {
	s = strings.TrimSpace(s)
	toks, ok := tokenizeWQL(s)
	if !ok || len(toks) == 0 {
		return nil, false
	}
	ps := &wqlParser{toks: toks}
	e := ps.or()
	if ps.bad || ps.i != len(ps.toks) {
		return nil, false
	}
	return e, true
}

func (ps *wqlParser) peek() string {
	if ps.i < len(ps.toks) {
		return ps.toks[ps.i]
	}
	return ""
}

func (ps *wqlParser) next() string {
	t := ps.peek()
	if ps.i < len(ps.toks) {
		ps.i++
	} else {
		ps.bad = true
	}
	return t
}

func (ps *wqlParser) or() wqlExpr {
	e := ps.and()
	for strings.EqualFold(ps.peek(), "or") {
		ps.i++
		e = wqlOr{e, ps.and()}
	}
	return e
}

func (ps *wqlParser) and() wqlExpr {
	e := ps.unary()
	for strings.EqualFold(ps.peek(), "and") {
		ps.i++
		e = wqlAnd{e, ps.unary()}
	}
	return e
}

func (ps *wqlParser) unary() wqlExpr {
	if strings.EqualFold(ps.peek(), "not") {
		ps.i++
		return wqlNot{ps.unary()}
	}
	if ps.peek() == "(" {
		ps.i++
		e := ps.or()
		if ps.next() != ")" {
			ps.bad = true
		}
		return e
	}
	prop := ps.next()
	if prop == "" || strings.HasPrefix(prop, "'") {
		ps.bad = true
		return wqlCmp{}
	}
	op := strings.ToLower(ps.next())
	if op == "is" {
		if strings.EqualFold(ps.peek(), "not") {
			ps.i++
			ps.next()
			return wqlCmp{prop: prop, op: "is not null"}
		}
		ps.next()
		return wqlCmp{prop: prop, op: "is null"}
	}
	switch op {
	case "=", "<>", "!=", "<", ">", "<=", ">=", "like":
	default:
		ps.bad = true
		return wqlCmp{}
	}
	lit := ps.next()
	isStr := strings.HasPrefix(lit, "'")
	if isStr {
		lit = lit[1:]
	} else if strings.EqualFold(lit, "true") || strings.EqualFold(lit, "false") {
		lit = strings.ToUpper(lit)
		isStr = true
	}
	return wqlCmp{prop: prop, op: op, lit: lit, isStr: isStr}
}
