package checks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

// Finding is the diagnosis of one host under one playbook.
type Finding struct {
	Verdict playbooks.Verdict `json:"verdict"`
	// Evidence are the sentences the verdict rests on, each naming a file and version, an
	// event and its time, a pool and its state, or a missing section.
	Evidence []string `json:"evidence"`
	// Notes are things seen that did not decide the verdict (old events, absent files,
	// sections that failed but were not needed).
	Notes    []string `json:"notes,omitempty"`
	Playbook string   `json:"playbook,omitempty"`
	// BelowBaseline are the core files below the baseline, sorted by name.
	BelowBaseline []FileState `json:"below_baseline,omitempty"`
	// TriggersInstalled are the playbook's trigger updates found on the host.
	TriggersInstalled []string `json:"triggers_installed,omitempty"`
	// CrashEvidence is true when the host shows the symptom (see Diagnose).
	CrashEvidence bool `json:"crash_evidence"`
	// Advice is set for not-applicable hosts that need something else, e.g. SP2 itself.
	Advice string `json:"advice,omitempty"`
}

// FileState is a file's version against the baseline.
type FileState struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Baseline string `json:"baseline"`
}

// decisiveSections must be established for any verdict other than not-applicable; the
// others (hostname, lang, boot, disk, powershell) only add detail.
var decisiveSections = []string{sectionInetsrv, sectionHotfixes, sectionEvents, sectionAppPools, sectionW3SVC}

const timeLayout = "2006-01-02 15:04:05 -07:00"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.Format(timeLayout)
}

// at shows t in the host's own UTC offset (that of its LocalDateTime) when known: WMI
// gives TimeGenerated in UTC and LastBootUpTime in local time.
func (d *diag) at(t time.Time) string {
	if !t.IsZero() && d.f.LocalTime != nil {
		t = t.In(d.f.LocalTime.Location())
	}
	return fmtTime(t)
}

// Diagnose gives the verdict of the table in docs/design.md §5.4 for a host's facts under a playbook
// (nil: the embedded kb982666). The rules, in order:
//
//  1. probe-failed: no facts, or any probe v1 section missing or cut short (a capture that
//     lacks sections gets no other verdict), or a section a later rule needs failed.
//  2. not-applicable: Windows version is not the playbook's (5.2); the architecture is not
//     in its list (IA64); the service pack is below its level (SP1/RTM: Advice says to
//     install SP2 first); IIS is not installed or its major version is not 6.
//  3. The core files: each playbook core file listed in inetsrv is compared with the
//     baseline; files known to stay older never count, absent files are noted. If none of
//     the core files is listed, probe-failed.
//  4. A trigger update is installed when its hotfix key is registered OR any file it
//     brings (w3core.dll) is at or above the version it brings (then the evidence says
//     "or a later update of its files": a later update brings newer copies too).
//  5. Crash evidence is any of: (a) a crash event (1009) whose exit code is the symptom's
//     (ffffffff; optional 0x, any case); (b) a pool-disabled event (1002); (c) a pool with
//     AppPoolAutoStart true in AppPoolState 4 (stopped) while W3SVC is running: IIS
//     Manager clears auto-start when an operator stops a pool (inferred; docs/facts.md §4.1
//     does not confirm it), so an auto-start pool that is stopped under a running service
//     was stopped by Rapid-Fail Protection or failed to start. Events count only when
//     generated at or after the last boot (when the boot time is known): a reboot
//     re-enables pools, and events from before a remediation reboot must not condemn the
//     fixed binaries. A 1009 with another exit code (0x80 in
//     checks/testdata/samples/w3svc-1009-event-exit-0x80.txt) is a crash of another kind: it is reported
//     as a note and is not crash evidence by itself; if it made Rapid-Fail Protection
//     disable the pool, (b)/(c) are crash evidence all the same (docs/design.md §5.4: "or pools
//     disabled"): other-cause with the binaries at the baseline.
//  6. Core files below the baseline: with a trigger installed, affected with crash
//     evidence (when no crash has the symptom's exit code, the evidence says so),
//     mismatch without; without a trigger, at-risk (crashes are then noted as not the
//     trigger's doing).
//  7. Core files at or above the baseline: other-cause with crash evidence, else healthy.
func Diagnose(f *Facts, pb *playbooks.Playbook) Finding {
	if pb == nil {
		pb = playbooks.Default()
	}
	if pb == nil {
		return Finding{Verdict: playbooks.ProbeFailed, Evidence: []string{"No playbook to diagnose with."}}
	}
	d := &diag{f: f, pb: pb, fd: Finding{Playbook: pb.Name}}
	d.run()
	if d.fd.Evidence == nil {
		d.fd.Evidence = []string{}
	}
	return d.fd
}

type diag struct {
	f  *Facts
	pb *playbooks.Playbook
	fd Finding
	// onlyOtherCrashes: pools were disabled or stopped, and every crash event since the
	// boot has another exit code than the symptom's.
	onlyOtherCrashes bool
}

func (d *diag) evidence(format string, args ...any) {
	d.fd.Evidence = append(d.fd.Evidence, fmt.Sprintf(format, args...))
}

func (d *diag) note(format string, args ...any) {
	d.fd.Notes = append(d.fd.Notes, fmt.Sprintf(format, args...))
}

func (d *diag) verdict(v playbooks.Verdict) { d.fd.Verdict = v }

// failed gives probe-failed, naming every one of sections that is not established, and
// reports whether there was one.
func (d *diag) failed(sections ...string) bool {
	var bad []string
	for _, s := range sections {
		if !d.f.established(s) {
			bad = append(bad, s)
		}
	}
	if len(bad) == 0 {
		return false
	}
	d.verdict(playbooks.ProbeFailed)
	for _, s := range bad {
		d.evidence("Section %s of the probe failed: %s.", s, d.problemOf(s))
	}
	return true
}

// problemOf is the first problem recorded for a section, without its final full stop.
func (d *diag) problemOf(section string) string {
	for _, p := range d.f.Problems {
		if p.Section == section {
			return strings.TrimSuffix(p.Msg, ".")
		}
	}
	return "not established"
}

func (d *diag) run() {
	f, pb := d.f, d.pb
	if f == nil {
		d.verdict(playbooks.ProbeFailed)
		d.evidence("No facts: the probe did not run.")
		return
	}
	// 1. A capture that lacks sections gets no other verdict.
	var lacking []string
	for _, s := range ProbeSections() {
		switch f.Sections[s] {
		case sectionOK, sectionFailed:
		case sectionCutShort:
			lacking = append(lacking, s+" (cut short)")
		default:
			lacking = append(lacking, s)
		}
	}
	if len(lacking) > 0 {
		d.verdict(playbooks.ProbeFailed)
		d.evidence("The probe capture lacks %d of %d sections: %s.", len(lacking), len(ProbeSections()), strings.Join(lacking, ", "))
		return
	}
	for _, s := range []string{sectionHostname, sectionLang, sectionBoot, sectionDisk, sectionPowerShell} {
		if !f.established(s) {
			d.note("Section %s failed: %s.", s, d.problemOf(s))
		}
	}

	// 2. Applicability.
	if d.failed(sectionOS) {
		return
	}
	osDesc := fmt.Sprintf("%s %s build %s", orUnknown(f.OS.ProductName, "Windows"), f.OS.Version, orUnknown(f.OS.Build, "?"))
	if f.OS.CSDVersion != "" {
		osDesc += " " + f.OS.CSDVersion
	}
	host := ""
	if f.Hostname != "" {
		host = "Host " + f.Hostname + " runs "
	} else {
		host = "The host runs "
	}
	if f.OS.Version != pb.AppliesTo.OSVersion {
		d.verdict(playbooks.NotApplicable)
		d.evidence("%s%s: Windows version %s is not %s (Windows Server 2003).", host, osDesc, f.OS.Version, pb.AppliesTo.OSVersion)
		return
	}
	if d.failed(sectionArch) {
		return
	}
	lang := f.Language
	if lang == "" {
		lang = orUnknown(f.InstallLanguage, "unknown")
	}
	d.evidence("%s%s (%s, language %s).", host, osDesc, f.Arch, lang)
	if !contains(pb.AppliesTo.Architectures, f.Arch) {
		d.verdict(playbooks.NotApplicable)
		d.evidence("Architecture %s is outside this playbook (%s).", f.Arch, strings.Join(pb.AppliesTo.Architectures, ", "))
		return
	}
	if f.OS.ServicePack < pb.AppliesTo.ServicePack {
		d.verdict(playbooks.NotApplicable)
		level := "RTM (no service pack)"
		if f.OS.ServicePack > 0 {
			level = fmt.Sprintf("Service Pack %d", f.OS.ServicePack)
		}
		d.evidence("The OS is at %s, below Service Pack %d, the level this playbook restores.", level, pb.AppliesTo.ServicePack)
		d.fd.Advice = fmt.Sprintf("Install Service Pack %d; this playbook applies only to hosts already at that level.", pb.AppliesTo.ServicePack)
		return
	}
	if d.failed(sectionIIS) {
		return
	}
	if f.IIS == nil {
		d.verdict(playbooks.NotApplicable)
		d.evidence("IIS is not installed (no HKLM\\SOFTWARE\\Microsoft\\InetStp key).")
		return
	}
	if f.IIS.MajorVersion != pb.AppliesTo.IISMajor {
		d.verdict(playbooks.NotApplicable)
		d.evidence("IIS is version %d.%d, not IIS %d.", f.IIS.MajorVersion, f.IIS.MinorVersion, pb.AppliesTo.IISMajor)
		return
	}
	if d.failed(decisiveSections...) {
		return
	}

	// 3. Core files against the baseline.
	base := pb.Baseline.Version
	spName := fmt.Sprintf("SP%d", pb.AppliesTo.ServicePack)
	var present, absent, unreadable []string
	for _, name := range pb.Baseline.CoreFiles {
		v, raw, ok := f.fileVersion(name)
		if _, listed := f.Files[name]; !listed {
			absent = append(absent, name)
			continue
		}
		if !ok {
			unreadable = append(unreadable, fmt.Sprintf("%s (%q)", name, raw))
			continue
		}
		present = append(present, name)
		if v.Less(base) {
			d.fd.BelowBaseline = append(d.fd.BelowBaseline, FileState{Name: name, Version: v.String(), Baseline: base.String()})
		}
	}
	sort.Slice(d.fd.BelowBaseline, func(i, j int) bool { return d.fd.BelowBaseline[i].Name < d.fd.BelowBaseline[j].Name })
	if len(present) == 0 {
		d.verdict(playbooks.ProbeFailed)
		d.evidence("The inetsrv listing has %d files but none of the %d core IIS files with a version.", len(f.Files), len(pb.Baseline.CoreFiles))
		return
	}
	if len(absent) > 0 {
		d.note("Core files not in %s\\system32\\inetsrv (not counted): %s.", orUnknown(f.SystemRoot, "%SystemRoot%"), strings.Join(absent, ", "))
	}
	if len(unreadable) > 0 {
		d.note("Core files without a readable version (not counted): %s.", strings.Join(unreadable, ", "))
	}
	var older []string
	for _, e := range pb.Baseline.Exceptions {
		if v, _, ok := f.fileVersion(e.Name); ok && v.Less(base) {
			older = append(older, e.Name+" "+v.String())
		}
	}
	if len(older) > 0 {
		d.note("Files known to stay older are ignored: %s.", strings.Join(older, ", "))
	}
	if n := len(d.fd.BelowBaseline); n > 0 {
		var parts []string
		for _, b := range d.fd.BelowBaseline {
			parts = append(parts, b.Name+" "+b.Version)
		}
		d.evidence("%d of %d core IIS files are below the %s baseline %s: %s.", n, len(present), spName, base, strings.Join(parts, ", "))
	} else {
		key := d.keyVersions()
		if key != "" {
			key = " (" + key + ")"
		}
		d.evidence("All %d core IIS files are at or above the %s baseline %s%s.", len(present), spName, base, key)
	}

	// 4. Trigger updates.
	for _, t := range pb.Triggers {
		d.trigger(t)
	}

	// 5. Crash evidence.
	d.crashEvidence()

	// 6, 7. The verdict.
	trigger := strings.Join(triggerNames(pb), "/")
	switch {
	case len(d.fd.BelowBaseline) > 0 && len(d.fd.TriggersInstalled) > 0 && d.fd.CrashEvidence:
		d.verdict(playbooks.Affected)
		if d.onlyOtherCrashes {
			d.evidence("No crash event has the symptom's exit code 0x%s: the crashes noted with other exit codes may be what disabled the pools; look at them too.", pb.Symptoms.ExitCode)
		}
		d.evidence("%s with core files below the %s baseline makes the worker processes fail: re-apply %s and reboot.", strings.Join(d.fd.TriggersInstalled, "/"), spName, spName)
	case len(d.fd.BelowBaseline) > 0 && len(d.fd.TriggersInstalled) > 0:
		d.verdict(playbooks.Mismatch)
		d.evidence("%s is installed over core files below the %s baseline; no crash yet: re-apply %s and reboot.", strings.Join(d.fd.TriggersInstalled, "/"), spName, spName)
	case len(d.fd.BelowBaseline) > 0:
		d.verdict(playbooks.AtRisk)
		if d.fd.CrashEvidence {
			d.evidence("The crashes above are not %s's doing (it is not installed).", trigger)
		}
		for _, t := range pb.Triggers {
			if t.RefusesMismatchSince != "" {
				d.evidence("A %s package released before %s would stop IIS on this host (later ones refuse to install on it): re-apply %s before installing one.", t.KB, t.RefusesMismatchSince, spName)
			} else {
				d.evidence("Installing %s on this host would stop IIS: re-apply %s before it.", t.KB, spName)
			}
		}
	case d.fd.CrashEvidence:
		d.verdict(playbooks.OtherCause)
		d.evidence("Pools crash although the core IIS files are at the %s level: the cause is not the binary mismatch and re-applying %s will not help.", spName, spName)
	default:
		d.verdict(playbooks.Healthy)
		d.evidence("Nothing to do: the core IIS files are at the %s level and no pool crashes.", spName)
	}
}

// keyVersions names the versions of the trigger files and the first core file (iisutil.dll
// in the embedded playbooks), the ones that decide the breakage.
func (d *diag) keyVersions() string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(d.pb.Baseline.CoreFiles) > 0 {
		add(d.pb.Baseline.CoreFiles[0])
	}
	for _, t := range d.pb.Triggers {
		for _, fv := range t.Files {
			add(fv.Name)
		}
	}
	var parts []string
	for _, n := range names {
		if _, raw, _ := d.f.fileVersion(n); raw != "" {
			parts = append(parts, n+" "+raw)
		}
	}
	return strings.Join(parts, ", ")
}

func (d *diag) trigger(t playbooks.Trigger) {
	byKey := d.f.hasHotfix(t.KB)
	// Any one of its files at or above the version it brings marks the update installed:
	// w3core.dll is what breaks, and the playbook's file table is unconfirmed, so a file
	// the update may not touch after all (w3dt.dll) must not hide it.
	byFiles := false
	var fileParts []string
	for _, fv := range t.Files {
		v, raw, ok := d.f.fileVersion(fv.Name)
		_, listed := d.f.Files[fv.Name]
		switch {
		case !listed:
			fileParts = append(fileParts, fmt.Sprintf("%s is absent", fv.Name))
		case !ok:
			fileParts = append(fileParts, fmt.Sprintf("%s has version %q", fv.Name, raw))
		case v.Less(fv.Version):
			fileParts = append(fileParts, fmt.Sprintf("%s is %s, below the %s it brings", fv.Name, v, fv.Version))
		default:
			byFiles = true
			fileParts = append(fileParts, fmt.Sprintf("%s is %s, at or above the %s it brings", fv.Name, v, fv.Version))
		}
	}
	key := `HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\` + t.KB
	keyPart := "no hotfix key " + key
	if byKey {
		keyPart = "hotfix key " + key + " present"
	}
	files := ""
	if len(fileParts) > 0 {
		files = "; " + strings.Join(fileParts, "; ")
	}
	switch {
	case byKey:
		d.fd.TriggersInstalled = append(d.fd.TriggersInstalled, t.KB)
		d.evidence("%s is installed: %s%s.", t.KB, keyPart, files)
		return
	case byFiles:
		// A later update of the same files reaches the version too: without the key, the
		// files say only that this update or a later one is there.
		d.fd.TriggersInstalled = append(d.fd.TriggersInstalled, t.KB)
		d.evidence("%s or a later update of its files is installed: %s%s.", t.KB, keyPart, files)
		return
	}
	d.evidence("%s is not installed: %s%s.", t.KB, keyPart, files)
}

type poolEvents struct {
	pool   string
	latest Event
	count  int
}

func groupByPool(evs []Event) []poolEvents {
	idx := map[string]int{}
	var out []poolEvents
	for _, e := range evs { // newest first
		i, ok := idx[e.Pool]
		if !ok {
			idx[e.Pool] = len(out)
			out = append(out, poolEvents{pool: e.Pool, latest: e})
			i = len(out) - 1
		}
		out[i].count++
	}
	return out
}

func (d *diag) crashEvidence() {
	f, sy := d.f, d.pb.Symptoms
	var crashes, disables, otherCrashes []Event
	old := 0
	for _, e := range f.Events {
		if e.Code != sy.CrashEvent && e.Code != sy.DisableEvent {
			continue
		}
		if f.BootTime != nil && !e.Time.IsZero() && e.Time.Before(*f.BootTime) {
			old++
			continue
		}
		switch {
		case e.Code == sy.CrashEvent && e.ExitCode == sy.ExitCode:
			crashes = append(crashes, e)
		case e.Code == sy.CrashEvent:
			otherCrashes = append(otherCrashes, e)
		default:
			disables = append(disables, e)
		}
	}
	since := "in the System log"
	if f.BootTime != nil {
		since = "since the last boot at " + d.at(*f.BootTime)
		if old > 0 {
			d.note("%d W3SVC %d/%d events predate the last boot (%s) and are not counted.", old, sy.CrashEvent, sy.DisableEvent, d.at(*f.BootTime))
		}
	} else {
		d.note("The boot time is unknown, so every W3SVC event in the System log counts.")
	}
	more := func(n int) string {
		if n <= 1 {
			return ""
		}
		return fmt.Sprintf(" (%d such events %s)", n, since)
	}
	for _, g := range groupByPool(crashes) {
		d.evidence("W3SVC event %d at %s: a worker process of pool %s%s exited with code 0x%s%s.",
			sy.CrashEvent, d.at(g.latest.Time), orUnknown(g.pool, "?"), pidNote(g.latest.PID), sy.ExitCode, more(g.count))
	}
	for _, g := range groupByPool(disables) {
		d.evidence("W3SVC event %d at %s: Rapid-Fail Protection disabled pool %s%s.",
			sy.DisableEvent, d.at(g.latest.Time), orUnknown(g.pool, "?"), more(g.count))
	}
	for _, g := range groupByPool(otherCrashes) {
		code := g.latest.ExitCode
		if code == "" {
			code = "unknown"
		} else {
			code = "0x" + code
		}
		d.note("W3SVC event %d at %s: a worker process of pool %s%s exited with code %s, which is not the symptom's 0x%s%s.",
			sy.CrashEvent, d.at(g.latest.Time), orUnknown(g.pool, "?"), pidNote(g.latest.PID), code, sy.ExitCode, more(g.count))
	}
	var stopped []Pool
	poolsChecked := f.W3SVC.running()
	if poolsChecked {
		for _, p := range f.Pools {
			if p.AutoStart && p.State == poolStopped {
				stopped = append(stopped, p)
			}
		}
		for _, p := range stopped {
			d.evidence("Pool %s starts automatically but is stopped (AppPoolState %d) while W3SVC is running.", p.Name, p.State)
		}
	} else if !f.W3SVC.Installed {
		d.evidence("The W3SVC service is not installed, although the InetStp key is present.")
	} else {
		d.evidence("W3SVC is %s (state %d), so pool states say nothing.", serviceStateName(f.W3SVC.State), f.W3SVC.State)
	}
	d.fd.CrashEvidence = len(crashes)+len(disables)+len(stopped) > 0
	d.onlyOtherCrashes = d.fd.CrashEvidence && len(crashes) == 0 && len(otherCrashes) > 0
	if !d.fd.CrashEvidence {
		pools := ""
		if poolsChecked {
			pools = ", and no auto-start pool is stopped"
		}
		d.evidence("No crash evidence: no W3SVC %d with exit code 0x%s and no %d %s%s.",
			sy.CrashEvent, sy.ExitCode, sy.DisableEvent, since, pools)
	}
}

// pidNote names a worker process ID, when the event gave one.
func pidNote(pid int) string {
	if pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

func triggerNames(pb *playbooks.Playbook) []string {
	var out []string
	for _, t := range pb.Triggers {
		out = append(out, t.KB)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orUnknown(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// severity orders verdicts for DiagnoseAll: the finding that asks for the most action wins.
// Diagnose gives none of the connection verdicts; they rank last.
func severity(v playbooks.Verdict) int {
	for i, w := range []playbooks.Verdict{playbooks.Affected, playbooks.Mismatch, playbooks.AtRisk,
		playbooks.OtherCause, playbooks.Healthy, playbooks.NotApplicable, playbooks.ProbeFailed} {
		if v == w {
			return i
		}
	}
	return 99
}

// DiagnoseAll diagnoses facts under several playbooks (e.g. every embedded one) and returns
// the most severe finding: affected before mismatch, at-risk, other-cause, healthy,
// not-applicable and probe-failed. On a tie the playbook that explains the host best wins:
// the one whose trigger's hotfix key is registered, then the one whose trigger brings the
// newest file version the host has reached, else the earlier playbook. An at-risk finding
// also carries the other at-risk playbooks' trigger sentences, so it names every update
// that would break the host. A host broken by KB973917 is at-risk under kb982666 (its
// trigger is not installed) but affected under kb973917, so a detect run over both says
// affected. No playbooks: the embedded kb982666.
func DiagnoseAll(f *Facts, pbs []*playbooks.Playbook) Finding {
	if len(pbs) == 0 {
		return Diagnose(f, nil)
	}
	var best Finding
	var bestPB *playbooks.Playbook
	var all []Finding
	for i, pb := range pbs {
		fd := Diagnose(f, pb)
		all = append(all, fd)
		if i == 0 || explainsBetter(f, fd, pb, best, bestPB) {
			best, bestPB = fd, pb
		}
	}
	if best.Verdict == playbooks.AtRisk {
		// Every trigger that would break the host is worth naming: add the other at-risk
		// findings' sentences that differ (their trigger lines).
		seen := map[string]bool{}
		for _, e := range best.Evidence {
			seen[e] = true
		}
		for _, fd := range all {
			if fd.Verdict != playbooks.AtRisk || fd.Playbook == best.Playbook {
				continue
			}
			for _, e := range fd.Evidence {
				if !seen[e] {
					seen[e] = true
					best.Evidence = append(best.Evidence, e)
				}
			}
		}
	}
	return best
}

// explainsBetter reports whether finding a (under playbook pa) beats b (under pb): a more
// severe verdict; on a tie, an update registered by its hotfix key over one recognised
// only by file versions, then the update whose files are the newer ones the host has (a
// host with KB982666's w3core.dll has reached KB973917's older version too, and must not
// be said to suffer from KB973917).
func explainsBetter(f *Facts, a Finding, pa *playbooks.Playbook, b Finding, pb *playbooks.Playbook) bool {
	if sa, sb := severity(a.Verdict), severity(b.Verdict); sa != sb {
		return sa < sb
	}
	if ka, kb := byKey(f, a), byKey(f, b); ka != kb {
		return ka
	}
	return newestReached(f, pa, a).Compare(newestReached(f, pb, b)) > 0
}

func byKey(f *Facts, fd Finding) bool {
	if f == nil {
		return false
	}
	for _, kb := range fd.TriggersInstalled {
		if f.hasHotfix(kb) {
			return true
		}
	}
	return false
}

// newestReached is the newest version, among the files of fd's installed triggers, that
// the host's copy of the file has reached.
func newestReached(f *Facts, pb *playbooks.Playbook, fd Finding) playbooks.Version {
	var newest playbooks.Version
	if f == nil || pb == nil {
		return newest
	}
	for _, t := range pb.Triggers {
		if !contains(fd.TriggersInstalled, t.KB) {
			continue
		}
		for _, fv := range t.Files {
			if v, _, ok := f.fileVersion(fv.Name); ok && !v.Less(fv.Version) && newest.Less(fv.Version) {
				newest = fv.Version
			}
		}
	}
	return newest
}
