package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// pywinrm is Debian's python3-winrm for /usr/bin/python3 (docs/design.md §10); CI installs it.
const systemPython = "/usr/bin/python3"

func requirePywinrm(t *testing.T) {
	t.Helper()
	if err := exec.Command(systemPython, "-c", "import winrm").Run(); err != nil {
		t.Skipf("pywinrm is not installed for %s (apt-get install python3-winrm): %v", systemPython, err)
	}
}

// signalWriter closes ready when the text written so far contains mark.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	mark  string
	ready chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.mark) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// serveLab runs `iisremedy lab serve args...` in-process until the test ends and returns the
// paths of the inventory and the manifest it wrote.
func serveLab(t *testing.T, password string, args ...string) (inventory, manifest string) {
	t.Helper()
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.txt")
	manifest = filepath.Join(dir, "manifest.json")
	ctx, cancel := context.WithCancel(context.Background())
	errOut := &signalWriter{mark: "interrupt to stop", ready: make(chan struct{})}
	ios := &ioStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: errOut}
	done := make(chan exitCode, 1)
	// --port 0: a free port per host, so that two test runs never collide.
	argv := append([]string{"lab", "serve", "--port", "0", "--inventory", inv, "--manifest", manifest}, args...)
	go func() {
		done <- runWithEnv(ctx, argv, ios, func(k string) string {
			if k == "IISREMEDY_PASSWORD" {
				return password
			}
			return ""
		})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("lab serve exited %d after the interrupt, want %d", code, exitOK)
		}
	})
	select {
	case <-errOut.ready:
	case code := <-done:
		t.Fatalf("lab serve exited %d: %s", code, errOut.String())
	}
	return inv, manifest
}

// firstHost returns the host:port of an inventory file's first line.
func firstHost(t *testing.T, inventory string) string {
	t.Helper()
	data, err := os.ReadFile(inventory)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))[0] // host:port, then the line's settings
}

type pyCommand struct {
	Command string  `json:"command"`
	Stdin   *string `json:"stdin"`
}

type pyResult struct {
	Stdout, Stderr []byte
	Code           int
}

// runPywinrm runs commands in one pywinrm shell and returns their results.
func runPywinrm(t *testing.T, endpoint, transport, encryption, password string, cmds []pyCommand) []pyResult {
	t.Helper()
	req, _ := json.Marshal(map[string]any{
		"endpoint": endpoint, "transport": transport, "message_encryption": encryption,
		"user": "Administrator", "password": password, "commands": cmds,
	})
	// OpenSSL 3 keeps MD4, which NTLM needs, in its legacy provider; enable it for this process.
	conf := filepath.Join(t.TempDir(), "openssl.cnf")
	if err := os.WriteFile(conf, []byte(opensslLegacyConf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemPython, filepath.Join("testdata", "pywinrm_client.py"))
	cmd.Env = []string{"OPENSSL_CONF=" + conf}
	for _, kv := range os.Environ() {
		// requests lets these override server_cert_validation="ignore" (the lab's certificates
		// are self-signed); the interop test is about the protocol, not the trust store.
		if !strings.HasPrefix(kv, "REQUESTS_CA_BUNDLE=") && !strings.HasPrefix(kv, "CURL_CA_BUNDLE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pywinrm (%s, encryption %s): %v\n%s", transport, encryption, err, stderr.String())
	}
	var raw []struct {
		Stdout, Stderr string
		Code           int
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("pywinrm output: %v: %s", err, out)
	}
	res := make([]pyResult, len(raw))
	for i, r := range raw {
		res[i].Stdout, _ = base64.StdEncoding.DecodeString(r.Stdout)
		res[i].Stderr, _ = base64.StdEncoding.DecodeString(r.Stderr)
		res[i].Code = r.Code
	}
	return res
}

const opensslLegacyConf = `openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
legacy = legacy_sect
[default_sect]
activate = 1
[legacy_sect]
activate = 1
`

// TestPywinrmInterop drives `lab serve` with pywinrm: Basic over HTTPS, Basic over HTTP with
// unencrypted messages allowed, and NTLM with message encryption, each running the probe's
// registry and WMI queries and a command with stdin; the replies carry the real formats.
func TestPywinrmInterop(t *testing.T) {
	requirePywinrm(t)
	stdin := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("line of stdin through pywinrm\r\n"), 4096))
	cmds := []pyCommand{
		{Command: `reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"`},
		// stdin from NUL: wmic waits on an open stdin (docs/facts.md §5.3), as the lab's does
		{Command: `wmic os get LastBootUpTime /format:list < NUL`},
		{Command: `findstr "^"`, Stdin: &stdin},
		{Command: `exit /b 7`},
		{Command: `nosuchprogram`},
	}
	tests := []struct {
		name, transport, encryption string
		args                        []string
		scheme                      string
	}{
		{"basic over https", "basic", "never", []string{"--https", "--auth", "basic", "--first-addr", "127.0.77.1"}, "https"},
		{"basic over http unencrypted", "basic", "never", []string{"--auth", "basic", "--allow-unencrypted", "--first-addr", "127.0.78.1"}, "http"},
		{"ntlm with encryption", "ntlm", "always", []string{"--auth", "negotiate", "--first-addr", "127.0.79.1"}, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const password = "Interop-Passw0rd"
			inv, _ := serveLab(t, password, append(tt.args, "--hosts", "1", "--scenario", "affected")...)
			addr := firstHost(t, inv)
			res := runPywinrm(t, tt.scheme+"://"+addr+"/wsman", tt.transport, tt.encryption, password, cmds)
			if len(res) != len(cmds) {
				t.Fatalf("%d results, want %d", len(res), len(cmds))
			}
			reg := string(res[0].Stdout)
			for _, want := range []string{"! REG.EXE VERSION 3.0", `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, "CurrentBuildNumber", "REG_SZ", "3790", "Service Pack 2"} {
				if !strings.Contains(reg, want) {
					t.Errorf("reg query output lacks %q:\n%s", want, reg)
				}
			}
			if res[0].Code != 0 {
				t.Errorf("reg query exit code %d", res[0].Code)
			}
			wmi := string(res[1].Stdout)
			if !regexp.MustCompile(`LastBootUpTime=\d{14}\.\d{6}[+-]\d{3}\r\r\n`).MatchString(wmi) {
				t.Errorf("wmic output is not /format:list with a WMI datetime and \\r\\r\\n: %q", wmi)
			}
			want, _ := base64.StdEncoding.DecodeString(stdin)
			if !bytes.Equal(res[2].Stdout, want) {
				t.Errorf("findstr echoed %d bytes, want the %d bytes of stdin", len(res[2].Stdout), len(want))
			}
			if res[3].Code != 7 {
				t.Errorf("exit /b 7 gave %d", res[3].Code)
			}
			if res[4].Code != 9009 || !strings.Contains(string(res[4].Stderr), "'nosuchprogram' is not recognized as an internal or external command") {
				t.Errorf("unknown command: code %d, stderr %q", res[4].Code, res[4].Stderr)
			}
		})
	}
}
