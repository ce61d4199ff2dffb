package checks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFactsHealthyHost(t *testing.T) {
	t.Parallel()
	for _, variant := range []struct {
		name string
		mod  func(h *fakeHost)
	}{
		{"winrm pipe, reg.exe 3.0", func(h *fakeHost) {}},
		{"later reg layout", func(h *fakeHost) { h.laterReg = true }},
		{"file capture, utf-16le wmic", func(h *fakeHost) { h.fileForm = true }},
		{"file capture, first wmic run", func(h *fakeHost) { h.fileForm, h.banner = true, true }},
		{"pipe, first wmic run", func(h *fakeHost) { h.banner = true }},
		{"german sc labels", func(h *fakeHost) { h.germanSC = true }},
	} {
		t.Run(variant.name, func(t *testing.T) {
			t.Parallel()
			h := baseHost()
			h.powershell = "2.0"
			variant.mod(h)
			f, err := ParseFacts(h.capture())
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Problems) != 0 {
				t.Fatalf("problems: %+v", f.Problems)
			}
			for _, s := range ProbeSections() {
				if f.Sections[s] != sectionOK {
					t.Errorf("section %s = %s", s, f.Sections[s])
				}
			}
			wantOS := OS{ProductName: "Microsoft Windows Server 2003", Version: "5.2", Build: "3790", CSDVersion: "Service Pack 2", ServicePack: 2, BuildLab: "3790.srv03_sp2_rtm.070216-1710"}
			if f.OS != wantOS {
				t.Errorf("OS = %+v", f.OS)
			}
			if f.Hostname != "WEB01" || f.Arch != "x86" || f.InstallLanguage != "0409" || f.Language != "ENU" ||
				f.SystemRoot != `C:\WINDOWS` || f.SystemDrive != "C:" || f.PowerShellVersion != "2.0" {
				t.Errorf("facts = %+v", f)
			}
			if f.IIS == nil || *f.IIS != (IIS{MajorVersion: 6, MinorVersion: 0, InstallPath: `C:\WINDOWS\system32\inetsrv`}) {
				t.Errorf("IIS = %+v", f.IIS)
			}
			if !f.W3SVC.running() {
				t.Errorf("W3SVC = %+v", f.W3SVC)
			}
			if f.Files["w3core.dll"] != kb || f.Files["iisutil.dll"] != sp2 || f.Files["iis.msc"] != "" || len(f.Files) != len(inetsrvFiles(sp2, kb)) {
				t.Errorf("Files = %v", f.Files)
			}
			if !reflect.DeepEqual(f.Hotfixes, []string{"KB925902", "KB982666"}) || !f.hasHotfix("kb982666") {
				t.Errorf("Hotfixes = %v", f.Hotfixes)
			}
			if len(f.Pools) != 2 || f.Pools[0] != (Pool{Name: "DefaultAppPool", Path: "W3SVC/AppPools/DefaultAppPool", AutoStart: true, State: 2}) {
				t.Errorf("Pools = %+v", f.Pools)
			}
			if f.BootTime == nil || !f.BootTime.Equal(time.Date(2010, 6, 15, 7, 30, 0, 375000000, time.UTC)) {
				t.Errorf("BootTime = %v", f.BootTime)
			}
			if f.LocalTime == nil || f.LocalTime.Format(time.RFC3339) != "2010-06-15T11:00:00+02:00" {
				t.Errorf("LocalTime = %v", f.LocalTime)
			}
			if f.Disk == nil || *f.Disk != (Disk{Drive: "C:", FreeBytes: 5368709120, SizeBytes: 21474836480}) {
				t.Errorf("Disk = %+v", f.Disk)
			}
		})
	}
}

func TestFactsEvents(t *testing.T) {
	t.Parallel()
	h := affectedHost()
	h.events = append(h.events,
		fakeEvent{1009, `{"Pool2","77","0xFFFFFFFF"}`, "20100615085600.000000+060"},
		fakeEvent{1009, `{"Pool3","78","00000080"}`, "20100615085700.000000-000"},
		fakeEvent{1009, `{"Pool4"}`, "bad time"},
		fakeEvent{0, `{}`, "x"},
	)
	h.events[len(h.events)-1].code = -5 // printed as EventCode=-5: kept
	f, err := ParseFacts(h.capture())
	if err != nil {
		t.Fatal(err)
	}
	if f.Sections[sectionEvents] != sectionOK {
		t.Fatalf("events section %s", f.Sections[sectionEvents])
	}
	byPool := map[string]Event{}
	for _, e := range f.Events {
		if _, dup := byPool[e.Pool]; !dup {
			byPool[e.Pool] = e
		}
	}
	if e := byPool["DefaultAppPool"]; e.Code != 1002 {
		t.Errorf("newest DefaultAppPool event = %+v, want the 1002", e)
	}
	if e := byPool["Pool2"]; e.ExitCode != "ffffffff" || e.PID != 77 || e.Time.UTC().Hour() != 7 {
		t.Errorf("Pool2 = %+v", e)
	}
	if e := byPool["Pool3"]; e.ExitCode != "80" {
		t.Errorf("Pool3 = %+v", e)
	}
	if e := byPool["Pool4"]; e.ExitCode != "" || !e.Time.IsZero() {
		t.Errorf("Pool4 = %+v", e)
	}
	if !strings.Contains(problemText(f), "event 1009") {
		t.Errorf("problems %q lack the bad time", problemText(f))
	}
	// Newest first.
	for i := 1; i < len(f.Events); i++ {
		if f.Events[i].Time.After(f.Events[i-1].Time) {
			t.Errorf("events not newest first at %d", i)
		}
	}
}

func problemText(f *Facts) string {
	var s []string
	for _, p := range f.Problems {
		s = append(s, p.Section+": "+p.Msg)
	}
	return strings.Join(s, "\n")
}

func TestFactsMissingThings(t *testing.T) {
	t.Parallel()
	h := baseHost()
	h.iisMajor = 0
	h.w3svc = 0
	h.hotfixes = nil
	h.csd = ""
	h.arch = "AMD64"
	h.lcid = "0407"
	f, err := ParseFacts(h.capture())
	if err != nil {
		t.Fatal(err)
	}
	if f.IIS != nil || f.W3SVC.Installed || len(f.Hotfixes) != 0 || f.OS.ServicePack != 0 || f.Arch != "x64" || f.Language != "DEU" || f.PowerShellVersion != "" {
		t.Errorf("facts = %+v", f)
	}
	// Without IIS the apppools wmic fails: that section failed, the rest is fine.
	for _, s := range ProbeSections() {
		want := sectionOK
		if s == sectionAppPools {
			want = sectionFailed
		}
		if f.Sections[s] != want {
			t.Errorf("section %s = %s, want %s", s, f.Sections[s], want)
		}
	}
}

func TestFactsCutShortAndMissing(t *testing.T) {
	t.Parallel()
	h := baseHost()
	h.cutAfter = "inetsrv"
	h.noSections = map[string]bool{"arch": true}
	f, err := ParseFacts(h.capture())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hostname": "ok", "os": "ok", "arch": "missing", "lang": "ok", "iis": "ok", "w3svc": "ok",
		"inetsrv": "cut-short", "hotfixes": "missing", "events": "missing", "apppools": "missing", "boot": "missing", "disk": "missing", "powershell": "missing"}
	if !reflect.DeepEqual(f.Sections, want) {
		t.Errorf("Sections = %v", f.Sections)
	}
}

func TestFactsNoRC(t *testing.T) {
	t.Parallel()
	h := baseHost()
	h.dropRC = true // delayed expansion off: rc=!ERRORLEVEL!
	f, err := ParseFacts(h.capture())
	if err != nil {
		t.Fatal(err)
	}
	// Sections whose output speaks for itself still establish facts.
	if f.Sections[sectionOS] != sectionOK || f.Sections[sectionInetsrv] != sectionOK {
		t.Errorf("Sections = %v", f.Sections)
	}
	// A reg query that printed nothing needs the exit code.
	if f.Sections[sectionPowerShell] != sectionFailed {
		t.Errorf("powershell = %s", f.Sections[sectionPowerShell])
	}
}

func TestFactsJSON(t *testing.T) {
	t.Parallel()
	f, err := ParseFacts(affectedHost().capture())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"hostname":"WEB01"`, `"inetsrv_files":{`, `"service_pack":2`, `"exit_code":"ffffffff"`, `"boot_time":"2010-06-15T09:30:00.375+02:00"`, `"sections":{`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	var back Facts
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := Diagnose(&back, nil), Diagnose(f, nil); got.Verdict != want.Verdict {
		t.Errorf("verdict after JSON round trip = %s, want %s", got.Verdict, want.Verdict)
	}
}

func TestParseFileVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"6.0.3790.3959":   "6.0.3790.3959",
		" 6.0.3790.1830 ": "6.0.3790.1830",
		"6.0.3790.3959 (srv03_sp2_rtm.070216-1710)": "6.0.3790.3959",
		"6.0.3790":       "",
		"6":              "",
		"":               "",
		"6.0.3790.70000": "",
		"a.b.c.d":        "",
	} {
		v, ok := parseFileVersion(in)
		if got := map[bool]string{true: v.String(), false: ""}[ok]; got != want {
			t.Errorf("parseFileVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
