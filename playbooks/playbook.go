package playbooks

import "time"

// Playbook is one remediation playbook: a trigger update that breaks IIS 6 on hosts whose
// core IIS files lag behind the service pack, and how to fix those hosts.
type Playbook struct {
	// Name identifies the playbook ("kb982666"); File is where it was loaded from.
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	File        string `json:"file"`

	AppliesTo AppliesTo `json:"applies_to"`
	Triggers  []Trigger `json:"triggers"`
	Baseline  Baseline  `json:"baseline"`
	Symptoms  Symptoms  `json:"symptoms"`
	Installer Installer `json:"installer"`
	Steps     Steps     `json:"steps"`
}

// AppliesTo is the platform a playbook is about.
type AppliesTo struct {
	OSVersion     string   `json:"os_version"`    // "5.2": Windows Server 2003
	ServicePack   int      `json:"service_pack"`  // the level the fix re-applies (2)
	IISMajor      int      `json:"iis_major"`     // 6
	Architectures []string `json:"architectures"` // x86, x64, ia64
}

// Trigger is an update whose installation exposes the mismatch, with the file versions it
// brings. A host has it when its hotfix key is present or any listed file has reached the
// listed version (the file tables are unconfirmed, so one file that the update may not
// touch after all must not hide it).
type Trigger struct {
	KB       string        `json:"kb"`
	Bulletin string        `json:"bulletin,omitempty"`
	Files    []FileVersion `json:"files"`
	// RefusesMismatchSince is the date (YYYY-MM-DD) from which the update's package refuses
	// to install on a mismatched host, as KB973917's re-release of 9 March 2010 does; empty
	// when every package of it installs and breaks IIS.
	RefusesMismatchSince string `json:"refuses_mismatch_since,omitempty"`
}

// FileVersion names a file in %SystemRoot%\system32\inetsrv and a version of it.
// Name is lower case.
type FileVersion struct {
	Name    string  `json:"name"`
	Version Version `json:"version"`
}

// Baseline is the level the core files must reach: the service pack's own file version.
type Baseline struct {
	Version   Version  `json:"version"`
	CoreFiles []string `json:"core_files"` // lower case
	// Exceptions are files that legitimately stay older (snap-ins, SMTP/NNTP parts); they
	// never count, whatever their version. Version is the level they are known at, or zero.
	Exceptions []FileVersion `json:"exceptions,omitempty"`
}

// Symptoms are how the breakage shows in the event log: event IDs and the worker process
// exit code, never message text.
type Symptoms struct {
	Log          string `json:"log"`           // "System"
	Source       string `json:"source"`        // "W3SVC"
	CrashEvent   int    `json:"crash_event"`   // 1009: a worker process terminated unexpectedly
	DisableEvent int    `json:"disable_event"` // 1002: Rapid-Fail Protection disabled the pool
	// ExitCode is the crash event's exit code as its third insertion string prints it:
	// lower-case hex without 0x ("ffffffff").
	ExitCode string `json:"exit_code"`
}

// Installer is the fix: the service pack installer and how to run it.
type Installer struct {
	Update           string    `json:"update"`   // KB914961
	Switches         []string  `json:"switches"` // default for every package
	SuccessExitCodes []int     `json:"success_exit_codes"`
	RebootExitCodes  []int     `json:"reboot_exit_codes,omitempty"` // success, reboot needed
	Log              string    `json:"log,omitempty"`               // fetched on failure
	Packages         []Package `json:"packages"`
}

// Package is one installer file of the catalogue, per architecture and language.
type Package struct {
	Arch     string   `json:"arch"`     // x86, x64, ia64
	Language string   `json:"language"` // ENU, DEU, ...
	File     string   `json:"file"`
	Size     int64    `json:"size,omitempty"`   // bytes; 0 = unknown
	SHA1     string   `json:"sha1,omitempty"`   // lower-case hex; "" = unknown
	SHA256   string   `json:"sha256,omitempty"` // lower-case hex; "" = unknown
	URL      string   `json:"url,omitempty"`
	Switches []string `json:"switches,omitempty"` // overrides Installer.Switches
}

// Steps are the remediation step settings.
type Steps struct {
	InstallTimeout   time.Duration `json:"install_timeout"`
	RebootDelay      time.Duration `json:"reboot_delay"`   // shutdown /t, 0..600 s
	RebootTimeout    time.Duration `json:"reboot_timeout"` // until the host is back
	RebootReason     string        `json:"reboot_reason"`  // shutdown /d, e.g. p:2:16
	PoolStartTimeout time.Duration `json:"pool_start_timeout"`
	Soak             time.Duration `json:"soak"` // watch pools and events after the fix
	MinFreeDiskMB    int64         `json:"min_free_disk_mb"`
	// StageTimeout bounds copying the installer to a host (optional: 0 = 2 hours, enough for
	// 390 MB over a slow WAN link); PollInterval is how often a running install, a rebooting
	// host and the soak window are looked at (optional: 0 = 15 seconds).
	StageTimeout time.Duration `json:"stage_timeout,omitempty"`
	PollInterval time.Duration `json:"poll_interval,omitempty"`
}
