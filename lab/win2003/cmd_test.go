package win2003

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

// testHost is a small fixed host: an affected SP2 host with one pool, wmic already installed.
func testHost(t *testing.T, mod func(*Spec)) *Host {
	t.Helper()
	return testHostQ(t, mod, nil)
}

// testHostQ is testHost with quirks (nil = the defaults).
func testHostQ(t *testing.T, mod func(*Spec), q *Quirks) *Host {
	t.Helper()
	s := Spec{
		Scenario: "test", Verdict: playbooks.Affected, ComputerName: "WEB01", ServicePack: 2, IIS: true,
		IISLevel: VersionSP1, Overrides: map[string]string{"w3core.dll": VersionKB982666},
		Hotfixes: []string{"KB982666"}, PowerShell: true, TZOffset: -300, WMICInstalled: true,
		BootAgo: 2 * time.Hour, DiskSize: 40 << 30, FreeDisk: 10 << 30,
	}
	if mod != nil {
		mod(&s)
	}
	h, err := New(s, Options{Clock: NewManualClock(DefaultStart), RequestInterval: -1, Quirks: q})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func run(h *Host, cmdline string, stdin string) (string, string, int) {
	var out, errb bytes.Buffer
	var rc int
	if stdin != "" {
		rc = h.Exec(context.Background(), cmdline, strings.NewReader(stdin), &out, &errb)
	} else {
		rc = h.Exec(context.Background(), cmdline, nil, &out, &errb)
	}
	return out.String(), errb.String(), rc
}

type cmdCase struct {
	name    string
	setup   []string
	cmd     string
	stdin   string
	wantOut string
	wantErr string
	wantRC  int
}

func runCases(t *testing.T, h func() *Host, cases []cmdCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := h()
			for _, s := range tc.setup {
				run(host, s, "")
			}
			out, errOut, rc := run(host, tc.cmd, tc.stdin)
			if out != tc.wantOut || errOut != tc.wantErr || rc != tc.wantRC {
				t.Errorf("%s\n got out=%q\n     err=%q rc=%d\nwant out=%q\n     err=%q rc=%d", tc.cmd, out, errOut, rc, tc.wantOut, tc.wantErr, tc.wantRC)
			}
		})
	}
}

func TestCmdShell(t *testing.T) {
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "unknown command", cmd: "foo /bar",
			wantErr: "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", wantRC: 9009},
		{name: "timeout is not on 2003", cmd: "timeout /t 5",
			wantErr: "'timeout' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", wantRC: 9009},
		{name: "echo keeps trailing space", cmd: "echo hi &echo there", wantOut: "hi \r\nthere\r\n"},
		{name: "echo dot", cmd: "echo.", wantOut: "\r\n"},
		{name: "percent vars", cmd: "echo %SystemRoot% %SystemDrive% %COMPUTERNAME% %PROCESSOR_ARCHITECTURE% %TEMP%",
			wantOut: "C:\\WINDOWS C: WEB01 x86 C:\\Documents and Settings\\Administrator\\Local Settings\\Temp\r\n"},
		{name: "undefined var stays on the command line", cmd: "echo %NOPE%", wantOut: "%NOPE%\r\n"},
		{name: "substring and replace", cmd: `cmd /v:on /c "set "P=!SystemRoot:~2!"&set "P=!P:\=\\!"&echo !P! %SystemRoot:~0,2%"`, wantOut: "\\\\WINDOWS C:\r\n"},
		{name: "errorlevel after failure", cmd: `cmd /v:on /c "foo 2>nul&echo rc=!ERRORLEVEL!"`, wantOut: "rc=9009\r\n", wantRC: 9009},
		{name: "percent errorlevel expands early", cmd: `foo 2>nul & echo %ERRORLEVEL%`, wantOut: "0\r\n", wantRC: 9009}, // echo leaves ERRORLEVEL alone
		{name: "and or", cmd: `foo 2>nul && echo yes || echo no`, wantOut: "no\r\n", wantRC: 9009},
		{name: "exit /b", cmd: `exit /b 7`, wantRC: 7},
		{name: "cmd /c exit", cmd: `cmd /c "exit /b 3"`, wantRC: 3},
		{name: "if exist", cmd: `if exist C:\WINDOWS\system32\inetsrv\w3core.dll (echo yes) else (echo no)`, wantOut: "yes\r\n"},
		{name: "if not exist", cmd: `if not exist C:\nope.txt echo missing`, wantOut: "missing\r\n"},
		{name: "redirect and type", setup: []string{`echo one> C:\x.txt`, `echo two>> C:\x.txt`}, cmd: `type C:\x.txt`, wantOut: "one\r\ntwo\r\n"},
		{name: "stderr to stdout", cmd: `foo 2>&1`, wantOut: "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", wantRC: 9009},
		{name: "stderr to nul", cmd: `type C:\nope.txt 2>nul`, wantRC: 1},
		{name: "type missing", cmd: `type C:\nope.txt`, wantErr: "The system cannot find the file specified.\r\n", wantRC: 1},
		{name: "del missing", cmd: `del C:\nope.txt`, wantErr: "Could Not Find C:\\nope.txt\r\n"},
		{name: "mkdir exists", cmd: `mkdir C:\WINDOWS`, wantErr: "A subdirectory or file C:\\WINDOWS already exists.\r\n", wantRC: 1},
		{name: "redirect to missing dir", cmd: `echo x > C:\nodir\x.txt`, wantErr: "The system cannot find the path specified.\r\n", wantRC: 1},
		{name: "findstr copies stdin", cmd: `findstr "^"`, stdin: "a\r\nb", wantOut: "a\r\nb"},
		{name: "findstr filters a file", setup: []string{`echo abc> C:\f.txt`, `echo xyz>> C:\f.txt`}, cmd: `findstr /i "XY" C:\f.txt`, wantOut: "xyz\r\n"},
		{name: "set and show", cmd: `cmd /c "set FOO=bar&set FOO"`, wantOut: "FOO=bar\r\n"},
		{name: "set /p from file", setup: []string{`echo 3010> C:\rc.txt`}, cmd: `cmd /v:on /c "set /p RC=<C:\rc.txt&echo [!RC!]"`, wantOut: "[3010]\r\n"},
		{name: "hostname", cmd: "hostname", wantOut: "WEB01\r\n"},
		{name: "missing batch file", cmd: `C:\t\b.cmd`, wantErr: "'C:\\t\\b.cmd' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", wantRC: 9009},
		{name: "ping", cmd: "ping -n 1 127.0.0.1", wantOut: "\r\nPinging 127.0.0.1 with 32 bytes of data:\r\n\r\nReply from 127.0.0.1: bytes=32 time<1ms TTL=128\r\n\r\nPing statistics for 127.0.0.1:\r\n    Packets: Sent = 1, Received = 1, Lost = 0 (0% loss),\r\nApproximate round trip times in milli-seconds:\r\n    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n"},
	})
}

func TestBatchFile(t *testing.T) {
	h := testHost(t, nil)
	script := "@echo off\r\nsetlocal EnableDelayedExpansion\r\nrem a comment\r\n:: another\r\nset \"X=%SystemDrive%\"\r\nif \"!X!\"==\"C:\" (\r\n  echo drive !X!\r\n) else (\r\n  echo other\r\n)\r\ngoto skip\r\necho skipped\r\n:skip\r\nfoo 2>nul\r\necho rc=!ERRORLEVEL!\r\nendlocal\r\nexit /b 4\r\necho never\r\n"
	run(h, `mkdir C:\t`, "")
	if _, e, rc := run(h, `findstr "^" > C:\t\b.cmd`, script); rc != 0 {
		t.Fatal(e)
	}
	out, errOut, rc := run(h, `C:\t\b.cmd > C:\t\out.txt`, "")
	if out != "" || errOut != "" || rc != 4 {
		t.Errorf("run: out=%q err=%q rc=%d", out, errOut, rc)
	}
	got, _, _ := run(h, `type C:\t\out.txt`, "")
	if got != "drive C:\r\nrc=9009\r\n" {
		t.Errorf("batch output %q", got)
	}
	// echo on: the prompt and each command are echoed
	run(h, `findstr "^" > C:\t\e.cmd`, "echo hi\r\n")
	got, _, _ = run(h, `C:\t\e.cmd`, "")
	if got != "\r\nC:\\Documents and Settings\\Administrator>echo hi\r\nhi\r\n" {
		t.Errorf("echo on: %q", got)
	}
}

func TestReg(t *testing.T) {
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		// checks/testdata/samples/reg-query-regexe-v3.txt: header, blank line, key, 4-space-indented values.
		{name: "query value", cmd: `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment" /v PROCESSOR_ARCHITECTURE`,
			wantOut: "! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment\r\n    PROCESSOR_ARCHITECTURE\tREG_SZ\tx86\r\n\r\n"},
		{name: "query key with subkeys", cmd: `reg query "HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3"`,
			wantOut: "! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\\KB982666\r\n"},
		{name: "dword", cmd: `reg query HKLM\SOFTWARE\Microsoft\InetStp /v MajorVersion`,
			wantOut: "! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp\r\n    MajorVersion\tREG_DWORD\t0x6\r\n\r\n"},
		{name: "missing key", cmd: `reg query "HKLM\SOFTWARE\Nope"`,
			wantErr: "Error:  The system was unable to find the specified registry key or value\r\n", wantRC: 1},
		{name: "missing value", cmd: `reg query HKLM\SOFTWARE\Microsoft\InetStp /v Nope`,
			wantErr: "Error:  The system was unable to find the specified registry key or value\r\n", wantRC: 1},
		{name: "add then query", setup: []string{`reg add HKLM\SOFTWARE\iisremedy /v Run /t REG_SZ /d 42 /f`},
			cmd:     `reg query HKLM\SOFTWARE\iisremedy /v Run`,
			wantOut: "! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\iisremedy\r\n    Run\tREG_SZ\t42\r\n\r\n"},
		{name: "add output", cmd: `reg add HKLM\SOFTWARE\iisremedy /v Run /d 1 /f`, wantOut: "\r\nThe operation completed successfully\r\n\r\n"},
		{name: "too few parameters", cmd: `reg query`, wantErr: "Error:  Too few command-line parameters\r\n", wantRC: 1},
		{name: "bad switch", cmd: `reg query HKLM\SOFTWARE /x`, wantErr: "Error:  Invalid command-line parameters\r\n", wantRC: 1},
		{name: "bad operation", cmd: `reg frob HKLM\SOFTWARE`, wantErr: "Error:  Bad operation.  Use /? for help\r\n", wantRC: 1},
		{name: "delete value", setup: []string{`reg add HKLM\SOFTWARE\iisremedy /v Run /d 1 /f`, `reg delete HKLM\SOFTWARE\iisremedy /v Run /f`},
			cmd: `reg query HKLM\SOFTWARE\iisremedy /v Run`, wantErr: "Error:  The system was unable to find the specified registry key or value\r\n", wantRC: 1},
	})
}

func TestScNet(t *testing.T) {
	running := "\r\nSERVICE_NAME: w3svc\r\n        TYPE               : 20  WIN32_SHARE_PROCESS  \r\n        STATE              : 4  RUNNING \r\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"
	stopped := "\r\nSERVICE_NAME: w3svc\r\n        TYPE               : 20  WIN32_SHARE_PROCESS  \r\n        STATE              : 1  STOPPED \r\n                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "query running", cmd: "sc query w3svc", wantOut: running},
		{name: "query stopped", setup: []string{"net stop w3svc"}, cmd: "sc query w3svc", wantOut: stopped},
		{name: "query missing", cmd: "sc query nosuch", wantOut: "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", wantRC: 1060},
		{name: "start running", cmd: "sc start w3svc", wantOut: "[SC] StartService FAILED 1056:\r\n\r\nAn instance of the service is already running.\r\n\r\n", wantRC: 1056},
		{name: "net stop", cmd: "net stop w3svc", wantOut: "The World Wide Web Publishing Service service is stopping.\r\nThe World Wide Web Publishing Service service was stopped successfully.\r\n\r\n"},
		{name: "net start started", cmd: "net start w3svc", wantErr: "The requested service has already been started.\r\n\r\nMore help is available by typing NET HELPMSG 2182.\r\n\r\n", wantRC: 2},
	})
	// without the trailing blanks
	q := DefaultQuirks()
	q.ScTrailingBlanks = false
	if out, _, _ := run(testHostQ(t, nil, &q), "sc query w3svc", ""); out != strings.NewReplacer("PROCESS  \r\n", "PROCESS\r\n", "RUNNING \r\n", "RUNNING\r\n").Replace(running) {
		t.Errorf("sc query without trailing blanks: %q", out)
	}
	// no-iis: the service does not exist
	h := testHost(t, func(s *Spec) { s.IIS = false })
	if _, _, rc := run(h, "sc query w3svc", ""); rc != 1060 {
		t.Errorf("sc query w3svc on a host without IIS: rc=%d, want 1060", rc)
	}
}

func TestScSpanish(t *testing.T) {
	h := testHost(t, func(s *Spec) { s.Language = "0C0A" })
	out, _, rc := run(h, "sc query w3svc", "")
	// CP 850: Ó is 0xE0 (labels localized, values not; unconfirmed translation)
	want := "\r\nNOMBRE_SERVICIO: w3svc\r\n        TIPO               : 20  WIN32_SHARE_PROCESS  \r\n        ESTADO             : 4  RUNNING \r\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n        C\xe0D_SALIDA_WIN32   : 0  (0x0)\r\n        C\xe0D_SALIDA_SERVICIO: 0  (0x0)\r\n        PUNTO_COMPROB.     : 0x0\r\n        INDICACI\xe0N_INICIO  : 0x0\r\n"
	if out != want || rc != 0 {
		t.Errorf("got %q rc=%d\nwant %q", out, rc, want)
	}
	_, errOut, rc := run(h, "foo", "")
	if errOut != "'foo' no se reconoce como un comando interno o externo,\r\nprograma o archivo por lotes ejecutable.\r\n" || rc != 9009 {
		t.Errorf("unknown command on a Spanish host: %q %d", errOut, rc)
	}
}

func TestWmic(t *testing.T) {
	le := "\r\r\n"
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "os list", cmd: "wmic os get LocalDateTime,LastBootUpTime /format:list",
			// properties in alphabetical order; WMI datetimes with minute offsets
			wantOut: le + le + "LastBootUpTime=20100621020000.500000-300" + le + "LocalDateTime=20100621040000.000000-300" + le + le + le},
		{name: "datafile by name", cmd: `wmic datafile where "Name='C:\\WINDOWS\\system32\\inetsrv\\iisutil.dll'" get Name,Version /format:list`,
			wantOut: le + le + `Name=c:\windows\system32\inetsrv\iisutil.dll` + le + "Version=6.0.3790.1830" + le + le + le},
		{name: "datafile table", cmd: `wmic datafile where "Drive='C:' and Path='\\WINDOWS\\system32\\inetsrv\\' and FileName='w3core'" get Version,FileName`,
			wantOut: "FileName  Version        " + le + "w3core    6.0.3790.4693  " + le + le},
		{name: "logicaldisk", cmd: `wmic logicaldisk where "DeviceID='C:'" get FreeSpace,Size /format:list`,
			wantOut: le + le + "FreeSpace=10737418240" + le + "Size=42949672960" + le + le + le},
		{name: "no instances", cmd: `wmic ntevent where "EventCode=4242" get EventCode`, wantErr: "No Instance(s) Available.\r\n"},
		{name: "invalid class", cmd: `wmic path Win32_Nope get Name`, wantErr: "ERROR:\r\nCode = 0x80041010\r\nDescription = Invalid class \r\nFacility = WMI\r\n\r\n", wantRC: -2147217392},
		{name: "invalid query", cmd: `wmic os where "Nope='1'" get Caption`, wantErr: "ERROR:\r\nCode = 0x80041017\r\nDescription = Invalid query \r\nFacility = WMI\r\n\r\n", wantRC: -2147217385},
		{name: "alias not found", cmd: `wmic nope get x`, wantErr: "nope - Alias not found.\r\n", wantRC: 44135},
		{name: "pool settings", cmd: `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolAutoStart,AppPoolState,Name /format:list`,
			wantOut: le + le + "AppPoolAutoStart=TRUE" + le + "AppPoolState=2" + le + "Name=W3SVC/AppPools/DefaultAppPool" + le + le + le},
		{name: "pool stop", cmd: `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPool where "Name='W3SVC/AppPools/DefaultAppPool'" call Stop`,
			wantOut: `Executing (\\WEB01\ROOT\MicrosoftIISv2:IIsApplicationPool.Name="W3SVC/AppPools/DefaultAppPool")->Stop()` + le + "Method execution successful." + le + "Out Parameters:" + le + "instance of __PARAMETERS" + le + "{" + le + "};" + le + le},
		{name: "web server", cmd: `wmic /namespace:\\root\MicrosoftIISv2 path IIsWebServer get Name,ServerState`,
			wantOut: "Name     ServerState  " + le + "W3SVC/1  2            " + le + le},
		{name: "qfe", cmd: `wmic qfe where "HotFixID='KB982666'" get HotFixID,ServicePackInEffect /format:list`,
			wantOut: le + le + "HotFixID=KB982666" + le + "ServicePackInEffect=SP3" + le + le + le},
	})
	h := testHost(t, func(s *Spec) { s.IIS = false })
	_, e, rc := run(h, `wmic /namespace:\\root\MicrosoftIISv2 path IIsApplicationPoolSetting get Name`, "")
	if e != "ERROR:\r\nCode = 0x8004100e\r\nDescription = Invalid namespace \r\nFacility = WMI\r\n\r\n" || rc != -2147217394 {
		t.Errorf("no IIS namespace: %q %d", e, rc)
	}
}

func TestWmicEventsAndEncoding(t *testing.T) {
	h := testHost(t, func(s *Spec) { s.WMICInstalled = false })
	// a crash: the warm-up request makes one worker start and die
	if st := h.Request(80); st != 503 {
		t.Fatalf("request on a mismatched host: %d, want 503", st)
	}
	out, _, _ := run(h, `wmic ntevent where "Logfile='System' and SourceName='W3SVC' and (EventCode=1002 or EventCode=1009)" get EventCode,InsertionStrings,TimeGenerated /format:list`, "")
	// first run: the banner; then one 1009 with {pool, pid, ffffffff}
	pid := h.Events("W3SVC")[0].Strings[1]
	want := "Please wait while WMIC is being installed.\r\r\n\r\r\nEventCode=1009\r\r\nInsertionStrings={\"DefaultAppPool\",\"" + pid + "\",\"ffffffff\"}\r\r\nTimeGenerated=20100621090000.000000-000\r\r\n\r\r\n\r\r\n"
	if out != want {
		t.Errorf("events:\n got %q\nwant %q", out, want)
	}
	// to a file: UTF-16LE with a BOM (the banner was shown already)
	run(h, `wmic os get BuildNumber /format:list > C:\o.txt`, "")
	data, _, _ := run(h, `type C:\o.txt`, "") // type converts UTF-16 with a BOM to text
	if data != "\r\r\n\r\r\nBuildNumber=3790\r\r\n\r\r\n\r\r\n" {
		t.Errorf("type of a UTF-16 file: %q", data)
	}
	h.mu.Lock()
	raw := string(h.fs.file(`C:\o.txt`).data())
	h.mu.Unlock()
	if !strings.HasPrefix(raw, "\xff\xfe\r\x00\r\x00\n\x00") {
		t.Errorf("file bytes %q", raw)
	}
	// first run to a file: the banner replaces the BOM
	h2 := testHost(t, func(s *Spec) { s.WMICInstalled = false })
	run(h2, `wmic os get BuildNumber /format:list > C:\o.txt`, "")
	h2.mu.Lock()
	raw = string(h2.fs.file(`C:\o.txt`).data())
	h2.mu.Unlock()
	if !strings.HasPrefix(raw, "Please wait while WMIC is being installed.\r\x00\r\x00\n\x00") {
		t.Errorf("first-run file bytes %q", raw)
	}
}

func TestSchtasksShutdownTasklist(t *testing.T) {
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "create as SYSTEM", cmd: `schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00:00 /ru SYSTEM`,
			wantOut: "INFO: The task will be created under user name (\"NT AUTHORITY\\SYSTEM\").\r\nSUCCESS: The scheduled task \"t1\" has successfully been created.\r\n"},
		{name: "HH:MM refused", cmd: `schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00 /ru SYSTEM`,
			wantErr: "ERROR: Invalid Start Time.\r\n", wantRC: 1},
		{name: "vista switch refused", cmd: `schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00:00 /ru SYSTEM /rl HIGHEST`,
			wantErr: "ERROR: Invalid argument/option - '/rl'.\r\nType \"SCHTASKS /CREATE /?\" for usage.\r\n", wantRC: 1},
		{name: "query", setup: []string{`schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00:00 /ru SYSTEM`}, cmd: `schtasks /query`,
			wantOut: "\r\nTaskName                             Next Run Time            Status         \r\n==================================== ======================== ===============\r\nt1                                   11:00:00 PM , 6/21/2010                 \r\n"},
		{name: "query verb optional", setup: []string{`schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00:00 /ru SYSTEM`}, cmd: `schtasks /fo csv`,
			wantOut: "\"TaskName\",\"Next Run Time\",\"Status\"\r\n\"t1\",\"11:00:00 PM , 6/21/2010\",\"\"\r\n"},
		{name: "query /tn refused", cmd: `schtasks /query /tn t1`, wantErr: "ERROR: Invalid argument/option - '/tn'.\r\nType \"SCHTASKS /QUERY /?\" for usage.\r\n", wantRC: 1},
		{name: "run missing", cmd: `schtasks /run /tn nope`, wantErr: "ERROR: The system cannot find the file specified.\r\n", wantRC: 1},
		{name: "delete", setup: []string{`schtasks /create /tn t1 /tr "C:\x.exe" /sc once /st 23:00:00 /ru SYSTEM`}, cmd: `schtasks /delete /tn t1 /f`,
			wantOut: "SUCCESS: The scheduled task \"t1\" was successfully deleted.\r\n"},
		{name: "shutdown abort none", cmd: `shutdown /a`, wantErr: "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n", wantRC: 1116},
		{name: "shutdown twice", setup: []string{`shutdown /r /t 60`}, cmd: `shutdown /r /t 60`, wantErr: "A system shutdown is in progress.(1115)\r\n", wantRC: 1115},
		{name: "shutdown bad /t", cmd: `shutdown /r /t 601`, wantErr: "Usage: shutdown [-i | -l | -s | -r | -a] [-f] [-m \\\\computername] [-t xx] [-c \"comment\"] [-d up:xx:yy]\r\n", wantRC: 1},
		{name: "tasklist none", cmd: `tasklist /fi "imagename eq w3wp.exe"`, wantOut: "INFO: No tasks running with the specified criteria.\r\n"},
		{name: "cscript unknown script", setup: []string{`echo WScript.Echo 1> C:\a.vbs`}, cmd: `cscript //nologo C:\a.vbs`,
			wantErr: "C:\\a.vbs(1, 1) Microsoft VBScript runtime error: ActiveX component can't create object\r\n\r\n", wantRC: 1},
		{name: "powershell unknown", cmd: `powershell -NoProfile -Command "Get-Foo"`,
			wantErr: "The term 'Get-Foo' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\r\n", wantRC: 1},
		// docs/facts.md §5.10: SHA-1 only by default (Quirks.CertutilHashfile), no algorithm argument
		{name: "certutil hashfile takes no algorithm", cmd: `certutil -hashfile C:\x SHA256`, wantOut: "CertUtil: -hashfile command FAILED: 0x80070057 (WIN32: 87)\r\nCertUtil: The parameter is incorrect.\r\n", wantRC: -2147024809},
		{name: "certutil hashfile sha1", setup: []string{`echo abc> C:\x`}, cmd: `certutil -hashfile C:\x`,
			wantOut: "SHA1 hash of file C:\\x:\r\n" + spacedHex(fmt.Sprintf("%x", sha1.Sum([]byte("abc\r\n")))) + "\r\nCertUtil: -hashfile command completed successfully.\r\n"},
	})
}

func TestCmdQuoteRules(t *testing.T) {
	h := testHost(t, nil)
	run(h, `mkdir "C:\a b"`, "")
	run(h, `findstr "^" > "C:\a b\x.cmd"`, "@echo ran %1\r\n")
	for _, c := range []struct{ cmd, want string }{
		{`cmd /c "C:\a b\x.cmd"`, "ran \r\n"},          // rule 1: quotes kept around an existing file
		{`cmd /c ""C:\a b\x.cmd" arg"`, "ran arg\r\n"}, // rule 2: first and last quote stripped
		{`schtasks /create /tn q /tr "\"C:\a b\x.cmd\"" /sc once /st 23:00:00 /ru SYSTEM`, "INFO: The task will be created under user name (\"NT AUTHORITY\\SYSTEM\").\r\nSUCCESS: The scheduled task \"q\" has successfully been created.\r\n"},
	} {
		if out, e, _ := run(h, c.cmd, ""); out != c.want {
			t.Errorf("%s: got %q (%q), want %q", c.cmd, out, e, c.want)
		}
	}
}

func TestIisresetIisapp(t *testing.T) {
	h := testHost(t, func(s *Spec) { s.Overrides = nil; s.IISLevel = VersionSP2 })
	if out, _, rc := run(h, "iisreset /status", ""); out != "Status for IIS Admin Service ( IISADMIN ) : Running\r\nStatus for World Wide Web Publishing Service ( W3SVC ) : Running\r\n" || rc != 0 {
		t.Errorf("iisreset /status: %q %d", out, rc)
	}
	// Texts and exit codes from IIsApp.vbs's source (docs/facts.md §4.2).
	iisapp := `cscript //nologo C:\WINDOWS\system32\iisapp.vbs`
	for _, c := range []struct {
		args, want string
		rc         int
	}{
		{"", "Error - no results\r\n", 2},
		{" /a DefaultAppPool", "The following W3WP.exe processes are serving AppPool: DefaultAppPool\r\nError - no w3wp.exe processes are running at this time\r\n", 1},
		{" /p 4", "ERROR: ProcessId specified is NOT an instance of W3WP.exe - EXITING\r\n", -2147024883},
		{" /p 99999", "Process ID 99999 not found.\r\n", -2147024894},
		{" /p x", "ERROR: PID is not valid\r\n", -2147024809},
		{" /a", "Not enough parameters.\r\nType IIsApp /? for help.\r\n", 1},
		{" /a Nope /r", "Connecting to server ...Done.\r\nApplication pool 'Nope' does not exist.\r\n", -2147024893},
	} {
		if out, _, rc := run(h, iisapp+c.args, ""); out != c.want || rc != c.rc {
			t.Errorf("iisapp%s without workers:\n got %q rc=%d\nwant %q rc=%d", c.args, out, rc, c.want, c.rc)
		}
	}
	if st := h.Request(80); st != 200 {
		t.Fatalf("request: %d", st)
	}
	h.mu.Lock()
	pid := strconv.Itoa(h.pools[0].workerPID)
	h.mu.Unlock()
	for _, c := range []struct{ args, want string }{
		{"", "W3WP.exe PID: " + pid + "   AppPoolId: DefaultAppPool\r\n"}, // the capture in docs/facts.md §4.2
		{" /a DefaultAppPool", "The following W3WP.exe processes are serving AppPool: DefaultAppPool\r\nW3WP.exe PID: " + pid + "\r\n"},
		{" /p " + pid, "W3WP.exe PID: " + pid + "   AppPoolId: DefaultAppPool\r\n"},
		{" /p " + pid + " /r", "Connecting to server ...Done.\r\nApplication pool 'DefaultAppPool' recycled successfully.\r\n"}, // the sample
		{" /a DefaultAppPool /r", "Connecting to server ...Done.\r\nApplication pool 'DefaultAppPool' recycled successfully.\r\n"},
	} {
		if out, _, rc := run(h, iisapp+c.args, ""); out != c.want || rc != 0 {
			t.Errorf("iisapp%s:\n got %q rc=%d\nwant %q rc=0", c.args, out, rc, c.want)
		}
	}
	if h.PoolState("DefaultAppPool") != 2 {
		t.Errorf("pool state %d after a recycle, want 2", h.PoolState("DefaultAppPool"))
	}
	// without //nologo cscript prints the WSH 5.6 banner first
	if out, _, _ := run(h, `cscript C:\WINDOWS\system32\iisapp.vbs /a Nope /r`, ""); !strings.HasPrefix(out, "Microsoft (R) Windows Script Host Version 5.6\r\nCopyright (C) Microsoft Corporation 1996-2001. All rights reserved.\r\n\r\nConnecting") {
		t.Errorf("cscript banner: %q", out)
	}
	if out, _, rc := run(h, "iisreset /restart", ""); rc != 0 || out != "\r\nAttempting stop...\r\nInternet services successfully stopped\r\nAttempting start...\r\nInternet services successfully restarted\r\n\r\n" {
		t.Errorf("iisreset: %q %d", out, rc)
	}
	if h.PoolState("DefaultAppPool") != 2 {
		t.Errorf("pool state %d after iisreset, want 2", h.PoolState("DefaultAppPool"))
	}
}

func TestFormatsAgainstSamples(t *testing.T) {
	// checks/testdata/samples/wmi-datetime-sample.txt
	if got := WMIDateTime(time.Date(2001, 12, 24, 11, 30, 47, 0, time.FixedZone("", -480*60))); got != "20011224113047.000000-480" {
		t.Errorf("WMIDateTime = %s", got)
	}
	// docs/facts.md §3.3: insertion strings {pool, pid, exit code without 0x}
	if got := FormatInsertionStrings([]string{"DefaultAppPool", "1234", "ffffffff"}); got != `{"DefaultAppPool","1234","ffffffff"}` {
		t.Errorf("FormatInsertionStrings = %s", got)
	}
	// checks/testdata/samples/w3svc-1009-event-kb982666.txt (one line) and docs/facts.md §3.2's 1002 template
	h := testHost(t, nil)
	h.Request(80)
	pid := h.Events("W3SVC")[0].Strings[1]
	out, _, _ := run(h, `wmic ntevent where "SourceName='W3SVC'" get Message,Type /format:list`, "")
	want := "\r\r\n\r\r\nMessage=A process serving application pool 'DefaultAppPool' terminated unexpectedly. The process id was '" + pid + "'. The process exit code was '0xffffffff'.\r\r\nType=warning\r\r\n\r\r\n\r\r\n"
	if out != want {
		t.Errorf("1009 message:\n got %q\nwant %q", out, want)
	}
	for i := 0; i < 4; i++ {
		h.Request(80)
	}
	out, _, _ = run(h, `wmic ntevent where "EventCode=1002" get Message /format:list`, "")
	if !strings.Contains(out, "Message=Application pool 'DefaultAppPool' is being automatically disabled due to a series of failures in the process (es) serving that application pool.") {
		t.Errorf("1002 message: %q", out)
	}
	if h.PoolState("DefaultAppPool") != 4 {
		t.Errorf("pool not disabled after 5 crashes: state %d", h.PoolState("DefaultAppPool"))
	}
}

func TestSetAAndFor(t *testing.T) {
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "set /a prints on the command line", cmd: `set /a 2+3*4`, wantOut: "14"},
		{name: "set /a assigns", cmd: `cmd /v:on /c "set /a N=5 >nul&set /a N+=2 >nul&echo !N!"`, wantOut: "7\r\n"},
		{name: "for list", cmd: `for %a in (x y) do echo %a`, wantOut: "x\r\ny\r\n"},
		{name: "for /l", cmd: `for /l %i in (1,1,3) do echo %i`, wantOut: "1\r\n2\r\n3\r\n"},
		{name: "for /f over a command", cmd: `for /f "tokens=2 delims==" %a in ('wmic os get BuildNumber /value') do echo [%a]`, wantOut: "[3790\r]\r\n"}, // wmic's CR CR LF leaves a CR
		{name: "for /f over a file", setup: []string{`echo 3010> C:\rc.txt`}, cmd: `for /f %a in (C:\rc.txt) do exit /b %a`, wantRC: 3010},
		{name: "for /f tokens star", cmd: `for /f "tokens=1,*" %a in ("one two three") do echo %b`, wantOut: "two three\r\n"},
	})
	h := testHost(t, nil)
	run(h, `mkdir C:\t`, "")
	run(h, `findstr "^" > C:\t\f.cmd`, "@echo off\r\nset n=0\r\nfor /f \"skip=1 tokens=1\" %%p in ('wmic /namespace:\\\\root\\MicrosoftIISv2 path IIsApplicationPoolSetting get AppPoolState') do (\r\n  set /a n+=1\r\n  echo state %%p\r\n)\r\necho %n%\r\n")
	out, e, _ := run(h, `C:\t\f.cmd`, "")
	if out != "state 2\r\nstate \r\r\n2\r\n" { // the CR-only line of wmic's output makes a second round
		t.Errorf("batch for /f: %q %q", out, e)
	}
}

func TestDir(t *testing.T) {
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "dir /b", setup: []string{`mkdir C:\s\sub`, `echo hello> C:\s\a.txt`}, cmd: `dir /b C:\s`, wantOut: "sub\r\na.txt\r\n"},
		{name: "dir", setup: []string{`mkdir C:\s`, `echo hello> C:\s\a.txt`}, cmd: `dir C:\s`,
			wantOut: " Volume in drive C has no label.\r\n Volume Serial Number is A4C3-E1F2\r\n\r\n Directory of C:\\s\r\n\r\n" +
				"06/21/2010  04:00 AM    <DIR>          .\r\n06/21/2010  04:00 AM    <DIR>          ..\r\n" +
				"06/21/2010  04:00 AM                 7 a.txt\r\n               1 File(s)              7 bytes\r\n               2 Dir(s)  10,737,418,233 bytes free\r\n"},
		{name: "dir missing", cmd: `dir C:\nope`, wantErr: "File Not Found\r\n", wantRC: 1},
	})
}

func TestSchtasksRunEndAndNextRun(t *testing.T) {
	clock := NewManualClock(DefaultStart)
	h, err := New(Spec{ComputerName: "WEB01", IIS: true, ServicePack: 2, TZOffset: -300, WMICInstalled: true}, Options{Clock: clock, RequestInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	run(h, `mkdir C:\t`, "")
	run(h, `findstr "^" > C:\t\slow.cmd`, "@ping -n 3600 127.0.0.1 > nul\r\n")
	// /sd sets the date of a ONCE task; /z (delete when done) is a Server 2003 switch without a value
	out, e, rc := run(h, `schtasks /create /tn slow /tr C:\t\slow.cmd /sc once /sd 06/25/2010 /st 08:15:00 /ru SYSTEM /z`, "")
	if rc != 0 {
		t.Fatalf("create: %q %q %d", out, e, rc)
	}
	want := "\r\nTaskName                             Next Run Time            Status         \r\n==================================== ======================== ===============\r\nslow                                 8:15:00 AM , 6/25/2010                  \r\n"
	if out, _, _ := run(h, "schtasks", ""); out != want {
		t.Errorf("query:\n got %q\nwant %q", out, want)
	}
	if out, _, rc := run(h, `schtasks /run /tn slow`, ""); out != "SUCCESS: Attempted to run the scheduled task \"slow\".\r\n" || rc != 0 {
		t.Errorf("run: %q %d", out, rc)
	}
	if out, _, rc := run(h, `schtasks /end /tn slow`, ""); out != "SUCCESS: The scheduled task \"slow\" has been terminated successfully.\r\n" || rc != 0 {
		t.Errorf("end: %q %d", out, rc)
	}
	// ended: a second /end finds nothing running
	if _, e, rc := run(h, `schtasks /end /tn slow`, ""); e != "ERROR: The scheduled task \"slow\" is not running.\r\n" || rc != 1 {
		t.Errorf("second end: %q %d", e, rc)
	}
}

func TestShutdownReasonAndForEdges(t *testing.T) {
	h := testHost(t, nil)
	// /d p:2:17 is recorded in event 1074 as planned | major<<16 | minor
	if _, e, rc := run(h, `shutdown /r /t 600 /d p:2:17 /c "SP2 re-applied"`, ""); rc != 0 {
		t.Fatalf("shutdown: %q %d", e, rc)
	}
	var ev *Event
	for _, e := range h.Events("USER32") {
		if e.Code == 1074 {
			ev = &e
		}
	}
	if ev == nil || strings.Join(ev.Strings, "|") != "shutdown.exe|WEB01||0x80020011|restart|SP2 re-applied" {
		t.Errorf("1074 event: %+v", ev)
	}
	if _, _, rc := run(h, `shutdown /a`, ""); rc != 0 {
		t.Errorf("shutdown /a rc=%d", rc)
	}
	usage := "Usage: shutdown [-i | -l | -s | -r | -a] [-f] [-m \\\\computername] [-t xx] [-c \"comment\"] [-d up:xx:yy]\r\n"
	runCases(t, func() *Host { return testHost(t, nil) }, []cmdCase{
		{name: "bad reason major", cmd: `shutdown /r /d p:256:1`, wantErr: usage, wantRC: 1},
		{name: "bad reason flag", cmd: `shutdown /r /d x:2:1`, wantErr: usage, wantRC: 1},
		{name: "sc stop usage", cmd: `sc stop`, wantOut: "DESCRIPTION:\r\n        Sends a STOP control request to a service.\r\n", wantRC: 1},
	})
}

// TestNoInternalErrors runs inputs that once panicked inside the interpreter (Exec's recover turned
// them into exit code 255): each must now run without reaching the recover.
func TestNoInternalErrors(t *testing.T) {
	for _, line := range []string{
		"for /f \"usebackq\" %a in (`) do echo [%a]", // a one-character command set
	} {
		var internal []string
		h, err := New(Spec{IIS: true, ServicePack: 2}, Options{Clock: NewManualClock(DefaultStart),
			Logf: func(format string, args ...any) {
				if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "internal error") {
					internal = append(internal, msg)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, rc := run(h, line, ""); rc == 255 || len(internal) > 0 {
			t.Errorf("%s: rc=%d log %q", line, rc, internal)
		}
	}
}

// repoSample reads a saved real output from checks/testdata/samples,
// without its provenance comment lines, with LF line ends.
func repoSample(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "checks", "testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestOutputsMatchRepoSamples holds the lab's texts to the saved real outputs themselves.
func TestOutputsMatchRepoSamples(t *testing.T) {
	// W3SVC 1009: the description (wrapped by the publisher) equals the lab's rendering of the same
	// insertion strings.
	for _, c := range []struct {
		file string
		ins  []string
	}{
		{"w3svc-1009-event-kb982666.txt", []string{"DefaultAppPool", "1234", "ffffffff"}},
		{"w3svc-1009-event-exit-0x80.txt", []string{"DefaultAppPool", "3908", "80"}},
	} {
		lines := repoSample(t, c.file)
		var desc []string
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "A process serving") {
				desc = lines[i:]
				break
			}
		}
		var words []string
		for _, l := range desc {
			words = append(words, strings.Fields(l)...)
		}
		want := strings.Join(words, " ")
		if got := expandMessage(locales["0409"].text("1009"), c.ins); got != want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, want)
		}
	}
	// reg.exe 3.0: header, blank line, key, four-space indent, name TYPE data (separators: any
	// whitespace in the sample, TAB in the lab — RegSeparator).
	lines := repoSample(t, "reg-query-regexe-v3.txt")
	h := testHost(t, nil)
	h.mu.Lock()
	h.reg.set(`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion`, "DevicePath", "REG_EXPAND_SZ", `%SystemRoot%\inf`)
	h.mu.Unlock()
	out, _, rc := run(h, `reg query HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion /v DevicePath`, "")
	got := strings.Split(out, "\r\n")
	if rc != 0 || len(got) < 4 || got[0] != lines[0] || got[1] != lines[1] || got[2] != lines[2] ||
		!strings.HasPrefix(got[3], "    ") || strings.Join(strings.Fields(got[3]), " ") != strings.Join(strings.Fields(lines[3]), " ") {
		t.Errorf("reg query:\n got %q\nwant lines %q", got, lines)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPingPacing: ping -n N answers at once, then once a simulated second (its use as a wait).
// The test moves the manual clock a second at a time, each time once ping waits on it.
func TestPingPacing(t *testing.T) {
	clock := NewManualClock(DefaultStart)
	h, err := New(Spec{ComputerName: "WEB01", IIS: true, ServicePack: 2}, Options{Clock: clock, RequestInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	before := clock.Now()
	var out syncBuffer
	rc := make(chan int, 1)
	go func() { rc <- h.Exec(context.Background(), "ping -n 3 127.0.0.1", nil, &out, io.Discard) }()
	reply := "Reply from 127.0.0.1: bytes=32 time<1ms TTL=128\r\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only a broken ping waits that long
	defer cancel()
	for replies := 1; replies < 3; replies++ {
		if !clock.WaitPending(ctx, 1) {
			t.Fatalf("ping did not wait after reply %d", replies)
		}
		if got := strings.Count(out.String(), reply); got != replies {
			t.Fatalf("%d replies after %v of simulated time, want %d", got, clock.Now().Sub(before), replies)
		}
		clock.Advance(time.Second)
	}
	want := "\r\nPinging 127.0.0.1 with 32 bytes of data:\r\n\r\n" + reply + reply + reply +
		"\r\nPing statistics for 127.0.0.1:\r\n    Packets: Sent = 3, Received = 3, Lost = 0 (0% loss),\r\nApproximate round trip times in milli-seconds:\r\n    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n"
	if code := <-rc; out.String() != want || code != 0 {
		t.Errorf("ping -n 3:\n got %q rc=%d\nwant %q", out.String(), code, want)
	}
	if d := clock.Now().Sub(before); d != 2*time.Second {
		t.Errorf("ping -n 3 took %v of simulated time, want 2s", d)
	}
}
