package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remote"
)

// runCLI runs one command line with the given environment and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (code exitCode, stdout, stderr string) {
	t.Helper()
	ios, _, out, errOut := testStreams()
	code = runWithEnv(context.Background(), args, ios, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadInputExitsTwo(t *testing.T) {
	badInventory := writeFile(t, "hosts.txt", "web01\nweb02:99999\n")
	basicInClear := writeFile(t, "basic.txt", "# farm\nweb01 auth=basic\n")
	goodInventory := writeFile(t, "good.txt", "web01\n")
	badPlaybook := writeFile(t, "pb.yaml", "name: x\nbogus_field: 1\n")
	notCapture := writeFile(t, "notes.txt", "hello, this is not a probe\n")
	env := map[string]string{"IISREMEDY_PASSWORD": "pw"}
	tests := []struct {
		name    string
		args    []string
		wantErr string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"detect", "--nope"}, "unknown flag: --nope"},
		{"bad auth", []string{"detect", "-i", badInventory, "--auth", "digest"}, `--auth "digest"`},
		{"unsupported auth", []string{"detect", "-i", badInventory, "--auth", "kerberos"}, "--auth kerberos: not supported yet"},
		{"bad parallel", []string{"detect", "-i", badInventory, "--parallel", "0"}, "--parallel 0"},
		{"detect without inventory", []string{"detect"}, "detect: give the host list with -i FILE"},
		{"detect with an argument", []string{"detect", "hosts.txt"}, `iisremedy detect takes no arguments (got "hosts.txt")`},
		{"bad output", []string{"detect", "-i", badInventory, "-o", "xml"}, `--output "xml"`},
		{"missing inventory", []string{"detect", "-i", "/nonexistent/hosts.txt"}, "/nonexistent/hosts.txt"},
		{"bad inventory line", []string{"detect", "-i", badInventory}, badInventory + ":2: host: port \"99999\""},
		{"basic over http", []string{"detect", "-i", basicInClear}, basicInClear + ":2: auth: basic over plain HTTP sends the password readable: add https=true"},
		{"basic flag over http", []string{"detect", "-i", goodInventory, "--auth", "Basic"}, goodInventory + ":1: --auth: basic over plain HTTP"},
		{"lab basic over http", []string{"lab", "--auth", "basic"}, "lab --auth basic: Basic over plain HTTP sends the password readable; add --https, or --allow-unencrypted"},
		{"lab pid-file without background", []string{"lab", "serve", "--pid-file", "x"}, "--pid-file: only with --background"},
		{"winrm flag on diagnose", []string{"diagnose", notCapture, "--auth", "basic"}, "unknown flag: --auth"},
		{"debug and quiet", []string{"detect", "-i", badInventory, "--debug", "-q"}, "--debug and --quiet cannot be used together"},
		{"bad playbook file", []string{"playbooks", "validate", badPlaybook}, badPlaybook + ":2: bogus_field"},
		{"unknown playbook", []string{"playbooks", "show", "kb000000"}, "kb000000"},
		{"not a capture", []string{"diagnose", notCapture}, notCapture + ": not an iisremedy probe capture"},
		{"diagnose without files", []string{"diagnose"}, "iisremedy diagnose: give at least one capture file"},
		{"show without name", []string{"playbooks", "show"}, "iisremedy playbooks show: give the name of an embedded playbook"},
		{"lab hosts", []string{"lab", "serve", "--hosts", "0"}, "--hosts 0"},
		{"lab scenario", []string{"lab", "serve", "--scenario", "broken"}, `--scenario "broken"`},
		{"lab profile", []string{"lab", "serve", "--tls-profile", "sslv2"}, `--tls-profile "sslv2"`},
		{"lab password", []string{"lab", "serve", "--password-env", "UNSET_VAR"}, "$UNSET_VAR, which is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, env, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 0 && tt.name != "bad playbook file" {
				t.Errorf("want one message, got %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing on bad input", stdout)
			}
		})
	}
}

func TestVersionAndPlaybooks(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "iisremedy ") {
		t.Errorf("version: code %d, out %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "playbooks", "list")
	if code != exitOK || !strings.Contains(out, "kb982666") || !strings.Contains(out, "kb973917") {
		t.Errorf("playbooks list: code %d, out %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "playbooks", "show", "kb982666")
	if code != exitOK || !strings.Contains(out, "KB982666") {
		t.Errorf("playbooks show: code %d, out %q", code, out)
	}
	// The embedded file validates as a file too.
	path := writeFile(t, "kb982666.yaml", out)
	code, out, _ = runCLI(t, nil, "playbooks", "validate", path)
	if code != exitOK || !strings.Contains(out, ": ok") {
		t.Errorf("playbooks validate: code %d, out %q", code, out)
	}
}

// listenFleet runs a lab fleet on free loopback ports for one test.
func listenFleet(t *testing.T, cfg lab.Config) *lab.Fleet {
	t.Helper()
	cfg.Port = -1
	if cfg.Password == "" {
		cfg.Password = "Lab-Passw0rd"
	}
	f, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func fleetInventory(t *testing.T, f *lab.Fleet) string {
	t.Helper()
	var b bytes.Buffer
	if err := f.WriteInventory(&b); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "hosts.txt", b.String())
}

type jsonOutput struct {
	Hosts []struct {
		Host     string            `json:"host"`
		Verdict  playbooks.Verdict `json:"verdict"`
		Evidence []string          `json:"evidence"`
		Advice   string            `json:"advice"`
		Facts    json.RawMessage   `json:"facts"`
		Error    *string           `json:"error"`
	} `json:"hosts"`
}

// TestDetectMatchesManifest runs detect over NTLM with message encryption against a mixed fleet
// and wants exactly the manifest's verdict for every host.
func TestDetectMatchesManifest(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 28, Scenario: "mix", Seed: 7})
	inv := fleetInventory(t, f)
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Lab-Passw0rd"}, "detect", "-i", inv, "-o", "json", "--parallel", "8")
	if code != exitAttention {
		t.Errorf("exit code %d, want %d (the mix has affected hosts); stderr %s", code, exitAttention, stderr)
	}
	var got jsonOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	manifest := f.Manifest()
	if len(got.Hosts) != len(manifest.Hosts) {
		t.Fatalf("%d hosts in output, want %d", len(got.Hosts), len(manifest.Hosts))
	}
	for i, want := range manifest.Hosts {
		h := got.Hosts[i]
		if h.Host != want.Host || h.Verdict != want.Verdict {
			t.Errorf("host %d: got %s %s, want %s %s (scenario %s); evidence %q", i, h.Host, h.Verdict, want.Host, want.Verdict, want.Scenario, h.Evidence)
		}
		if len(h.Evidence) == 0 {
			t.Errorf("%s: no evidence", h.Host)
		}
	}
	if strings.Contains(stdout+stderr, "Lab-Passw0rd") {
		t.Error("the password reached the output")
	}
}

func TestDetectWrongPassword(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 2, Scenario: "healthy"})
	inv := fleetInventory(t, f)
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Wrong-Secret-42"}, "detect", "-i", inv)
	if code != exitAttention {
		t.Errorf("exit code %d, want %d", code, exitAttention)
	}
	if got := strings.Count(stdout, "  auth-failed  "); got != 2 {
		t.Errorf("want 2 auth-failed hosts, got %d:\n%s", got, stdout)
	}
	if strings.Contains(stdout+stderr, "Wrong-Secret-42") {
		t.Error("the password reached the output")
	}
}

func TestDetectUnreachable(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 1, Scenario: "healthy"})
	inv := fleetInventory(t, f)
	f.Close()
	code, stdout, _ := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Lab-Passw0rd"}, "detect", "-i", inv, "-o", "markdown")
	if code != exitAttention || !strings.Contains(stdout, "| unreachable |") {
		t.Errorf("code %d, output:\n%s", code, stdout)
	}
}

// TestProbeScriptCaptureDiagnosesLikeDetect writes the probe-script to lab hosts, runs it there
// through the lab's cmd.exe with its output redirected to a file, and wants `diagnose` of that
// capture (UTF-16LE wmic sections inside ANSI text) to give the verdict `detect` gives.
func TestProbeScriptCaptureDiagnosesLikeDetect(t *testing.T) {
	const password = "Lab-Passw0rd"
	for _, scenario := range []string{"affected", "spanish", "winnt-root", "other-cause", "at-risk"} {
		t.Run(scenario, func(t *testing.T) {
			f := listenFleet(t, lab.Config{Hosts: 1, Scenario: scenario, Password: password})
			want := f.Manifest().Hosts[0].Verdict

			_, script, _ := runCLI(t, nil, "probe-script")
			if !strings.Contains(script, "\r\n") {
				t.Fatalf("probe-script is not a CRLF batch file: %q", script)
			}
			capture := runProbeScriptOnLabHost(t, f.Hosts()[0].Addr, password, script)
			if !bytes.Contains(capture, []byte{'=', 0}) {
				t.Errorf("capture has no UTF-16LE wmic section; the lab's redirected wmic should write UTF-16LE")
			}
			path := writeFile(t, "probe.txt", string(capture))
			code, stdout, stderr := runCLI(t, nil, "diagnose", path, "-o", "json")
			if code != exitAttention && code != exitOK {
				t.Fatalf("diagnose exit %d: %s", code, stderr)
			}
			var got jsonOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("diagnose output: %v\n%s", err, stdout)
			}
			if len(got.Hosts) != 1 || got.Hosts[0].Verdict != want {
				t.Errorf("diagnose gave %+v, want verdict %s", got.Hosts, want)
			}
			host := f.Hosts()[0].Model.ComputerName()
			if got.Hosts[0].Host != host {
				t.Errorf("diagnose named the host %q, want the captured name %q", got.Hosts[0].Host, host)
			}
		})
	}
}

// runProbeScriptOnLabHost copies script to the host through stdin, runs it as `probe.cmd >
// probe.txt` and returns probe.txt's bytes.
func runProbeScriptOnLabHost(t *testing.T, addr, password, script string) []byte {
	t.Helper()
	hostPort := strings.Split(addr, ":")
	port, _ := strconv.Atoi(hostPort[1])
	ctx := context.Background()
	s, err := remote.Dial(ctx, remote.Target{Host: hostPort[0], Port: port, User: "Administrator", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	steps := []struct {
		cmd   string
		stdin string
	}{
		{`findstr "^" > %SystemDrive%\probe.cmd`, script},
		// stdin from NUL: run through WinRM, the script's wmic would wait on the open stdin
		// (docs/facts.md §5.3), as at a console it would not
		{`%SystemDrive%\probe.cmd > %SystemDrive%\probe.txt < NUL`, ""},
	}
	for _, st := range steps {
		var res remote.Result
		if st.stdin != "" {
			res, err = s.RunInput(ctx, st.cmd, strings.NewReader(st.stdin))
		} else {
			res, err = s.Run(ctx, st.cmd)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.cmd, err)
		}
		if len(res.Stderr) > 0 && st.stdin != "" {
			t.Fatalf("%s: exit %d, stderr %q", st.cmd, res.ExitCode, res.Stderr)
		}
	}
	res, err := s.Run(ctx, `type %SystemDrive%\probe.txt`)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("type probe.txt: exit %d, %v, %q", res.ExitCode, err, res.Stderr)
	}
	return res.Stdout
}

// TestDiagnoseCutShortCapture: a capture that stops in the middle still gets a verdict,
// probe-failed, naming what is missing.
func TestDiagnoseCutShortCapture(t *testing.T) {
	const password = "Lab-Passw0rd"
	f := listenFleet(t, lab.Config{Hosts: 1, Scenario: "affected", Password: password})
	_, script, _ := runCLI(t, nil, "probe-script")
	capture := runProbeScriptOnLabHost(t, f.Hosts()[0].Addr, password, script)
	cut := capture[:bytes.Index(capture, []byte("##iisremedy-probe v1 begin events##"))+100]
	path := writeFile(t, "probe.txt", string(cut))
	code, stdout, stderr := runCLI(t, nil, "diagnose", path)
	if code != exitAttention {
		t.Errorf("exit %d, want %d; stderr %q", code, exitAttention, stderr)
	}
	if !strings.Contains(stdout, "probe-failed") || !strings.Contains(stdout, "events") {
		t.Errorf("want probe-failed naming the events section:\n%s", stdout)
	}
}

// TestDetectProgress: one plain line per host on a pipe, a bar on a terminal, nothing with
// --quiet; the results always go to stdout.
func TestDetectProgress(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 3, Scenario: "healthy"})
	inv := fleetInventory(t, f)
	env := func(string) string { return "Lab-Passw0rd" }
	for _, tt := range []struct {
		name  string
		tty   bool
		quiet bool
		check func(t *testing.T, stderr string)
	}{
		{"pipe", false, false, func(t *testing.T, stderr string) {
			if got := strings.Count(stderr, ": healthy\n"); got != 3 {
				t.Errorf("want 3 progress lines, got %q", stderr)
			}
		}},
		{"terminal", true, false, func(t *testing.T, stderr string) {
			if !strings.Contains(stderr, "probing") || !strings.Contains(stderr, "\r") {
				t.Errorf("want a redrawn progress bar, got %q", stderr)
			}
		}},
		{"quiet", true, true, func(t *testing.T, stderr string) {
			if stderr != "" {
				t.Errorf("want nothing on stderr with --quiet, got %q", stderr)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, out, errOut := testStreams()
			ios.stderrTTY = tt.tty
			args := []string{"detect", "-i", inv}
			if tt.quiet {
				args = append(args, "-q")
			}
			if code := runWithEnv(context.Background(), args, ios, env); code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out.String(), "3 hosts: 3 healthy") {
				t.Errorf("stdout %q", out)
			}
			tt.check(t, errOut.String())
		})
	}
}

// TestDetectOverHTTPS: the lab's inventory of an HTTPS fleet pins each certificate; with the
// server2003 profile (TLS 1.0, RC4/3DES, SHA-1 certificate) it also says tls=legacy, and detect
// warns about it once.
func TestDetectOverHTTPS(t *testing.T) {
	for _, profile := range []string{"modern", "server2003"} {
		t.Run(profile, func(t *testing.T) {
			f := listenFleet(t, lab.Config{Hosts: 2, Scenario: "affected", HTTPS: true, TLSProfile: profile})
			inv := fleetInventory(t, f)
			code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Lab-Passw0rd"}, "detect", "-i", inv)
			if code != exitAttention || strings.Count(stdout, "  affected  ") != 2 {
				t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
			}
			warned := strings.Count(stderr, "warning: legacy TLS enabled (TLS 1.0, RSA key exchange, 3DES/RC4 suites): ")
			if (profile == "server2003") != (warned == 1) {
				t.Errorf("profile %s: %d legacy warnings in %q", profile, warned, stderr)
			}
			if profile != "server2003" {
				return
			}
			// Without tls=legacy the host's TLS 1.0 is refused, and the advice says what to add.
			data, err := os.ReadFile(inv)
			if err != nil {
				t.Fatal(err)
			}
			strict := writeFile(t, "strict.txt", strings.ReplaceAll(string(data), " tls=legacy", ""))
			code, stdout, _ = runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Lab-Passw0rd"}, "detect", "-i", strict, "-o", "json")
			var got jsonOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			if code != exitAttention || got.Hosts[0].Verdict != playbooks.Unreachable || !strings.Contains(got.Hosts[0].Advice, "add tls=legacy and tls_fingerprint=") {
				t.Errorf("TLS 1.0 host without tls=legacy: exit %d, %+v", code, got.Hosts[0])
			}
		})
	}
}

// TestDetectInterrupted: an interrupt still reports every host (those not probed are skipped,
// saying why) and exits 130.
func TestDetectInterrupted(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 2, Scenario: "healthy"})
	inv := fleetInventory(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, _, out, errOut := testStreams()
	code := runWithEnv(ctx, []string{"detect", "-i", inv, "-o", "json"}, ios, func(string) string { return "Lab-Passw0rd" })
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	var got jsonOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Hosts) != 2 {
		t.Fatalf("want both hosts reported: %v\n%s", err, out)
	}
	for _, h := range got.Hosts {
		if h.Verdict != playbooks.Skipped || len(h.Evidence) != 1 || !strings.Contains(h.Evidence[0], "interrupted before its probe") {
			t.Errorf("%s: %s, %q", h.Host, h.Verdict, h.Evidence)
		}
	}
	if !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("stderr %q", errOut)
	}
	// The table counts them apart.
	ios, _, out, _ = testStreams()
	runWithEnv(ctx, []string{"detect", "-i", inv}, ios, func(string) string { return "Lab-Passw0rd" })
	if !strings.Contains(out.String(), "2 hosts: 2 skipped (interrupted)") {
		t.Errorf("table %q", out)
	}
}

// TestDetectAgainstLabServe: `lab serve --scenario mix` in one process, `detect` over NTLM with
// message encryption against its inventory; every verdict is the manifest's.
func TestDetectAgainstLabServe(t *testing.T) {
	const password = "Serve-Passw0rd"
	inv, manifestPath := serveLab(t, password, "--hosts", "30", "--scenario", "mix", "--seed", "9", "--first-addr", "127.0.80.1")
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": password}, "detect", "-i", inv, "-o", "json")
	if code != exitAttention {
		t.Errorf("exit %d, want %d; stderr %s", code, exitAttention, stderr)
	}
	var got jsonOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var want lab.Manifest
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if len(got.Hosts) != 30 || len(want.Hosts) != 30 {
		t.Fatalf("%d hosts detected, %d in the manifest, want 30", len(got.Hosts), len(want.Hosts))
	}
	for i, w := range want.Hosts {
		if strings.HasSuffix(w.Host, ":5985") {
			t.Errorf("%s: lab serve --port 0 served on the default port", w.Host)
		}
		if got.Hosts[i].Host != w.Host || got.Hosts[i].Verdict != w.Verdict {
			t.Errorf("%s (%s): got %s %s, want %s", w.Host, w.Scenario, got.Hosts[i].Host, got.Hosts[i].Verdict, w.Verdict)
		}
	}
}

// TestDetectDebugLog: --debug logs a probe tried again after an HTTP 500, and never the password.
func TestDetectDebugLog(t *testing.T) {
	f := listenFleet(t, lab.Config{Hosts: 1, Scenario: "healthy"})
	f.Hosts()[0].Server.Fail500On = 4 // a request after the NTLM handshake and the shell's creation
	inv := fleetInventory(t, f)
	code, stdout, stderr := runCLI(t, map[string]string{"IISREMEDY_PASSWORD": "Lab-Passw0rd"}, "detect", "-i", inv, "--debug")
	if code != exitOK || !strings.Contains(stdout, "1 host: 1 healthy") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `level=DEBUG msg="probing again"`) || !strings.Contains(stderr, "attempt=2") {
		t.Errorf("no retry logged:\n%s", stderr)
	}
	if strings.Contains(stderr, "Lab-Passw0rd") {
		t.Error("the password reached the log")
	}
}
