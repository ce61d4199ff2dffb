package checks

import (
	"slices"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/playbooks"
)

func TestDiagnose(t *testing.T) {
	t.Parallel()
	kb982666, err := playbooks.Get("kb982666")
	if err != nil {
		t.Fatal(err)
	}
	kb973917, err := playbooks.Get("kb973917")
	if err != nil {
		t.Fatal(err)
	}
	mismatch := func() *fakeHost { // SP1-level IIS files, KB982666 installed, no crash yet
		h := baseHost()
		h.files = inetsrvFiles(sp1, kb)
		return h
	}
	tests := []struct {
		name      string
		host      func() *fakeHost
		pb        *playbooks.Playbook
		want      playbooks.Verdict
		evidence  []string // substrings that must appear in Evidence
		notes     []string // substrings that must appear in Notes
		crash     bool
		advice    string
		wantBelow int
	}{
		{
			name: "affected: 1009 ffffffff, 1002 and a stopped auto-start pool",
			host: affectedHost, want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{
				"Host WEB01 runs Microsoft Windows Server 2003 5.2 build 3790 Service Pack 2 (x86, language ENU).",
				"21 of 23 core IIS files are below the SP2 baseline 6.0.3790.3959: admwprox.dll 6.0.3790.1830,",
				"iisutil.dll 6.0.3790.1830",
				`KB982666 is installed: hotfix key HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\KB982666 present; w3core.dll is 6.0.3790.4693, at or above the 6.0.3790.4693 it brings`,
				"W3SVC event 1009 at 2010-06-15 10:55:02 +02:00: a worker process of pool DefaultAppPool (pid 1240) exited with code 0xffffffff (2 such events since the last boot at 2010-06-15 09:30:00 +02:00).",
				"W3SVC event 1002 at 2010-06-15 10:55:03 +02:00: Rapid-Fail Protection disabled pool DefaultAppPool.",
				"Pool DefaultAppPool starts automatically but is stopped (AppPoolState 4) while W3SVC is running.",
				"re-apply SP2 and reboot",
			},
			notes: []string{"Files known to stay older are ignored: seos.dll 6.0.3790.0, aqadmin.dll 6.0.3790.0, iisclex4.dll 6.0.3790.0, nntpsnap.dll 6.0.3728.0, smtpsnap.dll 6.0.3728.0."},
		},
		{
			name: "affected: 1009 alone, exit code 0xFFFFFFFF with prefix and capitals",
			host: func() *fakeHost {
				h := mismatch()
				h.events = []fakeEvent{{1009, `{"WsusPool","4242","0xFFFFFFFF"}`, "20100615100000.000000+120"}}
				return h
			},
			want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"W3SVC event 1009 at 2010-06-15 10:00:00 +02:00: a worker process of pool WsusPool (pid 4242) exited with code 0xffffffff."},
		},
		{
			name: "affected: 1002 alone",
			host: func() *fakeHost {
				h := mismatch()
				h.events = []fakeEvent{{1002, `{"WsusPool"}`, "20100615100000.000000+120"}}
				return h
			},
			want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"Rapid-Fail Protection disabled pool WsusPool."},
		},
		{
			name: "affected: a stopped auto-start pool alone (events cleared)",
			host: func() *fakeHost {
				h := mismatch()
				h.pools[1].state = 4
				return h
			},
			want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"Pool WsusPool starts automatically but is stopped (AppPoolState 4) while W3SVC is running."},
		},
		{
			name: "affected: pool disabled after crashes with another exit code, said so",
			host: func() *fakeHost {
				h := mismatch()
				h.events = []fakeEvent{
					{1009, `{"DefaultAppPool","3908","80"}`, "20100615100000.000000+120"},
					{1002, `{"DefaultAppPool"}`, "20100615100001.000000+120"},
				}
				return h
			},
			want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"No crash event has the symptom's exit code 0xffffffff: the crashes noted with other exit codes may be what disabled the pools; look at them too."},
			notes:    []string{"exited with code 0x80, which is not the symptom's 0xffffffff."},
		},
		{
			name: "mismatch: no crash evidence",
			host: mismatch, want: playbooks.Mismatch, wantBelow: 21,
			evidence: []string{
				"No crash evidence: no W3SVC 1009 with exit code 0xffffffff and no 1002 since the last boot at 2010-06-15 09:30:00 +02:00, and no auto-start pool is stopped.",
				"KB982666 is installed over core files below the SP2 baseline; no crash yet: re-apply SP2 and reboot.",
			},
		},
		{
			name: "mismatch: crashes before the last boot do not count",
			host: func() *fakeHost {
				h := mismatch()
				h.events = affectedHost().events
				h.boot = "20100616000000.000000+000"
				return h
			},
			want: playbooks.Mismatch, wantBelow: 21,
			notes: []string{"3 W3SVC 1009/1002 events predate the last boot (2010-06-16 02:00:00 +02:00) and are not counted."},
		},
		{
			name: "mismatch: a 1009 with exit code 0x80 is not the symptom",
			host: func() *fakeHost {
				h := mismatch()
				h.events = []fakeEvent{{1009, `{"DefaultAppPool","3908","80"}`, "20100615100000.000000+120"}}
				return h
			},
			want: playbooks.Mismatch, wantBelow: 21,
			notes: []string{"W3SVC event 1009 at 2010-06-15 10:00:00 +02:00: a worker process of pool DefaultAppPool (pid 3908) exited with code 0x80, which is not the symptom's 0xffffffff."},
		},
		{
			name: "mismatch: stopped auto-start pool while W3SVC is stopped is no evidence",
			host: func() *fakeHost {
				h := mismatch()
				h.w3svc = 1
				h.pools[0].state = 4
				h.pools[1].state = 4
				return h
			},
			want: playbooks.Mismatch, wantBelow: 21,
			evidence: []string{
				"W3SVC is stopped (state 1), so pool states say nothing.",
				// Pool states were not looked at, so the sentence must not vouch for them.
				"No crash evidence: no W3SVC 1009 with exit code 0xffffffff and no 1002 since the last boot at 2010-06-15 09:30:00 +02:00.",
			},
		},
		{
			name: "mismatch: trigger known by its files only (no hotfix key)",
			host: func() *fakeHost {
				h := mismatch()
				h.hotfixes = []string{"KB925902"}
				return h
			},
			want: playbooks.Mismatch, wantBelow: 21,
			evidence: []string{`KB982666 or a later update of its files is installed: no hotfix key HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\KB982666; w3core.dll is 6.0.3790.4693, at or above the 6.0.3790.4693 it brings; w3dt.dll is 6.0.3790.4693`},
		},
		{
			name: "mismatch: trigger known by its hotfix key only (files replaced at reboot)",
			host: func() *fakeHost {
				h := mismatch()
				h.files = inetsrvFiles(sp1, "")
				return h
			},
			want: playbooks.Mismatch, wantBelow: 23,
			evidence: []string{"KB982666 is installed: hotfix key", "w3core.dll is 6.0.3790.1830, below the 6.0.3790.4693 it brings"},
		},
		{
			name: "at-risk: mismatch without the trigger",
			host: func() *fakeHost {
				h := baseHost()
				h.files = inetsrvFiles(sp1, "")
				h.hotfixes = []string{"KB925902"}
				return h
			},
			want: playbooks.AtRisk, wantBelow: 23,
			evidence: []string{
				"KB982666 is not installed: no hotfix key",
				"w3core.dll is 6.0.3790.1830, below the 6.0.3790.4693 it brings",
				"Installing KB982666 on this host would stop IIS: re-apply SP2 before it.",
			},
		},
		{
			name: "at-risk: crashes are not the trigger's doing",
			host: func() *fakeHost {
				h := affectedHost()
				h.files = inetsrvFiles(sp1, "")
				h.hotfixes = nil
				return h
			},
			want: playbooks.AtRisk, crash: true, wantBelow: 23,
			evidence: []string{"The crashes above are not KB982666's doing (it is not installed)."},
		},
		{
			name: "other-cause: 1009 ffffffff with binaries at the baseline",
			host: func() *fakeHost {
				h := affectedHost()
				h.files = inetsrvFiles(sp2, kb)
				return h
			},
			want: playbooks.OtherCause, crash: true,
			evidence: []string{
				"All 23 core IIS files are at or above the SP2 baseline 6.0.3790.3959 (iisutil.dll 6.0.3790.3959, w3core.dll 6.0.3790.4693, w3dt.dll 6.0.3790.4693).",
				"W3SVC event 1009 at",
				"the cause is not the binary mismatch and re-applying SP2 will not help.",
			},
		},
		{
			name: "other-cause: 0x80 crashes made RFP disable the pool",
			host: func() *fakeHost {
				h := baseHost()
				h.events = []fakeEvent{
					{1009, `{"DefaultAppPool","3908","80"}`, "20100615100000.000000+120"},
					{1002, `{"DefaultAppPool"}`, "20100615100001.000000+120"},
				}
				h.pools[0].state = 4
				return h
			},
			want: playbooks.OtherCause, crash: true,
			evidence: []string{"Rapid-Fail Protection disabled pool DefaultAppPool.", "Pool DefaultAppPool starts automatically but is stopped"},
			notes:    []string{"exited with code 0x80, which is not the symptom's 0xffffffff."},
		},
		{
			name: "healthy",
			host: baseHost, want: playbooks.Healthy,
			evidence: []string{"All 23 core IIS files are at or above the SP2 baseline 6.0.3790.3959", "KB982666 is installed", "No crash evidence"},
		},
		{
			name: "healthy: a lone 1009 with another exit code",
			host: func() *fakeHost {
				h := baseHost()
				h.events = []fakeEvent{{1009, `{"DefaultAppPool","3908","80"}`, "20100615100000.000000+120"}}
				return h
			},
			want:  playbooks.Healthy,
			notes: []string{"exited with code 0x80"},
		},
		{
			name: "healthy: without the trigger",
			host: func() *fakeHost {
				h := baseHost()
				h.files = inetsrvFiles(sp2, "")
				h.hotfixes = nil
				return h
			},
			want:     playbooks.Healthy,
			evidence: []string{"KB982666 is not installed"},
		},
		{
			name: "healthy: a core file above the baseline, one absent",
			host: func() *fakeHost {
				h := baseHost()
				h.files["asp.dll"] = "6.0.3790.4735"
				delete(h.files, "strmfilt.dll")
				return h
			},
			want:  playbooks.Healthy,
			notes: []string{`Core files not in C:\WINDOWS\system32\inetsrv (not counted): strmfilt.dll.`},
		},
		{
			name: "healthy: a truncated version is unreadable, not old",
			host: func() *fakeHost {
				h := baseHost()
				h.files["iisutil.dll"] = "6.0.3790"
				return h
			},
			want:  playbooks.Healthy,
			notes: []string{`Core files without a readable version (not counted): iisutil.dll ("6.0.3790").`},
		},
		{
			name: "affected: a 1009 without a pid",
			host: func() *fakeHost {
				h := mismatch()
				h.events = []fakeEvent{{1009, `{"DefaultAppPool","","ffffffff"}`, "20100615100000.000000+120"}}
				return h
			},
			want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"a worker process of pool DefaultAppPool exited with code 0xffffffff."},
		},
		{
			name: "kb973917: pre-March-2010 w3core and a crash",
			host: func() *fakeHost {
				h := affectedHost()
				h.files = inetsrvFiles(sp1, "6.0.3790.4614")
				h.hotfixes = []string{"KB973917"}
				return h
			},
			pb: kb973917, want: playbooks.Affected, crash: true, wantBelow: 21,
			evidence: []string{"KB973917 is installed: hotfix key"},
		},
		{
			name:     "not-applicable: Windows Server 2008",
			host:     func() *fakeHost { h := baseHost(); h.osVersion, h.build = "6.0", "6002"; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{"Host WEB01 runs Microsoft Windows Server 2003 6.0 build 6002 Service Pack 2: Windows version 6.0 is not 5.2 (Windows Server 2003)."},
		},
		{
			name:     "not-applicable: IA64",
			host:     func() *fakeHost { h := baseHost(); h.arch = "IA64"; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{"Architecture ia64 is outside this playbook (x86, x64)."},
		},
		{
			name:     "not-applicable: SP1, advise SP2",
			host:     func() *fakeHost { h := mismatch(); h.csd = "Service Pack 1"; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{"The OS is at Service Pack 1, below Service Pack 2, the level this playbook restores."},
			advice:   "Install Service Pack 2",
		},
		{
			name:     "not-applicable: RTM",
			host:     func() *fakeHost { h := baseHost(); h.csd = ""; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{"The OS is at RTM (no service pack)"},
			advice:   "Install Service Pack 2",
		},
		{
			name: "not-applicable: localized CSDVersion with SP1",
			host: func() *fakeHost { h := baseHost(); h.csd = "Paquete de servicio 1"; return h },
			want: playbooks.NotApplicable, advice: "Install Service Pack 2",
		},
		{
			name:     "not-applicable: no IIS",
			host:     func() *fakeHost { h := baseHost(); h.iisMajor, h.w3svc = 0, 0; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{`IIS is not installed (no HKLM\SOFTWARE\Microsoft\InetStp key).`},
		},
		{
			name:     "not-applicable: IIS 5",
			host:     func() *fakeHost { h := baseHost(); h.iisMajor = 5; return h },
			want:     playbooks.NotApplicable,
			evidence: []string{"IIS is version 5.0, not IIS 6."},
		},
		{
			name:     "probe-failed: capture cut short",
			host:     func() *fakeHost { h := affectedHost(); h.cutAfter = "events"; return h },
			want:     playbooks.ProbeFailed,
			evidence: []string{"The probe capture lacks 5 of 13 sections: events (cut short), apppools, boot, disk, powershell."},
		},
		{
			name:     "probe-failed: a section missing",
			host:     func() *fakeHost { h := baseHost(); h.noSections = map[string]bool{"hostname": true}; return h },
			want:     playbooks.ProbeFailed,
			evidence: []string{"The probe capture lacks 1 of 13 sections: hostname."},
		},
		{
			name: "probe-failed: inetsrv listing failed",
			host: func() *fakeHost {
				h := baseHost()
				h.files = map[string]string{}
				return h
			},
			want:     playbooks.ProbeFailed,
			evidence: []string{"The inetsrv listing has 0 files but none of the 23 core IIS files with a version."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFacts(tt.host().capture())
			if err != nil {
				t.Fatal(err)
			}
			pb := tt.pb
			if pb == nil {
				pb = kb982666
			}
			got := Diagnose(f, pb)
			checkVerdictRules(t, got)
			if got.Verdict != tt.want {
				t.Errorf("verdict = %s, want %s\nevidence:\n  %s\nnotes:\n  %s", got.Verdict, tt.want,
					strings.Join(got.Evidence, "\n  "), strings.Join(got.Notes, "\n  "))
			}
			ev := strings.Join(got.Evidence, "\n")
			for _, w := range tt.evidence {
				if !strings.Contains(ev, w) {
					t.Errorf("evidence lacks %q; got:\n  %s", w, strings.Join(got.Evidence, "\n  "))
				}
			}
			notes := strings.Join(got.Notes, "\n")
			for _, w := range tt.notes {
				if !strings.Contains(notes, w) {
					t.Errorf("notes lack %q; got:\n  %s", w, strings.Join(got.Notes, "\n  "))
				}
			}
			if got.CrashEvidence != tt.crash {
				t.Errorf("CrashEvidence = %v, want %v", got.CrashEvidence, tt.crash)
			}
			if !strings.HasPrefix(got.Advice, tt.advice) || (tt.advice == "") != (got.Advice == "") {
				t.Errorf("Advice = %q, want prefix %q", got.Advice, tt.advice)
			}
			if len(got.BelowBaseline) != tt.wantBelow {
				t.Errorf("BelowBaseline = %d files, want %d", len(got.BelowBaseline), tt.wantBelow)
			}
			if got.Playbook != pb.Name {
				t.Errorf("Playbook = %q", got.Playbook)
			}
		})
	}
}

func TestDiagnoseEdges(t *testing.T) {
	t.Parallel()
	if got := Diagnose(nil, nil); got.Verdict != playbooks.ProbeFailed || len(got.Evidence) != 1 {
		t.Errorf("nil facts: %+v", got)
	}
	if got := Diagnose(&Facts{}, nil); got.Verdict != playbooks.ProbeFailed {
		t.Errorf("empty facts: %+v", got)
	}
	// The os section present but unreadable.
	h := baseHost()
	h.osVersion = ""
	f, _ := ParseFacts(h.capture())
	got := Diagnose(f, nil)
	if got.Verdict != playbooks.ProbeFailed || !strings.Contains(strings.Join(got.Evidence, "\n"), "Section os of the probe failed: no CurrentVersion value (exit code 0).") {
		t.Errorf("os failed: %+v", got)
	}
	// The boot section failed: every event counts, noted.
	h = affectedHost()
	h.boot = "garbage"
	f, _ = ParseFacts(h.capture())
	got = Diagnose(f, nil)
	if got.Verdict != playbooks.Affected || !strings.Contains(strings.Join(got.Notes, "\n"), "The boot time is unknown, so every W3SVC event in the System log counts.") {
		t.Errorf("boot failed: %+v", got)
	}
}

func TestDiagnoseFailedSectionWithoutProblem(t *testing.T) {
	t.Parallel()
	// Facts read back from JSON may mark a section failed without saying why.
	f, _ := ParseFacts(baseHost().capture())
	f.Sections[sectionBoot], f.Sections[sectionW3SVC] = sectionFailed, sectionFailed
	f.Problems = nil
	fd := Diagnose(f, nil)
	if !slices.Contains(fd.Notes, "Section boot failed: not established.") ||
		!slices.Contains(fd.Evidence, "Section w3svc of the probe failed: not established.") || fd.Verdict != playbooks.ProbeFailed {
		t.Errorf("%s\nevidence %q\nnotes %q", fd.Verdict, fd.Evidence, fd.Notes)
	}
}

func TestDiagnoseAll(t *testing.T) {
	t.Parallel()
	pbs := allPlaybooks(t)
	h := affectedHost()
	h.files = inetsrvFiles(sp1, "6.0.3790.4614")
	h.hotfixes = []string{"KB973917"}
	f, err := ParseFacts(h.capture())
	if err != nil {
		t.Fatal(err)
	}
	if got := Diagnose(f, pbs[1]).Verdict; got != playbooks.AtRisk || pbs[1].Name != "kb982666" {
		t.Fatalf("kb982666 alone: %s", got)
	}
	fd := DiagnoseAll(f, pbs)
	if fd.Verdict != playbooks.Affected || fd.Playbook != "kb973917" {
		t.Errorf("DiagnoseAll = %s under %s", fd.Verdict, fd.Playbook)
	}
	// Healthy under both: the playbook whose hotfix key is registered (KB982666), although
	// kb973917 comes first and its w3core.dll version is reached too.
	f, _ = ParseFacts(baseHost().capture())
	if fd := DiagnoseAll(f, pbs); fd.Verdict != playbooks.Healthy || fd.Playbook != "kb982666" {
		t.Errorf("DiagnoseAll healthy = %s under %s", fd.Verdict, fd.Playbook)
	}
	// At risk under both: the finding names both updates.
	h = baseHost()
	h.files = inetsrvFiles(sp1, "")
	h.hotfixes = nil
	f, _ = ParseFacts(h.capture())
	fd = DiagnoseAll(f, pbs)
	ev := strings.Join(fd.Evidence, "\n")
	if fd.Verdict != playbooks.AtRisk || !strings.Contains(ev, "A KB973917 package released before 2010-03-09 would stop IIS on this host (later ones refuse to install on it)") || !strings.Contains(ev, "Installing KB982666 on this host") ||
		strings.Count(ev, "core IIS files are below") != 1 {
		t.Errorf("DiagnoseAll at-risk = %s:\n%s", fd.Verdict, ev)
	}
	if fd := DiagnoseAll(f, nil); fd.Playbook != "kb982666" {
		t.Errorf("DiagnoseAll(nil playbooks) used %s", fd.Playbook)
	}
}

func TestDiagnoseTriggerByOneFile(t *testing.T) {
	t.Parallel()
	h := affectedHost()
	h.hotfixes = nil
	h.files["w3dt.dll"] = sp1 // the update's file table is unconfirmed: w3core.dll alone counts
	f, _ := ParseFacts(h.capture())
	fd := Diagnose(f, nil)
	if fd.Verdict != playbooks.Affected || len(fd.TriggersInstalled) != 1 {
		t.Errorf("verdict %s, triggers %v", fd.Verdict, fd.TriggersInstalled)
	}
}

// TestDiagnoseAllNewestTrigger: a host with KB982666's w3core.dll and no hotfix keys
// reaches KB973917's older version too; the finding must name KB982666, whichever
// playbook comes first.
func TestDiagnoseAllNewestTrigger(t *testing.T) {
	t.Parallel()
	pbs := allPlaybooks(t)
	if pbs[0].Name != "kb973917" {
		t.Fatalf("playbooks in order %s, %s: the test needs kb973917 first", pbs[0].Name, pbs[1].Name)
	}
	for _, hotfixes := range [][]string{nil, {"KB973917", "KB982666"}} {
		h := affectedHost()
		h.hotfixes = hotfixes
		f, err := ParseFacts(h.capture())
		if err != nil {
			t.Fatal(err)
		}
		for _, order := range [][]*playbooks.Playbook{pbs, {pbs[1], pbs[0]}} {
			fd := DiagnoseAll(f, order)
			if fd.Verdict != playbooks.Affected || fd.Playbook != "kb982666" {
				t.Errorf("hotfixes %v: DiagnoseAll = %s under %s, want affected under kb982666", hotfixes, fd.Verdict, fd.Playbook)
			}
			if ev := strings.Join(fd.Evidence, "\n"); strings.Contains(ev, "KB973917") {
				t.Errorf("hotfixes %v: evidence names KB973917:\n%s", hotfixes, ev)
			}
		}
	}
}

func TestDiagnoseTriggerFileWithoutVersion(t *testing.T) {
	t.Parallel()
	h := baseHost()
	h.files["w3dt.dll"] = ""
	f, _ := ParseFacts(h.capture())
	ev := strings.Join(Diagnose(f, nil).Evidence, "\n")
	if !strings.Contains(ev, `w3dt.dll has version ""`) || strings.Contains(ev, "w3dt.dll is absent") {
		t.Errorf("evidence:\n%s", ev)
	}
}

func TestDiagnoseNoKeyVersions(t *testing.T) {
	t.Parallel()
	// None of the key files is listed: no empty parentheses.
	h := baseHost()
	h.hotfixes = nil
	for _, n := range []string{"iisutil.dll", "w3core.dll", "w3dt.dll"} {
		delete(h.files, n)
	}
	f, _ := ParseFacts(h.capture())
	fd := Diagnose(f, nil)
	ev := strings.Join(fd.Evidence, "\n")
	if fd.Verdict != playbooks.Healthy || !strings.Contains(ev, "All 20 core IIS files are at or above the SP2 baseline 6.0.3790.3959.") {
		t.Errorf("%s:\n%s", fd.Verdict, ev)
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	order := []playbooks.Verdict{playbooks.Affected, playbooks.Mismatch, playbooks.AtRisk, playbooks.OtherCause,
		playbooks.Healthy, playbooks.NotApplicable, playbooks.ProbeFailed, playbooks.Unreachable}
	for i := 1; i < len(order); i++ {
		if severity(order[i-1]) >= severity(order[i]) {
			t.Errorf("%s does not rank before %s", order[i-1], order[i])
		}
	}
}
