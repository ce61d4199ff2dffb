package win2003_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/lab/win2003"
)

// The task runner, the install, the pools and the host's logs (the engine's install, pools and
// verify steps).

// TestEchoHandleRedirection: a digit right before > after a token delimiter (space, comma,
// semicolon, equals sign) is a handle number, so "echo exit=%ERRORLEVEL%>>f" records only the
// multi-digit codes: 0 redirects stdin (nothing reaches f), 1 is stdout (f gets "exit="), 2
// stderr. This is how cmd.exe reads the engine's marker line (ReactOS's cmd parser).
func TestEchoHandleRedirection(t *testing.T) {
	h := stageHost(t, "healthy", nil)
	mustRun(t, h, `mkdir `+work, nil)
	for _, tc := range []struct{ code, file, out string }{
		{"0", "", "exit=\r\n"},
		{"1", "exit=\r\n", ""},
		{"2", "", "exit=\r\n"},
		{"3010", "exit=3010\r\n", ""},
		{"1603", "exit=1603\r\n", ""},
	} {
		f := work + `\m` + tc.code
		out, e, rc := exec(t, h, `echo exit=`+tc.code+`>>"`+f+`"`, nil)
		got := mustRun(t, h, `type "`+f+`"`, nil)
		if got != tc.file || out != tc.out || rc != 0 {
			t.Errorf("exit=%s: file %q stdout %q stderr %q rc=%d; want file %q stdout %q", tc.code, got, out, e, rc, tc.file, tc.out)
		}
	}
	// redirection first, or a space before >>, keeps the code
	mustRun(t, h, `>>"`+work+`\n0" echo exit=0`, nil)
	if got := mustRun(t, h, `type "`+work+`\n0"`, nil); got != "exit=0\r\n" {
		t.Errorf("redirection before the command: %q", got)
	}
}

// TestSchtasksStartDateLocale: /sd is read in the order of the caller's HKCU\Control
// Panel\International (Quirks.SchtasksDateHive); a date that does not parse in it is refused.
func TestSchtasksStartDateLocale(t *testing.T) {
	create := func(h *win2003.Host, sd string) (string, int) {
		_, e, rc := exec(t, h, taskCreateCmd("t", work+`\t.cmd`, "23:59:00", sd), nil)
		return e, rc
	}
	en := stageHost(t, "affected", nil)
	out := mustRun(t, en, `reg query "HKCU\Control Panel\International" /v iDate & reg query "HKCU\Control Panel\International" /v sDate`, nil)
	if out != "! REG.EXE VERSION 3.0\r\n\r\nHKEY_CURRENT_USER\\Control Panel\\International\r\n    iDate\tREG_SZ\t0\r\n\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_CURRENT_USER\\Control Panel\\International\r\n    sDate\tREG_SZ\t/\r\n\r\n" {
		t.Errorf("English HKCU: %q", out)
	}
	if e, rc := create(en, "21/06/2010"); rc != 1 || e != "ERROR: Invalid Start Date (Date should be in \"mm/dd/yyyy\" format).\r\n" {
		t.Errorf("day-first date on an English host: rc=%d %q", rc, e)
	}
	if out := mustRun(t, en, `schtasks /query /fo csv /nh`, nil); out != "" {
		t.Errorf("a refused task exists: %q", out)
	}
	if e, rc := create(en, "06/21/2010"); rc != 0 {
		t.Errorf("month-first date on an English host: rc=%d %q", rc, e)
	}
	es := stageHost(t, "spanish", nil)
	if out := mustRun(t, es, `reg query "HKCU\Control Panel\International" /v iDate`, nil); !strings.Contains(out, "iDate\tREG_SZ\t1\r\n") {
		t.Errorf("Spanish HKCU: %q", out)
	}
	if e, rc := create(es, "06/21/2010"); rc != 1 || !strings.Contains(e, `"dd/mm/yyyy"`) {
		t.Errorf("month-first date on a Spanish host: rc=%d %q", rc, e)
	}
	if e, rc := create(es, "21/06/2010"); rc != 0 {
		t.Errorf("day-first date on a Spanish host: rc=%d %q", rc, e)
	}
	// The caller's order, or .DEFAULT's with Quirks.SchtasksDateHive "default".
	q := win2003.DefaultQuirks()
	q.SchtasksDateHive = "default"
	for _, tc := range []struct {
		q    *win2003.Quirks
		want int
	}{{nil, 1}, {&q, 0}} {
		h := stageHost(t, "affected", func(o *win2003.Options) { o.Quirks = tc.q })
		mustRun(t, h, `reg add "HKCU\Control Panel\International" /v iDate /t REG_SZ /d 1 /f`, nil)
		if _, rc := create(h, "21/06/2010"); (rc == 0) != (tc.want == 1) {
			t.Errorf("hive %v: day-first date rc=%d", tc.q, rc)
		}
	}
}

// TestSchtasksQuery2003: /query prints 2003's times ("2:42:00 PM , 2/4/2001": 12 hours, a space
// before the comma), "Running" while the task runs, "Not yet run" in /v lists.
func TestSchtasksQuery2003(t *testing.T) {
	r := newRigOpts(t, "affected", 7, nil)
	h := r.h
	mustRun(t, h, `mkdir `+work, nil)
	mustRun(t, h, `findstr "^" > `+work+`\slow.cmd`, crlf("@echo off\nping -n 2 127.0.0.1 > nul\n"))
	mustRun(t, h, taskCreateCmd("slow", work+`\slow.cmd`, "14:42:00", "06/21/2010"), nil)
	if out := mustRun(t, h, `schtasks /query /fo csv /nh`, nil); out != "\"iisremedy-slow\",\"2:42:00 PM , 6/21/2010\",\"\"\r\n" {
		t.Errorf("csv: %q", out)
	}
	if out := mustRun(t, h, `schtasks /query /fo list /v`, nil); !strings.Contains(out, "Status:                           Not yet run\r\n") || !strings.Contains(out, "Last Run Time:                    Never\r\n") {
		t.Errorf("list /v: %q", out)
	}
	pending := r.clock.Pending()
	mustRun(t, h, `schtasks /run /tn "iisremedy-slow"`, nil)
	r.waitPending(t, pending+1, "the task's ping")
	if out := mustRun(t, h, `schtasks /query /fo csv /nh`, nil); out != "\"iisremedy-slow\",\"2:42:00 PM , 6/21/2010\",\"Running\"\r\n" {
		t.Errorf("running: %q", out)
	}
	r.clock.Advance(time.Second) // ping's one wait
	r.waitTask(t, "iisremedy-slow")
	if out := mustRun(t, h, `schtasks /query /fo csv /nh`, nil); out != "\"iisremedy-slow\",\"2:42:00 PM , 6/21/2010\",\"\"\r\n" {
		t.Errorf("after the run: %q", out)
	}
}

// TestInstallFromTask: the engine's install task. The installer is recognised by its content
// under W\<sha256>.exe; the task runs the engine's batch file as SYSTEM; the marker records the
// installer's exit code; the logs show one installer run and who ran what.
func TestInstallFromTask(t *testing.T) {
	r := newRigOpts(t, "affected", 8, nil)
	h := r.h
	img := win2003.NewInstallerImage("x86", "0409", 0)
	exe := work + `\` + img.SHA256 + ".exe"
	mustRun(t, h, `mkdir `+work, nil)
	mustRun(t, h, `findstr "^" > `+work+`\i.b64`, pushLines(img.Open(), 48<<10))
	mustRun(t, h, `certutil -f -decode `+work+`\i.b64 "`+exe+`"`, nil)
	marker := work + `\install.marker`
	mustRun(t, h, `findstr "^" > "`+work+`\install.cmd"`, []byte(taskBatch(marker, "RUN1 plan=abc", `"`+exe+`" /quiet /norestart`)))
	mustRun(t, h, taskCreateCmd("install", work+`\install.cmd`, "09:02:00", "06/21/2010"), nil)
	pending := r.clock.Pending()
	if out := mustRun(t, h, `schtasks /run /tn "iisremedy-install"`, nil); out != "SUCCESS: Attempted to run the scheduled task \"iisremedy-install\".\r\n" {
		t.Errorf("run: %q", out)
	}
	r.waitPending(t, pending+1, "the installer")
	if out := mustRun(t, h, `type "`+marker+`"`, nil); out != "run=RUN1 plan=abc started\r\n" {
		t.Errorf("marker while installing: %q", out)
	}
	// a second installer while one runs
	if _, _, rc := exec(t, h, `"`+exe+`" /quiet /norestart`, nil); rc != 1618 {
		t.Errorf("second installer: rc=%d, want 1618", rc)
	}
	r.clock.AdvanceToNext()
	r.waitTask(t, "iisremedy-install")
	if out := mustRun(t, h, `type "`+marker+`"`, nil); out != "run=RUN1 plan=abc started\r\nexit=3010\r\n" {
		t.Errorf("marker: %q", out)
	}
	runs := h.InstallerRuns()
	if len(runs) != 2 || runs[0].Image != img.Name || runs[0].User != "SYSTEM" || runs[0].InShell || runs[0].ExitCode != 3010 ||
		runs[0].End.Sub(runs[0].Start) != 25*time.Minute || runs[1].ExitCode != 1618 || runs[1].User != "Administrator" {
		t.Errorf("installer runs %+v", runs)
	}
	var task *win2003.CommandRecord
	for _, c := range h.Commands() {
		if c.Task == "iisremedy-install" {
			task = &c
		} else if c.User != "Administrator" {
			t.Errorf("WinRM command run as %q: %+v", c.User, c)
		}
	}
	if task == nil || task.User != "SYSTEM" || task.CommandLine != work+`\install.cmd` || task.ExitCode != 3010 || !task.Wrote {
		t.Errorf("task record %+v", task)
	}
	// Any other file is no program: "W\x.exe" with other bytes.
	mustRun(t, h, `findstr "^" > "`+work+`\x.exe"`, []byte("MZ"+strings.Repeat("x", 100)))
	if _, e, rc := exec(t, h, `"`+work+`\x.exe" /quiet`, nil); rc != 193 || !strings.Contains(e, "is not a valid Win32 application.") {
		t.Errorf("other exe: rc=%d %q", rc, e)
	}
}

// TestHealthyProbeWritesNothing: the probe of a healthy host is read-only in the command log;
// a command that changes the host is marked.
func TestHealthyProbeWritesNothing(t *testing.T) {
	h := stageHost(t, "healthy", nil)
	mustRun(t, h, checks.ProbeCommand(), nil)
	mustRun(t, h, `type C:\boot.ini 2>nul & exit /b 0`, nil)
	for _, c := range h.Commands() {
		if c.Wrote {
			t.Errorf("a read-only command marked as writing: %.80q", c.CommandLine)
		}
	}
	mustRun(t, h, `mkdir `+work, nil)
	if cs := h.Commands(); !cs[len(cs)-1].Wrote || cs[len(cs)-1].End.IsZero() {
		t.Errorf("mkdir not marked as writing: %+v", cs[len(cs)-1])
	}
}

// TestNetStopIISAdmin: net stop iisadmin names its dependants and asks; with no answer (stdin
// from NUL) nothing stops; /y stops the dependants, then IIS Admin (KB969864's transcript).
func TestNetStopIISAdmin(t *testing.T) {
	list := "The following services are dependent on the IIS Admin Service service.\r\n" +
		"Stopping the IIS Admin Service service will also stop these services.\r\n\r\n" +
		"   World Wide Web Publishing Service\r\n   HTTP SSL\r\n\r\n"
	h := stageHost(t, "healthy", nil)
	out, _, rc := exec(t, h, `net stop iisadmin < NUL`, nil)
	if rc != 2 || out != list+"Do you want to continue this operation? (Y/N) [N]: \r\n" {
		t.Errorf("without /y: rc=%d %q", rc, out)
	}
	if out := mustRun(t, h, `sc query w3svc`, nil); !strings.Contains(out, "RUNNING") {
		t.Errorf("W3SVC stopped without an answer: %q", out)
	}
	out = mustRun(t, h, `net stop iisadmin /y`, nil)
	want := list + "The World Wide Web Publishing Service service is stopping.\r\nThe World Wide Web Publishing Service service was stopped successfully.\r\n\r\n" +
		"The HTTP SSL service is stopping.\r\nThe HTTP SSL service was stopped successfully.\r\n\r\n" +
		"The IIS Admin Service service is stopping.\r\nThe IIS Admin Service service was stopped successfully.\r\n\r\n"
	if out != want {
		t.Errorf("/y:\n%q\nwant\n%q", out, want)
	}
	// the engine starts W3SVC again, which starts IIS Admin
	if out := mustRun(t, h, `net start w3svc`, nil); out != "The World Wide Web Publishing Service service is starting.\r\nThe World Wide Web Publishing Service service was started successfully.\r\n\r\n" {
		t.Errorf("net start w3svc: %q", out)
	}
}

// TestPoolStartThroughWMI: the engine's pool start prints wmic's method-call lines.
func TestPoolStartThroughWMI(t *testing.T) {
	h := stageHost(t, "healthy", nil)
	mustRun(t, h, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool where "Name='W3SVC/AppPools/DefaultAppPool'" call Stop < NUL`, nil)
	if st := h.PoolState("DefaultAppPool"); st != 4 {
		t.Fatalf("pool state %d after Stop", st)
	}
	out := mustRun(t, h, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool where "Name='W3SVC/AppPools/DefaultAppPool'" call Start < NUL`, nil)
	le := "\r\r\n"
	want := `Executing (\\` + h.ComputerName() + `\ROOT\MicrosoftIISv2:IIsApplicationPool.Name="W3SVC/AppPools/DefaultAppPool")->Start()` + le +
		"Method execution successful." + le + "Out Parameters:" + le + "instance of __PARAMETERS" + le + "{" + le + "};" + le + le
	if out != want || h.PoolState("DefaultAppPool") != 2 {
		t.Errorf("Start: %q (state %d)\nwant %q", out, h.PoolState("DefaultAppPool"), want)
	}
}

// TestStdinWaiting: wmic and powershell -Command wait until their stdin ends, unless it comes
// from NUL or PowerShell has -InputFormat None.
func TestStdinWaiting(t *testing.T) {
	h := stageHost(t, "healthy", nil)
	for _, tc := range []struct {
		cmd   string
		waits bool
	}{
		{`wmic os get BuildNumber /format:list`, true},
		{`wmic os get BuildNumber /format:list < NUL`, false},
		{`powershell -NoProfile -Command "$s=[IO.File]::OpenRead('C:\WINDOWS\system32\cmd.exe');[Security.Cryptography.SHA256]::Create().ComputeHash($s)"`, true},
		{`powershell -NoProfile -InputFormat None -Command "$s=[IO.File]::OpenRead('C:\WINDOWS\system32\cmd.exe');[Security.Cryptography.SHA256]::Create().ComputeHash($s)"`, false},
		{`powershell -NoProfile -Command "$s=[IO.File]::OpenRead('C:\WINDOWS\system32\cmd.exe');[Security.Cryptography.SHA256]::Create().ComputeHash($s)" < NUL`, false},
	} {
		inR, inW := io.Pipe()
		out := &firstWrite{wrote: make(chan struct{})}
		done := make(chan int, 1)
		go func() { done <- h.Exec(context.Background(), tc.cmd, inR, out, io.Discard) }()
		// Both write their whole output at once, then end or wait on stdin.
		<-out.wrote
		if tc.waits {
			select {
			case rc := <-done:
				t.Errorf("%s: ended (rc=%d) with stdin open", tc.cmd, rc)
			default:
			}
			inW.Close()
			<-done
			continue
		}
		if rc := <-done; rc != 0 {
			t.Errorf("%s: rc=%d", tc.cmd, rc)
		}
		inW.Close()
	}
}

// firstWrite is a stdout that signals its first write.
type firstWrite struct {
	once  sync.Once
	wrote chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.wrote) })
	return len(p), nil
}

// TestNoPowerShellAndPendingReboot: the no-powershell host has no PowerShellEngine key; the
// pending-reboot host has a replacement waiting before any install, done by the next boot.
func TestNoPowerShellAndPendingReboot(t *testing.T) {
	h := stageHost(t, "no-powershell", nil)
	if _, e, rc := exec(t, h, `reg query "HKLM\SOFTWARE\Microsoft\PowerShell\1\PowerShellEngine" /v PowerShellVersion`, nil); rc != 1 || !strings.Contains(e, "unable to find") {
		t.Errorf("no-powershell: rc=%d %q", rc, e)
	}
	r := newRigOpts(t, "pending-reboot", 9, nil)
	out := mustRun(t, r.h, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations`, nil)
	if !strings.Contains(out, `PendingFileRenameOperations	REG_MULTI_SZ	\??\C:\WINDOWS\system32\mswsock.dll.new\0!\??\C:\WINDOWS\system32\mswsock.dll\0\0`) {
		t.Errorf("pending rename: %q", out)
	}
	if !reboot(t, r) {
		t.Fatal("host did not come back")
	}
	if v := r.h.FileVersion(`C:\WINDOWS\system32\mswsock.dll`); v != "5.2.3790.4318" {
		t.Errorf("mswsock.dll %q after the reboot", v)
	}
	if _, _, rc := exec(t, r.h, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations`, nil); rc != 1 {
		t.Errorf("the pending rename is still there after the reboot")
	}
}

// TestWarmUpLocal: the engine's warmup.vbs requests a site of the host by port and host header
// and prints the status.
func TestWarmUpLocal(t *testing.T) {
	h := stageHost(t, "healthy", func(o *win2003.Options) { o.Seed = 3 })
	mustRun(t, h, `mkdir `+work, nil)
	mustRun(t, h, `findstr "^" > "`+work+`\warmup.vbs"`, crlf(warmupScript))
	var intranet bool
	for _, b := range h.SiteBindings() {
		intranet = intranet || b.Host == "intranet"
	}
	if !intranet {
		t.Fatal("seed 3's healthy host has no intranet site")
	}
	for _, tc := range []struct{ port, host, want string }{{"80", "", "200"}, {"80", "intranet", "200"}} {
		if out := mustRun(t, h, `cscript //nologo "`+work+`\warmup.vbs" `+tc.port+` "`+tc.host+`"`, nil); out != tc.want+"\r\n" {
			t.Errorf("warm-up %s %q: %q", tc.port, tc.host, out)
		}
	}
	mustRun(t, h, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool call Stop < NUL`, nil)
	if out := mustRun(t, h, `cscript //nologo "`+work+`\warmup.vbs" 80 ""`, nil); out != "503\r\n" {
		t.Errorf("warm-up with the pools stopped: %q", out)
	}
}
