package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asMainEnv makes the test binary behave as iisremedy itself, so that a command that starts
// iisremedy again (lab serve --background starts os.Executable) can be tested in-process.
const asMainEnv = "IISREMEDY_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		first, second := interrupts()
		os.Exit(int(run(withHardStop(first, second), os.Args[1:], systemStreams())))
	}
	// The commands' default journal and hash cache live under the user's state and cache
	// directories: the tests' go to a folder of their own, never the home directory.
	dir, err := os.MkdirTemp("", "iisremedy-test-home-")
	if err != nil {
		panic(err)
	}
	for _, v := range []string{"HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "LOCALAPPDATA"} {
		os.Setenv(v, dir)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersionFlag(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--version")
	if code != exitOK || !strings.HasPrefix(out, "iisremedy ") {
		t.Errorf("--version: code %d, out %q", code, out)
	}
}

// TestCompletion: the shell completion offers the output formats, the scenarios and the
// playbook names.
func TestCompletion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "detect", "-o", ""}, []string{"table", "json", "markdown"}},
		{[]string{"__complete", "lab", "--scenario", "sp"}, []string{"sp1", "spanish"}},
		{[]string{"__complete", "detect", "--playbook", "kb9"}, []string{"kb973917", "kb982666"}},
		{[]string{"__complete", "playbooks", "show", ""}, []string{"kb973917", "kb982666"}},
	} {
		code, out, _ := runCLI(t, nil, tt.args...)
		for _, w := range tt.want {
			if code != exitOK || !strings.Contains(out, w+"\n") {
				t.Errorf("%v: code %d, no %q in %q", tt.args, code, w, out)
			}
		}
	}
	code, out, _ := runCLI(t, nil, "completion", "bash")
	if code != exitOK || !strings.Contains(out, "__start_iisremedy") {
		t.Errorf("completion bash: code %d", code)
	}
}

// TestHelpHasExamples: every command a user runs shows examples in its help.
func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range [][]string{{"detect"}, {"diagnose"}, {"probe-script"}, {"lab"}, {"lab", "serve"}, {"playbooks"}, {"playbooks", "show"}, {"version"}} {
		code, out, _ := runCLI(t, nil, append(cmd, "--help")...)
		if _, ex, _ := strings.Cut(out, "Examples:\n"); code != exitOK || !strings.Contains(ex, "  iisremedy "+strings.Join(cmd, " ")) {
			t.Errorf("%v --help: code %d, no examples:\n%s", cmd, code, out)
		}
	}
	// The WinRM flags belong to the commands that connect.
	_, out, _ := runCLI(t, nil, "diagnose", "--help")
	if strings.Contains(out, "--auth") || strings.Contains(out, "--parallel") {
		t.Errorf("diagnose --help offers WinRM flags:\n%s", out)
	}
}

// TestLabAddressTaken: a lab whose address another process holds says which and how to pick
// another, exit 2.
func TestLabAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.91.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	code, _, stderr := runCLI(t, nil, "lab", "--hosts", "1", "--first-addr", "127.0.91.1", "--port", port)
	want := "cannot listen on 127.0.91.1:" + port
	if code != exitUsage || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--first-addr") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming %s", code, stderr, want)
	}
}

// TestLabServeBackground runs the README's script: lab serve --background returns once the
// hosts listen and the inventory is written, detect finds them, and the PID file stops them.
func TestLabServeBackground(t *testing.T) {
	t.Setenv(asMainEnv, "1")
	t.Setenv("IISREMEDY_PASSWORD", "Background-Passw0rd")
	dir := t.TempDir()
	inv, pidFile := filepath.Join(dir, "hosts.txt"), filepath.Join(dir, "lab.pid")
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Background-Passw0rd"}, "lab", "serve", "--background", "--pid-file", pidFile,
		"--hosts", "3", "--scenario", "healthy", "--first-addr", "127.0.92.1", "--port", "0", "--inventory", inv)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %q", data)
	}
	proc, _ := os.FindProcess(pid) // the server is this test process's child
	t.Cleanup(func() {
		if proc.Signal(syscall.SIGTERM) == nil {
			_, _ = proc.Wait()
		}
	})
	if strings.Count(stdout, "127.0.92.") != 3 || !strings.Contains(stderr, "kill "+strconv.Itoa(pid)) {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	code, out, errOut := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Background-Passw0rd"}, "detect", "-i", inv)
	if code != exitOK || !strings.Contains(out, "3 hosts: 3 healthy") {
		t.Errorf("detect: exit %d\n%s%s", code, out, errOut)
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, err := proc.Wait(); err != nil || !st.Success() {
		t.Errorf("the background server ended with %v, %v; want a clean exit on SIGTERM", st, err)
	}
}
