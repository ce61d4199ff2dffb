package win2003

// Quirks are the host behaviours that no source settles for Server 2003 (docs/facts.md §0: a
// value marked [P], [I] or [NC] is never hard-coded without a way to change it). Each field says
// what it changes, its default and why. Start from DefaultQuirks and change fields: a zero
// Quirks is not the default (ScTrailingBlanks, CertutilDecodeInMemory are true by default).
type Quirks struct {
	// RegSeparator separates name, type and data in reg.exe 3.0 value lines. TAB is the lab's
	// choice (XP-era scripts split reg output on TAB); spaces are the other candidate
	// (docs/facts.md §5.1 [NC]).
	RegSeparator string
	// RegLeadingBlankLine prints an empty line before `! REG.EXE VERSION 3.0`: the saved samples
	// start with the header (checks/testdata/samples/reg-query-regexe-v3.txt), a parser fixture
	// of XP output starts with a blank line (docs/facts.md §5.1 [NC]). Default false.
	RegLeadingBlankLine bool

	// ScTrailingBlanks ends sc's TYPE line with two blanks and its STATE line with one, as
	// captures of later Windows show; unconfirmed for Server 2003 (docs/facts.md §5.4 [NC]).
	// Default true.
	ScTrailingBlanks bool

	// FindstrEndsLastLine makes `findstr "^"` end a last line that has no line end with CRLF
	// (docs/facts.md §5.8 [NC]). Off by default, so that text streamed through
	// `findstr "^" > file` arrives unchanged.
	FindstrEndsLastLine bool

	// CertutilHashfile is what `certutil -hashfile` does (docs/facts.md §5.10 [NC]):
	//   - "sha1" (default): the verb exists and hashes with SHA-1 only, taking no algorithm
	//     argument, as the verb's first versions did [I] (Windows 7's certutil -hashfile printed
	//     "SHA1 hash of file <path>:" and took an optional algorithm; 2003's is not documented);
	//   - "none": 2003's certutil has no -hashfile (`CertUtil: Unknown arg: -hashfile`);
	//   - "algorithms": the verb takes an algorithm argument (MD5, SHA1, SHA256, ...) like later
	//     Windows, SHA-1 when none is given.
	CertutilHashfile string
	// CertutilDecodeInMemory makes `certutil -decode` hold its whole input and output in
	// memory, which counts against a WinRM shell's MaxMemoryPerShellMB: a decode of a 500 MB
	// base64 file then fails inside a shell [I] (certutil decodes with CryptStringToBinary over
	// a buffer of the whole file; no source states its memory use). Default true.
	CertutilDecodeInMemory bool

	// WmicLineEnd ends every line wmic prints: "\r\r\n" (a CRLF written through a text-mode
	// stream) is what scripts report; unconfirmed through a WinRM pipe on 2003 (docs/facts.md §5.3 [NC]).
	WmicLineEnd string
	// WmicPipeUsesOEM makes wmic write to a pipe in the OEM code page instead of the ANSI one
	// (docs/facts.md §5.3 [NC]). Default false (ANSI).
	WmicPipeUsesOEM bool
	// WmicServerBindings is how wmic prints IIsWebServerSetting.ServerBindings: "objects"
	// (default) prints the array of ServerBinding embedded instances (Hostname, IP, Port) that
	// the IIS 6 WMI provider exposes (IIS 6 SDK, IIsStructuredDataClass, ms524502: "an array of
	// ServerBinding objects"); "strings" prints the metabase strings {"IP:Port:Host"}. How wmic
	// renders embedded instances in /format:list on 2003 is not shown by any source [NC]: the lab
	// writes them in MOF text, "instance of ServerBinding { Hostname = ""; IP = ""; Port = "80"; };".
	WmicServerBindings string

	// SchtasksAcceptHHMM lets /st take HH:MM as well as the HH:MM:SS that Server 2003 documents
	// (docs/facts.md §5.5 [NC]). Default false.
	SchtasksAcceptHHMM bool
	// SchtasksDateHive is whose date order `schtasks /sd` is parsed in: "caller" (default: the
	// HKCU of the user running schtasks, the WinRM user) or "default" (HKU\.DEFAULT, the order
	// SYSTEM's tasks see). docs/facts.md §5.5 [I]: the date follows the locale; which hive 2003
	// reads is unconfirmed.
	SchtasksDateHive string

	// ExitInstallerBusy is the SP2 installer's exit code when another installation runs: Windows
	// Installer's ERROR_INSTALL_ALREADY_RUNNING (docs/facts.md §2.3 [NC]).
	ExitInstallerBusy int
	// InstallerDiskNeeded is the free space in bytes the SP2 installer needs on the system drive
	// (docs/facts.md §2.4 [NC]: KB926029's figure was not retrieved). Default 1200 MiB.
	InstallerDiskNeeded int64
	// InstallerShellMemoryMB is the memory in MB the SP2 installer's processes commit at their
	// peak, and InstallerShellProcesses how many of them run at once: inside a WinRM shell they
	// count against MaxMemoryPerShellMB and MaxProcessesPerShell (docs/facts.md §6.3 [I]; the
	// real figures are not known [NC]). Defaults 220 MB and 4 processes (self-extractor,
	// update.exe and two helpers).
	InstallerShellMemoryMB  int
	InstallerShellProcesses int
	// InstallerQuotaExit is the installer's exit code when a shell quota makes its allocation or
	// process creation fail: update.exe masks its failures to 1603 (docs/facts.md §2.3) [I].
	InstallerQuotaExit int

	// VersionKB973917 is w3core.dll's version after KB973917: a placeholder that the kb973917
	// playbook shares (docs/facts.md §1.2 [NC]: the KB973917 file table was not reachable).
	VersionKB973917 string

	// InstallerVersion is the version resource of the SP2 installer file, as `wmic datafile`
	// shows it: the OS build SP2 brings (docs/facts.md §1.2); the package's own version
	// resource is not documented [NC].
	InstallerVersion string
}

// DefaultQuirks returns the lab's defaults, each explained on its field.
func DefaultQuirks() Quirks {
	return Quirks{
		RegSeparator:            "\t",
		ScTrailingBlanks:        true,
		CertutilHashfile:        "sha1",
		CertutilDecodeInMemory:  true,
		WmicLineEnd:             "\r\r\n",
		WmicServerBindings:      "objects",
		SchtasksDateHive:        "caller",
		ExitInstallerBusy:       1618,
		InstallerDiskNeeded:     1200 << 20,
		InstallerShellMemoryMB:  220,
		InstallerShellProcesses: 4,
		InstallerQuotaExit:      1603,
		VersionKB973917:         "6.0.3790.4614",
		InstallerVersion:        "5.2.3790.3959",
	}
}

// withDefaults fills the fields left empty or zero with the defaults (booleans stay as given).
func (q Quirks) withDefaults() Quirks {
	d := DefaultQuirks()
	if q.RegSeparator == "" {
		q.RegSeparator = d.RegSeparator
	}
	if q.CertutilHashfile == "" {
		q.CertutilHashfile = d.CertutilHashfile
	}
	if q.WmicLineEnd == "" {
		q.WmicLineEnd = d.WmicLineEnd
	}
	if q.WmicServerBindings == "" {
		q.WmicServerBindings = d.WmicServerBindings
	}
	if q.SchtasksDateHive == "" {
		q.SchtasksDateHive = d.SchtasksDateHive
	}
	if q.ExitInstallerBusy == 0 {
		q.ExitInstallerBusy = d.ExitInstallerBusy
	}
	if q.InstallerDiskNeeded == 0 {
		q.InstallerDiskNeeded = d.InstallerDiskNeeded
	}
	if q.InstallerShellMemoryMB == 0 {
		q.InstallerShellMemoryMB = d.InstallerShellMemoryMB
	}
	if q.InstallerShellProcesses == 0 {
		q.InstallerShellProcesses = d.InstallerShellProcesses
	}
	if q.InstallerQuotaExit == 0 {
		q.InstallerQuotaExit = d.InstallerQuotaExit
	}
	if q.VersionKB973917 == "" {
		q.VersionKB973917 = d.VersionKB973917
	}
	if q.InstallerVersion == "" {
		q.InstallerVersion = d.InstallerVersion
	}
	return q
}
