package win2003

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzExec runs arbitrary command lines: the interpreter must never panic (not even into Exec's
// recover) nor hang.
func FuzzExec(f *testing.F) {
	for _, s := range []string{
		`cmd /v:on /c "set "P=!SystemRoot:~2!"&set "P=!P:\=\\!"&echo !P!"`,
		`if exist C:\x (echo a) else (echo b) & echo c`,
		`echo %SystemRoot:~-3,2% %X:a=b% !Y! ^& "q" > nul 2>&1`,
		`wmic datafile where "Drive='C:' and (Path='\\x\\' or Name like '%.dll')" get Name /format:list`,
		`reg query HKLM\SOFTWARE /v`, `schtasks /create /tn "a b" /tr x /sc once /st 99:99:99`,
		`(echo a & (echo b) ) | findstr b`, `cmd /c ""C:\a b\c.exe" x"`, `set /p X=<C:\nope`,
		`sc query`, `net start`, `tasklist /fo csv`, `shutdown /a`, `certutil -decode a b`,
		`powershell -Command "[Convert]::FromBase64String"`, `if "%x%"=="" echo e`, `if 1 EQU 1 echo y`,
		`for /f "tokens=1,2* delims=, eol=" %a in ("x,y,z") do echo %a %b %c`, `for /l %i in (1,0,3) do echo`, "for /f \"usebackq\" %a in (`) do echo", `ping -n 5 127.0.0.1`, `set /a (1+2)*x/0`, `for %a in ("a b" c) do (echo %a)`, `echo(`, `goto :eof`, `call :x`, `exit`, `@`, `((((`, `))))`, `"`, `^`, `%`, `!`, `>`, `2>&`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var internal []string
		logf := func(format string, args ...any) {
			if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "internal error") {
				internal = append(internal, msg)
			}
		}
		// A fast scaled clock lets commands that wait (ping, shutdown, the installer) finish; the
		// deadline bounds a command that loops for long (for /l over a huge range).
		clock := NewClock(DefaultStart, 1e9)
		h, err := New(Spec{IIS: true, ServicePack: 2, PowerShell: true, WMICInstalled: true}, Options{Clock: clock, Logf: logf})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		h.Exec(ctx, line, bytes.NewReader([]byte("y\r\n")), &out, &errb)
		// Exec turns a panic into exit code 255 and an "internal error" log line.
		if len(internal) > 0 {
			t.Fatalf("%q: %v", line, internal)
		}
		if ctx.Err() != nil {
			t.Fatalf("%q did not finish in 5 s", line)
		}
	})
}
