//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remediate/journal"
)

// These tests run iisremedy as a process of its own, to kill and interrupt it, against a fleet
// in this process. A process cannot join the fleet's virtual clock, so the fleet's clock is
// moved by hand: it stands still while the test signals the runner and waits for the runner to
// say it heard, so the hosts cannot move on meanwhile however slow the machine is; afterwards
// the test moves it on (pump) while the runner finishes, and every timeout of the runner is far
// longer than the lab needs.
const crashPassword = "Crash-Passw0rd-e61b"

// crashFleet starts a fleet on a clock that moves only when the test says so, whose installers
// are in a folder, and writes a plan for it.
func crashFleet(t *testing.T, hosts int) (f *lab.Fleet, plan, journalPath string) {
	t.Helper()
	dir := t.TempDir()
	sp2 := filepath.Join(dir, "sp2")
	f = listenFleet(t, lab.Config{Hosts: hosts, Scenario: "affected", Clock: win2003.NewManualClock(win2003.DefaultStart),
		InstallersDir: sp2, InstallerSize: 32 << 10, Password: crashPassword})
	plan, journalPath = filepath.Join(dir, "plan.json"), filepath.Join(dir, "journal.db")
	code, _, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": crashPassword}, "plan", "-i", fleetInventory(t, f),
		"--installers", sp2, "--out", plan, "--soak", "2s", "--poll", "1s", "--install-timeout", "10m", "--reboot-timeout", "10m")
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	return f, plan, journalPath
}

// pump moves the fleet's clock on, a simulated second per real millisecond, until the test ends:
// the hosts then get through an install and a reboot in about a real second.
func pump(t *testing.T, f *lab.Fleet) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				f.Clock().Advance(time.Second)
			}
		}
	}()
}

// syncBuffer is a process's output, written by exec's copying goroutine while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startApply starts `iisremedy apply` as a process of its own.
func startApply(t *testing.T, plan, journalPath string, extra ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"apply", plan, "--journal", journalPath}, extra...)...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1", "IISREMEDY_PASSWORD="+crashPassword)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

// waitFor polls cond (an event in the lab) until it holds; the deadline only keeps a broken
// test from hanging, it never decides a result.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKilledDuringInstallFinishesOnRerun: the runner is killed (SIGKILL) while the installer
// runs; started again, it waits for that install rather than starting another, and finishes
// the host with exactly one installer run.
func TestKilledDuringInstallFinishesOnRerun(t *testing.T) {
	t.Parallel() // a fleet of its own
	f, plan, journalPath := crashFleet(t, 1)
	host := f.Hosts()[0].Model
	cmd, _ := startApply(t, plan, journalPath)
	waitFor(t, "the installer to start", host.Installing)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !host.Installing() {
		t.Fatal("the install ended with the runner although the host's clock stood still")
	}

	again, out := startApply(t, plan, journalPath)
	pump(t, f)
	if err := again.Wait(); err != nil {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	runs := host.InstallerRuns()
	if len(runs) != 1 || runs[0].Killed {
		t.Errorf("installer runs %+v, want exactly one, not killed", runs)
	}
	if !strings.Contains(out.String(), "remediated") {
		t.Errorf("second apply:\n%s", out)
	}
}

// TestDrainStopsAtSafePoints: one SIGINT while installs run lets them finish, starts no install
// or restart after it, exits 3, and the journal says where each host stopped.
func TestDrainStopsAtSafePoints(t *testing.T) {
	t.Parallel() // a fleet of its own
	f, plan, journalPath := crashFleet(t, 4)
	cmd, out := startApply(t, plan, journalPath, "--parallel", "2")
	installing := func() int {
		n := 0
		for _, h := range f.Hosts() {
			if h.Model.Installing() {
				n++
			}
		}
		return n
	}
	waitFor(t, "an installer to start", func() bool { return installing() > 0 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// The hosts' clock stands still until the runner says it drains: whatever starts after this
	// instant started after the runner knew.
	waitFor(t, "the runner to drain", func() bool { return strings.Contains(out.String(), "draining:") })
	drained := f.Clock().Now()
	pump(t, f)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != int(exitAborted) {
		t.Fatalf("drained apply: %v, want exit %d\n%s", err, exitAborted, out)
	}
	tasks := 0
	for _, h := range f.Hosts() {
		// The runner's act is starting the install task; the installer itself starts a few
		// simulated seconds into the task's batch file.
		for _, c := range h.Model.Commands() {
			if c.Task != "iisremedy-install" {
				continue
			}
			tasks++
			if c.Start.After(drained) {
				t.Errorf("%s: the install task started after the drain (%s > %s)", h.Addr, c.Start, drained)
			}
		}
		for _, r := range h.Model.InstallerRuns() {
			if r.End.IsZero() || r.Killed {
				t.Errorf("%s: an install did not run to its end: %+v", h.Addr, r)
			}
		}
		for _, e := range h.Model.Events("USER32") {
			if e.Code == 1074 {
				t.Errorf("%s: a restart was started, although no install had ended when the runner drained", h.Addr)
			}
		}
	}

	if tasks == 0 {
		t.Fatal("no install task seen at all: the test proves nothing")
	}

	j, run := openOnlyRun(t, journalPath)
	if run.Status != journal.StatusAborted {
		t.Errorf("run status %s, want %s", run.Status, journal.StatusAborted)
	}
	hosts, err := j.Hosts(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, h := range hosts {
		if h.Outcome == string(remediate.Interrupted) {
			interrupted++
			if h.Step == "" || len(h.Evidence) == 0 {
				t.Errorf("%s: interrupted without the step or why: %+v", h.Host, h)
			}
		}
	}
	if interrupted == 0 {
		t.Errorf("no host interrupted in the journal: %+v", hosts)
	}
}
