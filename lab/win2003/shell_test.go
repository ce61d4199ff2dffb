package win2003_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/iisremedy/iisremedy/remote"
)

// Commands over real WinRM (lab/wsman and iisremedy's own client, remote): the shell's quotas
// and a push cut short.

// shellRig serves the rig's host over WinRM (NTLM with encryption, as a default WinRM 2.0) and
// returns a session of the remote client.
func shellRig(t *testing.T, r *rig, mod func(*wsman.Server)) *remote.Session {
	t.Helper()
	// The manual clock jumps while requests are on their way, which a shell's idle timer would
	// count as idleness: the shells here do not idle out.
	srv := &wsman.Server{Host: r.h, Hostname: r.h.ComputerName(), Password: "Passw0rd!", Clock: r.clock, IdleTimeout: 1000 * time.Hour}
	if mod != nil {
		mod(srv)
	}
	ts := httptest.NewUnstartedServer(srv)
	srv.Configure(ts.Config)
	ts.Start()
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close(); srv.Reset() })
	host, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	s, err := remote.Dial(context.Background(), remote.Target{Host: host, Port: p, User: "Administrator", Password: "Passw0rd!"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestInstallerInShellHitsQuotas: the SP2 installer run inside a WinRM shell unpacks, then its
// processes pass MaxMemoryPerShellMB: update.exe gives up (1603, svcpack.log says why) before
// replacing a file. With a large quota the same run goes through: the quota is the cause.
func TestInstallerInShellHitsQuotas(t *testing.T) {
	img := win2003.NewInstallerImage("x86", "0409", 0)
	for _, tc := range []struct {
		memMB int
		code  int
	}{{0, 1603}, {1024, 3010}} {
		r := newRigOpts(t, "affected", 10, nil)
		s := shellRig(t, r, func(srv *wsman.Server) { srv.MaxMemoryPerShellMB = tc.memMB })
		exe := work + `\` + img.SHA256 + ".exe"
		mustRun(t, r.h, `mkdir `+work, nil)
		mustRun(t, r.h, `findstr "^" > `+work+`\i.b64`, pushLines(img.Open(), 48<<10))
		mustRun(t, r.h, `certutil -f -decode `+work+`\i.b64 "`+exe+`"`, nil)
		type result struct {
			res remote.Result
			err error
		}
		done := make(chan result, 1)
		pending := r.clock.Pending()
		go func() {
			res, err := s.Run(context.Background(), `"`+exe+`" /quiet /norestart`)
			done <- result{res, err}
		}()
		r.waitPending(t, pending+1, "the installer's extraction")
		r.clock.AdvanceToNext()
		if tc.code == 3010 {
			r.waitPending(t, pending+1, "the installation")
			r.clock.AdvanceToNext()
		}
		got := <-done
		if got.err != nil || got.res.ExitCode != tc.code {
			t.Fatalf("MaxMemoryPerShellMB %d: exit %d, %v; want %d", tc.memMB, got.res.ExitCode, got.err, tc.code)
		}
		runs := r.h.InstallerRuns()
		if len(runs) != 1 || !runs[0].InShell || runs[0].ExitCode != tc.code || runs[0].User != "Administrator" {
			t.Errorf("installer runs %+v", runs)
		}
		v := r.h.FileVersion(`C:\WINDOWS\system32\inetsrv\iisutil.dll`)
		pendingOut, _, _ := exec(t, r.h, `reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations`, nil)
		if tc.code == 1603 {
			log := mustRun(t, r.h, `type C:\WINDOWS\svcpack.log`, nil)
			if !strings.Contains(log, ": The paging file is too small for this operation to complete.\r\n") || !strings.Contains(log, "masked to 0x643") {
				t.Errorf("svcpack.log after the quota: %q", log)
			}
			if v != win2003.VersionSP1 && v != win2003.VersionRTM || strings.Contains(pendingOut, "iisutil") {
				t.Errorf("files replaced by a killed installer: iisutil.dll %s, pending %q", v, pendingOut)
			}
		} else if !strings.Contains(pendingOut, "iisutil.dll") {
			t.Errorf("no replacement pending after the install in a large shell: %q", pendingOut)
		}
	}
}

// TestShellProcessQuota: the shell's job refuses a process past MaxProcessesPerShell, with the
// text of ERROR_NOT_ENOUGH_QUOTA.
func TestShellProcessQuota(t *testing.T) {
	r := newRigOpts(t, "healthy", 11, nil)
	s := shellRig(t, r, func(srv *wsman.Server) { srv.MaxProcessesPerShell = 2 })
	res, err := s.Run(context.Background(), `hostname`) // cmd.exe and hostname.exe: 2
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("two processes: %v %+v", err, res)
	}
	res, err = s.Run(context.Background(), `cmd /c hostname`) // a third
	if err != nil || res.ExitCode != 1 || string(res.Stderr) != "Not enough quota is available to process this command.\r\n" {
		t.Errorf("three processes: %v exit %d %q", err, res.ExitCode, res.Stderr)
	}
}

// failingReader gives data, then fails: stdin whose source broke mid-transfer.
type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errors.New("the connection to the host broke")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestPushCutOverWinRM: a push whose stdin breaks mid-line ends the decoder (the client
// terminates the command); the part file holds every whole line sent before.
func TestPushCutOverWinRM(t *testing.T) {
	r := newRigOpts(t, "affected", 12, nil)
	s := shellRig(t, r, nil)
	img := win2003.NewInstallerImage("x86", "0409", 0)
	part := work + `\` + img.SHA256 + ".part"
	mustRun(t, r.h, `mkdir `+work, nil)
	const raw = 48 << 10
	text := pushLines(img.Open(), raw)
	line := base64.StdEncoding.EncodedLen(raw) + 2
	cut := 5*line + line/2
	_, err := s.RunInput(context.Background(), psDecodeCmd(part, 0), &failingReader{data: text[:cut]})
	if err == nil {
		t.Fatal("a broken stdin went unnoticed")
	}
	if out := mustRun(t, r.h, listCmd(work), nil); out != fmt.Sprintf("%d %s.part\r\n", 5*raw, img.SHA256) {
		t.Errorf("after the cut: %q, want five whole lines", out)
	}
	res, err := s.RunInput(context.Background(), psDecodeCmd(part, 5*raw), io.MultiReader(strings.NewReader(string(text[5*line:]))))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("resumed push: %v %+v", err, res)
	}
	if out := mustRun(t, r.h, psHashCmd(part), nil); out != strings.ToUpper(img.SHA256)+"\r\n" {
		t.Errorf("hash after the resumed push: %q", out)
	}
}

// TestCertutilDecodeInShellMemory: certutil -decode holds its input and output in memory
// (Quirks.CertutilDecodeInMemory), which a shell's MaxMemoryPerShellMB can refuse; outside the
// quota the same decode works.
func TestCertutilDecodeInShellMemory(t *testing.T) {
	img := win2003.NewInstallerImage("x86", "0409", 3<<20)
	for _, tc := range []struct {
		memMB int
		code  int
	}{{8, -2147024882}, {0, 0}} {
		r := newRigOpts(t, "no-powershell", 13, func(o *win2003.Options) { o.Installers = []win2003.InstallerImage{img} })
		s := shellRig(t, r, func(srv *wsman.Server) { srv.MaxMemoryPerShellMB = tc.memMB })
		mustRun(t, r.h, `mkdir `+work, nil)
		mustRun(t, r.h, `findstr "^" > `+work+`\i.b64`, pushLines(img.Open(), 48<<10))
		res, err := s.Run(context.Background(), `certutil -f -decode `+work+`\i.b64 `+work+`\i.part`)
		if err != nil || res.ExitCode != tc.code {
			t.Errorf("MaxMemoryPerShellMB %d: exit %d %v %q", tc.memMB, res.ExitCode, err, res.Stdout)
		}
		if tc.code != 0 && string(res.Stdout) != "CertUtil: -decode command FAILED: 0x8007000e (WIN32: 14)\r\nCertUtil: Not enough storage is available to complete this operation.\r\n" {
			t.Errorf("out of memory: %q", res.Stdout)
		}
	}
}
