package win2003_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

// fastClock is a scaled clock: 30 simulated minutes pass in about 18 real milliseconds.
func fastClock() *win2003.Clock { return win2003.NewClock(win2003.DefaultStart, 1e5) }

// execer runs command lines on a host, over Exec or over WinRM.
type execer func(t *testing.T, cmdline string, stdin []byte) (string, string, int)

func direct(h *win2003.Host) execer {
	return func(t *testing.T, cmdline string, stdin []byte) (string, string, int) {
		return exec(t, h, cmdline, stdin)
	}
}

// b64Lines encodes the lab installer as certutil writes base64: 64-character lines with armour.
func b64Lines(arch, lang string) []byte {
	data, _ := io.ReadAll(win2003.InstallerBytes(arch, lang))
	enc := base64.StdEncoding.EncodeToString(data)
	var sb strings.Builder
	sb.WriteString("-----BEGIN CERTIFICATE-----\r\n")
	for len(enc) > 64 {
		sb.WriteString(enc[:64] + "\r\n")
		enc = enc[64:]
	}
	sb.WriteString(enc + "\r\n-----END CERTIFICATE-----\r\n")
	return []byte(sb.String())
}

// stageInstaller uploads the SP2 installer as base64 text and decodes it with certutil.
func stageInstaller(t *testing.T, run execer, arch, lang string) string {
	t.Helper()
	name, _, _ := win2003.InstallerImage(arch, lang)
	run(t, `mkdir C:\iisremedy`, nil)
	if _, e, rc := run(t, `findstr "^" > C:\iisremedy\sp2.b64`, b64Lines(arch, lang)); rc != 0 {
		t.Fatalf("upload: rc=%d %s", rc, e)
	}
	out, e, rc := run(t, `certutil -f -decode C:\iisremedy\sp2.b64 C:\iisremedy\`+name, nil)
	if rc != 0 {
		t.Fatalf("certutil -decode: rc=%d %s %s", rc, out, e)
	}
	return `C:\iisremedy\` + name
}

// installViaTask runs the installer from a one-shot SYSTEM task and polls the exit-code marker with
// ping as the scaled wait; it returns the installer's exit code.
func installViaTask(t *testing.T, run execer, installer string) string {
	t.Helper()
	script := "@echo off\r\n" + installer + " /quiet /norestart\r\n> C:\\iisremedy\\sp2.rc echo %ERRORLEVEL%\r\n"
	if _, e, rc := run(t, `findstr "^" > C:\iisremedy\install.cmd`, []byte(script)); rc != 0 {
		t.Fatalf("write install.cmd: %d %s", rc, e)
	}
	out, e, rc := run(t, `schtasks /create /tn iisremedy-sp2 /tr "C:\iisremedy\install.cmd" /sc once /st 23:59:00 /ru SYSTEM`, nil)
	if rc != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("schtasks /create: rc=%d %q %q", rc, out, e)
	}
	if out, e, rc := run(t, `schtasks /run /tn iisremedy-sp2`, nil); rc != 0 {
		t.Fatalf("schtasks /run: rc=%d %q %q", rc, out, e)
	}
	for i := 0; i < 600; i++ {
		out, _, rc := run(t, `if exist C:\iisremedy\sp2.rc type C:\iisremedy\sp2.rc`, nil)
		if rc == 0 && strings.TrimSpace(out) != "" {
			run(t, `schtasks /delete /tn iisremedy-sp2 /f`, nil)
			return strings.TrimSpace(out)
		}
		run(t, `ping -n 61 127.0.0.1 > nul`, nil) // a simulated minute
	}
	t.Fatal("installer never wrote its marker")
	return ""
}

var re1009 = regexp.MustCompile(`EventCode=1009`)

func count1009(t *testing.T, run execer) int {
	out, _, _ := run(t, `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and EventCode=1009" get EventCode /format:list`, nil)
	return len(re1009.FindAllString(out, -1))
}

func startPools(t *testing.T, run execer) {
	t.Helper()
	out, e, rc := run(t, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool call Start`, nil)
	if rc != 0 {
		t.Fatalf("start pools: rc=%d %q %q", rc, out, e)
	}
}

func warmUp(t *testing.T, run execer) string {
	t.Helper()
	script := "Set x = CreateObject(\"MSXML2.ServerXMLHTTP\")\r\nx.open \"GET\", \"http://localhost/\", False\r\nx.send\r\nWScript.Echo x.status\r\n"
	run(t, `findstr "^" > C:\iisremedy\warmup.vbs`, []byte(script))
	out, _, _ := run(t, `cscript //nologo C:\iisremedy\warmup.vbs`, nil)
	return strings.TrimSpace(out)
}

func poolStates(t *testing.T, run execer) string {
	out, _, _ := run(t, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolState /format:list`, nil)
	return strings.Join(strings.Fields(out), " ")
}

// reboot runs shutdown /r and waits for the host to go down and, unless it never returns, up.
func reboot(t *testing.T, h *win2003.Host, run execer) bool {
	t.Helper()
	ch := h.PowerChanged()
	// rc -1: the connection dropped because the host went down first (over WinRM with a fast clock)
	if out, e, rc := run(t, `shutdown /r /t 120 /d p:2:17 /c "iisremedy: SP2 re-applied"`, nil); rc != 0 && rc != -1 {
		t.Fatalf("shutdown: %d %q %q", rc, out, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("host did not go down")
	}
	if h.Up() {
		t.Fatal("host up right after going down")
	}
	if h.Spec().NeverReturns {
		return false
	}
	select {
	case <-h.PowerChanged():
	case <-ctx.Done():
		t.Fatal("host did not come back")
	}
	return h.Up()
}

func bootTime(t *testing.T, run execer) string {
	out, _, _ := run(t, `wmic os get LastBootUpTime /format:list`, nil)
	_, v, _ := strings.Cut(out, "LastBootUpTime=")
	return strings.TrimSpace(v)
}

// remediate is the whole flow on one host; it returns the 1009 events seen after the reboot.
func remediate(t *testing.T, h *win2003.Host, run execer, doReboot bool) (rc string, new1009 int, warm string) {
	spec := h.Spec()
	installer := stageInstaller(t, run, spec.Arch, spec.Language)
	rc = installViaTask(t, run, installer)
	before := bootTime(t, run)
	if doReboot {
		if !reboot(t, h, run) {
			return rc, -1, ""
		}
		if after := bootTime(t, run); after <= before {
			t.Errorf("LastBootUpTime did not move: %s then %s", before, after)
		}
	}
	base := count1009(t, run)
	startPools(t, run)
	warm = warmUp(t, run)
	run(t, `ping -n 601 127.0.0.1 > nul`, nil) // ten simulated minutes of background requests
	return rc, count1009(t, run) - base, warm
}

func TestDynamicsAffectedRebootHeals(t *testing.T) {
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 11, Clock: fastClock()})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	rc, n, warm := remediate(t, h, run, true)
	if rc != "3010" {
		t.Errorf("installer exit code %s, want 3010 (in-use files replaced at reboot)", rc)
	}
	if n != 0 || warm != "200" {
		t.Errorf("after reboot: %d new 1009 events, warm-up %s; want 0 and 200", n, warm)
	}
	if v := h.FileVersion(`C:\WINDOWS\system32\inetsrv\iisutil.dll`); v != win2003.VersionSP2 {
		t.Errorf("iisutil.dll %s, want %s", v, win2003.VersionSP2)
	}
	if v := h.FileVersion(`C:\WINDOWS\system32\inetsrv\w3core.dll`); v != win2003.VersionKB982666 {
		t.Errorf("w3core.dll %s, want %s (SP2 never lowers a newer file)", v, win2003.VersionKB982666)
	}
	if s := poolStates(t, run); strings.Contains(s, "AppPoolState=4") {
		t.Errorf("pools after remediation: %s", s)
	}
	log, _, _ := run(t, `type C:\WINDOWS\svcpack.log`, nil)
	if !strings.Contains(log, "0xbc2") {
		t.Errorf("svcpack.log: %q", log)
	}
}

func TestDynamicsNoRebootStaysBroken(t *testing.T) {
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 12, Clock: fastClock()})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	rc, n, warm := remediate(t, h, run, false)
	if rc != "3010" {
		t.Errorf("installer exit code %s, want 3010", rc)
	}
	if n == 0 || warm != "503" {
		t.Errorf("without reboot: %d new 1009 events, warm-up %s; want crashes and 503", n, warm)
	}
	if v := h.FileVersion(`C:\WINDOWS\system32\inetsrv\iisutil.dll`); v == win2003.VersionSP2 {
		t.Errorf("iisutil.dll replaced without a reboot")
	}
	pending, _, _ := run(t, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations`, nil)
	if !strings.Contains(pending, "iisutil.dll") {
		t.Errorf("no pending rename of iisutil.dll: %q", pending)
	}
}

func TestDynamicsOtherCauseStaysBroken(t *testing.T) {
	h, err := win2003.NewScenario("other-cause", win2003.Options{Seed: 13, Clock: fastClock()})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	rc, n, warm := remediate(t, h, run, true)
	if rc != "0" {
		t.Errorf("installer exit code %s, want 0 (nothing below SP2)", rc)
	}
	if n == 0 || warm != "503" {
		t.Errorf("other-cause after SP2 and reboot: %d new 1009, warm-up %s; want crashes and 503", n, warm)
	}
}

func TestDynamicsInstallerFailsOnShortDisk(t *testing.T) {
	h, err := win2003.NewScenario("installer-fails", win2003.Options{Seed: 14, Clock: fastClock()})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	installer := stageInstaller(t, run, "x86", "0409")
	if rc := installViaTask(t, run, installer); rc != "1603" {
		t.Errorf("installer exit code %s, want 1603", rc)
	}
	// the three lines of the failure sample in docs/facts.md §2.3, each ending a log line
	log, _, _ := run(t, `type C:\WINDOWS\svcpack.log`, nil)
	for _, l := range []string{"Service Pack 2 Setup canceled.", "Update.exe extended error code = 0xf00d", "Update.exe return code was masked to 0x643 for MSI custom action compliance."} {
		if !strings.Contains(log, ": "+l+"\r\n") {
			t.Errorf("svcpack.log lacks %q:\n%s", l, log)
		}
	}
}

func TestDynamicsCorruptInstaller(t *testing.T) {
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 15, Clock: fastClock()})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	name, _, _ := win2003.InstallerImage("x86", "0409")
	run(t, `mkdir C:\iisremedy`, nil)
	run(t, `findstr "^" > C:\iisremedy\`+name, []byte("MZ truncated"))
	if rc := installViaTask(t, run, `C:\iisremedy\`+name); rc != "1603" {
		t.Errorf("corrupt installer exit code %s, want 1603", rc)
	}
}

func TestDynamicsSecondInstallerRefused(t *testing.T) {
	clock := win2003.NewClock(win2003.DefaultStart, 1e3) // the first install runs for ~1.5 s
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 16, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	run := direct(h)
	installer := stageInstaller(t, run, "x86", "0409")
	if _, e, rc := run(t, `schtasks /create /tn a /tr "`+installer+` /quiet /norestart" /sc once /st 23:59:00 /ru SYSTEM`, nil); rc != 0 {
		t.Fatal(e)
	}
	run(t, `schtasks /run /tn a`, nil)
	for i := 0; i < 1000 && !h.Installing(); i++ {
		run(t, `ping -n 2 127.0.0.1 > nul`, nil)
	}
	if !h.Installing() {
		t.Fatal("first installer did not start")
	}
	if _, _, rc := run(t, installer+" /quiet /norestart", nil); rc != win2003.ExitInstallerBusy {
		t.Errorf("second installer exit code %d, want %d", rc, win2003.ExitInstallerBusy)
	}
}

func TestDynamicsNeverReturns(t *testing.T) {
	clock := win2003.NewManualClock(win2003.DefaultStart)
	var events []bool
	h, err := win2003.NewScenario("never-returns", win2003.Options{Seed: 17, Clock: clock, OnPowerChange: func(up bool) { events = append(events, up) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, rc := exec(t, h, `shutdown /r /t 30`, nil); rc != 0 {
		t.Fatal("shutdown failed")
	}
	clock.Advance(29 * time.Second)
	if !h.Up() {
		t.Fatal("down before /t elapsed")
	}
	clock.Advance(time.Second)
	if h.Up() {
		t.Fatal("still up after /t")
	}
	clock.Advance(24 * time.Hour)
	if h.Up() || fmt.Sprint(events) != "[false]" {
		t.Errorf("never-returns host: up=%v power events %v", h.Up(), events)
	}
	if _, _, rc := exec(t, h, "hostname", nil); rc == 0 {
		t.Error("a down host ran a command")
	}
}

func TestDynamicsRebootManualClock(t *testing.T) {
	clock := win2003.NewManualClock(win2003.DefaultStart)
	var events []bool
	h, err := win2003.NewScenario("healthy", win2003.Options{Seed: 18, Clock: clock, OnPowerChange: func(up bool) { events = append(events, up) }})
	if err != nil {
		t.Fatal(err)
	}
	before := h.LastBootUpTime()
	exec(t, h, `shutdown /r /t 0`, nil)
	clock.Advance(time.Second)
	if h.Up() {
		t.Fatal("up during reboot")
	}
	clock.Advance(3 * time.Minute)
	if !h.Up() || !h.LastBootUpTime().After(before) || fmt.Sprint(events) != "[false true]" {
		t.Errorf("after reboot: up=%v boot %v (before %v) events %v", h.Up(), h.LastBootUpTime(), before, events)
	}
	if h.PoolState("DefaultAppPool") != 2 {
		t.Errorf("DefaultAppPool state %d after boot, want 2", h.PoolState("DefaultAppPool"))
	}
}

// TestDynamicsVariants remediates the affected variants: x64 (its own installer name), Spanish
// (ESN installer), a D:\WINNT system root and the KB973917 twin.
func TestDynamicsVariants(t *testing.T) {
	for i, name := range []string{"x64", "spanish", "winnt-root", "kb973917", "flaky", "mismatch"} {
		t.Run(name, func(t *testing.T) {
			h, err := win2003.NewScenario(name, win2003.Options{Seed: int64(40 + i), Clock: fastClock()})
			if err != nil {
				t.Fatal(err)
			}
			run := direct(h)
			rc, n, warm := remediate(t, h, run, true)
			if rc != "3010" || n != 0 || warm != "200" {
				t.Errorf("%s: installer %s, %d new 1009 after reboot, warm-up %s; want 3010, 0, 200", name, rc, n, warm)
			}
			sr := h.Spec().SystemRoot
			if v := h.FileVersion(sr + `\system32\inetsrv\iisutil.dll`); v != win2003.VersionSP2 {
				t.Errorf("iisutil.dll %s", v)
			}
		})
	}
	// the wrong language's installer fails
	h, _ := win2003.NewScenario("spanish", win2003.Options{Seed: 50, Clock: fastClock()})
	run := direct(h)
	inst := stageInstaller(t, run, "x86", "0409")
	if rc := installViaTask(t, run, inst); rc != "1603" {
		t.Errorf("ENU installer on a Spanish host: %s, want 1603", rc)
	}
}
