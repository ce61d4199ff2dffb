package win2003

import (
	"slices"
	"time"
)

// What a host did, for tests to assert on: every command line it ran and every installer run.

// CommandRecord is one command line the host ran: through WinRM (Host.Exec) or as a scheduled
// task's program.
type CommandRecord struct {
	Start, End  time.Time // simulated; End is zero while it runs
	User        string    // the WinRM user, or "SYSTEM" for a task
	Task        string    // the scheduled task that ran it ("" = through WinRM)
	CommandLine string
	ExitCode    int
	// Wrote is set when the command changed the host: a file, the registry, a service, a pool, a
	// site, a task, the power state or an installation.
	Wrote bool
}

// InstallerRun is one run of an SP2 installer image.
type InstallerRun struct {
	Start, End time.Time // simulated; End is zero while it runs
	Path       string    // the file run
	Image      string    // the image's catalogue name
	User       string    // "SYSTEM" in a task, else the WinRM user
	InShell    bool      // run inside a WinRM shell, under its quotas
	ExitCode   int
	// Killed is set when the run did not end by itself: the host went down, or the command or
	// task running it was terminated.
	Killed bool
}

// Commands returns a copy of the command log, oldest first.
func (h *Host) Commands() []CommandRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]CommandRecord, len(h.commands))
	for i, c := range h.commands {
		out[i] = *c
	}
	return out
}

// InstallerRuns returns a copy of the installer runs, oldest first.
func (h *Host) InstallerRuns() []InstallerRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]InstallerRun, len(h.installs))
	for i, r := range h.installs {
		out[i] = *r
	}
	return out
}

// maxLog bounds each log, like the event log: a long-running lab keeps the newest entries.
const maxLog = 5000

func (h *Host) logCommandLocked(rec *CommandRecord) {
	h.commands = append(h.commands, rec)
	if len(h.commands) > maxLog {
		h.commands = slices.Clone(h.commands[len(h.commands)-maxLog:])
	}
}

func (h *Host) logInstallLocked(run *InstallerRun) {
	h.installs = append(h.installs, run)
	if len(h.installs) > maxLog {
		h.installs = slices.Clone(h.installs[len(h.installs)-maxLog:])
	}
}

// wrote marks the command p runs for as having changed the host.
func (p *proc) wrote() {
	if p.rec != nil {
		p.h.mu.Lock()
		p.rec.Wrote = true
		p.h.mu.Unlock()
	}
}

// wroteLocked is wrote with the host's lock held.
func (p *proc) wroteLocked() {
	if p.rec != nil {
		p.rec.Wrote = true
	}
}

// Share is a network share of the fleet: a folder of the machine the lab runs on, published as
// a UNC path. A host's SYSTEM account (its machine account on the network) may read it; the
// WinRM user's network logon may not (the double hop, docs/facts.md §6.3).
type Share struct {
	UNC string // e.g. \\LABSHARE\installers
	Dir string // the folder behind it
}
