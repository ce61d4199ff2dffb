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

// execer runs command lines on a host, over Exec or over WinRM.
type execer func(t *testing.T, cmdline string, stdin []byte) (string, string, int)

func direct(h *win2003.Host) execer {
	return func(t *testing.T, cmdline string, stdin []byte) (string, string, int) {
		return exec(t, h, cmdline, stdin)
	}
}

// rig is a lab host under test, on a manual clock: simulated time moves only when the test
// advances it, so no outcome depends on how fast the machine runs the test. run executes command
// lines on the host, directly or over WinRM.
type rig struct {
	h     *win2003.Host
	clock *win2003.Clock
	run   execer
	ended chan string // names of scheduled tasks as they end
}

// newRig builds a host of the scenario on a manual clock; onPower, when set, follows its power
// changes as the fleet does (Options.OnPowerChange). run is nil until the caller sets it.
func newRig(t *testing.T, scenario string, seed int64, onPower func(up bool)) *rig {
	t.Helper()
	return newRigOpts(t, scenario, seed, func(o *win2003.Options) { o.OnPowerChange = onPower })
}

// newRigOpts is newRig with options of the test's own (mod may be nil); run executes directly.
func newRigOpts(t *testing.T, scenario string, seed int64, mod func(*win2003.Options)) *rig {
	t.Helper()
	r := &rig{clock: win2003.NewManualClock(win2003.DefaultStart), ended: make(chan string, 16)}
	opts := win2003.Options{Seed: seed, Clock: r.clock,
		// A task's end is logged; the log is the host's only signal of it, and so the test's event.
		Logf: func(format string, args ...any) {
			if strings.HasSuffix(format, "task %s ended with %d") && len(args) > 0 {
				r.ended <- fmt.Sprint(args[0])
			}
		}}
	if mod != nil {
		mod(&opts)
	}
	h, err := win2003.NewScenario(scenario, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	r.run = direct(h)
	return r
}

// directRig is a rig whose commands run through Host.Exec.
func directRig(t *testing.T, scenario string, seed int64) *rig {
	t.Helper()
	r := newRig(t, scenario, seed, nil)
	r.run = direct(r.h)
	return r
}

// eventTimeout bounds a wait for an event that comes at once unless the host model is broken; it
// only turns such a hang into a failure.
const eventTimeout = time.Minute

// waitPending waits until n timers are pending on the rig's clock.
func (r *rig) waitPending(t *testing.T, n int, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if !r.clock.WaitPending(ctx, n) {
		t.Fatalf("%s never waited on the clock (%d timers pending, want %d)", what, r.clock.Pending(), n)
	}
}

// waitTask waits until the scheduled task named name has ended.
func (r *rig) waitTask(t *testing.T, name string) {
	t.Helper()
	timeout := time.NewTimer(eventTimeout)
	defer timeout.Stop()
	for {
		select {
		case n := <-r.ended:
			if strings.EqualFold(n, name) {
				return
			}
		case <-timeout.C:
			t.Fatalf("task %s never ended", name)
		}
	}
}

// b64Lines encodes the lab installer as certutil writes base64: 64-character lines with armour.
func b64Lines(arch, lang string) []byte {
	data, _ := io.ReadAll(win2003.NewInstallerImage(arch, lang, 0).Open())
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
	name := win2003.InstallerName(arch, lang)
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

// installViaTask runs the installer from a one-shot SYSTEM task, moves the clock past the
// installer's run once it waits on the clock, and returns the exit code the task's script wrote.
func installViaTask(t *testing.T, r *rig, installer string) string {
	t.Helper()
	run := r.run
	script := "@echo off\r\n" + installer + " /quiet /norestart\r\n> C:\\iisremedy\\sp2.rc echo %ERRORLEVEL%\r\n"
	if _, e, rc := run(t, `findstr "^" > C:\iisremedy\install.cmd`, []byte(script)); rc != 0 {
		t.Fatalf("write install.cmd: %d %s", rc, e)
	}
	out, e, rc := run(t, `schtasks /create /tn iisremedy-sp2 /tr "C:\iisremedy\install.cmd" /sc once /st 23:59:00 /ru SYSTEM`, nil)
	if rc != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("schtasks /create: rc=%d %q %q", rc, out, e)
	}
	pending := r.clock.Pending() // the task's own start at 23:59, hours away
	if out, e, rc := run(t, `schtasks /run /tn iisremedy-sp2`, nil); rc != 0 {
		t.Fatalf("schtasks /run: rc=%d %q %q", rc, out, e)
	}
	r.waitPending(t, pending+1, "the installer")
	if out, _, _ := run(t, `if exist C:\iisremedy\sp2.rc echo early`, nil); out != "" {
		t.Fatal("the task wrote its exit code while the installer was still running")
	}
	r.clock.AdvanceToNext() // the installer's run time (at most 25 simulated minutes)
	r.waitTask(t, "iisremedy-sp2")
	out, _, rc = run(t, `type C:\iisremedy\sp2.rc`, nil)
	if rc != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("the task ended without writing its exit code: rc=%d %q", rc, out)
	}
	run(t, `schtasks /delete /tn iisremedy-sp2 /f`, nil)
	return strings.TrimSpace(out)
}

var re1009 = regexp.MustCompile(`EventCode=1009`)

func count1009(t *testing.T, run execer) int {
	out, _, _ := run(t, `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and EventCode=1009" get EventCode /format:list < NUL`, nil)
	return len(re1009.FindAllString(out, -1))
}

func startPools(t *testing.T, run execer) {
	t.Helper()
	out, e, rc := run(t, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool call Start < NUL`, nil)
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
	out, _, _ := run(t, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolState /format:list < NUL`, nil)
	return strings.Join(strings.Fields(out), " ")
}

// reboot runs shutdown /r /t 120 and moves the clock through it: the host stays up until the
// 120 seconds have passed, goes down then and, unless it never returns, is up again after the
// 3-minute boot. It reports whether the host is up.
func reboot(t *testing.T, r *rig) bool {
	t.Helper()
	h := r.h
	down := h.PowerChanged()
	if out, e, rc := r.run(t, `shutdown /r /t 120 /d p:2:17 /c "iisremedy: SP2 re-applied"`, nil); rc != 0 {
		t.Fatalf("shutdown: %d %q %q", rc, out, e)
	}
	r.clock.Advance(119 * time.Second)
	if !h.Up() {
		t.Fatal("host down before /t elapsed")
	}
	r.clock.Advance(time.Second)
	select {
	case <-down:
	default:
		t.Fatal("host did not go down when /t elapsed")
	}
	if h.Up() {
		t.Fatal("host up right after going down")
	}
	up := h.PowerChanged()
	if h.Spec().NeverReturns {
		r.clock.Advance(24 * time.Hour)
		return h.Up()
	}
	r.clock.Advance(3*time.Minute - time.Second)
	if h.Up() {
		t.Fatal("host up before its boot time")
	}
	r.clock.Advance(time.Second)
	select {
	case <-up:
	default:
		t.Fatal("host did not come back after its boot time")
	}
	return h.Up()
}

func bootTime(t *testing.T, run execer) string {
	out, _, _ := run(t, `wmic os get LastBootUpTime /format:list < NUL`, nil)
	_, v, _ := strings.Cut(out, "LastBootUpTime=")
	return strings.TrimSpace(v)
}

// remediate is the whole flow on one host; it returns the 1009 events seen after the reboot.
func remediate(t *testing.T, r *rig, doReboot bool) (rc string, new1009 int, warm string) {
	spec := r.h.Spec()
	run := r.run
	installer := stageInstaller(t, run, spec.Arch, spec.Language)
	rc = installViaTask(t, r, installer)
	before := bootTime(t, run)
	if doReboot {
		if !reboot(t, r) {
			return rc, -1, ""
		}
		if after := bootTime(t, run); after <= before {
			t.Errorf("LastBootUpTime did not move: %s then %s", before, after)
		}
	}
	base := count1009(t, run)
	startPools(t, run)
	warm = warmUp(t, run)
	r.clock.Advance(10 * time.Minute) // ten simulated minutes of background requests
	return rc, count1009(t, run) - base, warm
}

func TestDynamicsAffectedRebootHeals(t *testing.T) {
	r := directRig(t, "affected", 11)
	h, run := r.h, r.run
	rc, n, warm := remediate(t, r, true)
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
	r := directRig(t, "affected", 12)
	h, run := r.h, r.run
	rc, n, warm := remediate(t, r, false)
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
	r := directRig(t, "other-cause", 13)
	rc, n, warm := remediate(t, r, true)
	if rc != "0" {
		t.Errorf("installer exit code %s, want 0 (nothing below SP2)", rc)
	}
	if n == 0 || warm != "503" {
		t.Errorf("other-cause after SP2 and reboot: %d new 1009, warm-up %s; want crashes and 503", n, warm)
	}
}

func TestDynamicsInstallerFails(t *testing.T) {
	r := directRig(t, "installer-fails", 14)
	run := r.run
	installer := stageInstaller(t, run, "x86", "0409")
	if rc := installViaTask(t, r, installer); rc != "1603" {
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

// TestDynamicsCorruptInstaller: a file is an installer by its content, not its name: a damaged
// copy under the installer's name is no program Windows can load.
func TestDynamicsCorruptInstaller(t *testing.T) {
	r := directRig(t, "affected", 15)
	run := r.run
	name := win2003.InstallerName("x86", "0409")
	run(t, `mkdir C:\iisremedy`, nil)
	run(t, `findstr "^" > C:\iisremedy\`+name, []byte("MZ truncated"))
	if _, e, rc := run(t, `C:\iisremedy\`+name+" /quiet /norestart", nil); rc != 193 || e != `C:\iisremedy\`+name+" is not a valid Win32 application.\r\n" {
		t.Errorf("corrupt installer: rc=%d %q, want 193 and the bad-image text", rc, e)
	}
	if runs := r.h.InstallerRuns(); len(runs) != 0 {
		t.Errorf("installer runs %+v, want none", runs)
	}
}

func TestDynamicsSecondInstallerRefused(t *testing.T) {
	r := directRig(t, "affected", 16)
	h, run := r.h, r.run
	installer := stageInstaller(t, run, "x86", "0409")
	if _, e, rc := run(t, `schtasks /create /tn a /tr "`+installer+` /quiet /norestart" /sc once /st 23:59:00 /ru SYSTEM`, nil); rc != 0 {
		t.Fatal(e)
	}
	pending := r.clock.Pending()
	run(t, `schtasks /run /tn a`, nil)
	r.waitPending(t, pending+1, "the first installer") // it runs until the clock moves
	if !h.Installing() {
		t.Fatal("first installer did not start")
	}
	if _, _, rc := run(t, installer+" /quiet /norestart", nil); rc != win2003.DefaultQuirks().ExitInstallerBusy {
		t.Errorf("second installer exit code %d, want %d", rc, win2003.DefaultQuirks().ExitInstallerBusy)
	}
	r.clock.AdvanceToNext()
	r.waitTask(t, "a")
	if h.Installing() {
		t.Error("still installing after the first installer ended")
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
			r := directRig(t, name, int64(40+i))
			rc, n, warm := remediate(t, r, true)
			if rc != "3010" || n != 0 || warm != "200" {
				t.Errorf("%s: installer %s, %d new 1009 after reboot, warm-up %s; want 3010, 0, 200", name, rc, n, warm)
			}
			sr := r.h.Spec().SystemRoot
			if v := r.h.FileVersion(sr + `\system32\inetsrv\iisutil.dll`); v != win2003.VersionSP2 {
				t.Errorf("iisutil.dll %s", v)
			}
		})
	}
	// the wrong language's installer fails
	r := directRig(t, "spanish", 50)
	inst := stageInstaller(t, r.run, "x86", "0409")
	if rc := installViaTask(t, r, inst); rc != "1603" {
		t.Errorf("ENU installer on a Spanish host: %s, want 1603", rc)
	}
}
