package journal

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' clock: a patch night in June 2010.
var t0 = time.Date(2010, 6, 21, 9, 0, 0, 0, time.UTC)

// fixedClock returns a clock that reads t0 plus one second a call, so stamped times differ.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return t0.Add(time.Duration(n) * time.Second)
	}
}

func openAt(t testing.TB, path string, opts Options) *Journal {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedClock()
	}
	j, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func openTemp(t testing.TB, opts Options) *Journal {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state", "journal.db"), opts)
}

func startRun(t *testing.T, j *Journal, id string, started time.Time) Run {
	t.Helper()
	r := Run{ID: id, Command: "run", PlanDigest: "sha256:abc", Inventory: "hosts.txt", Started: started,
		Status: StatusRunning, Options: json.RawMessage(`{"parallel":20}`), Host: "ctl", PID: 4242}
	if err := j.StartRun(r); err != nil {
		t.Fatalf("StartRun(%s): %v", id, err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesPrivateWALFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "journal.db")
	j := openAt(t, path, Options{})
	for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(name)
		must(t, err)
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
	var mode string
	must(t, j.w.QueryRow("PRAGMA journal_mode").Scan(&mode))
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk, version int
	must(t, j.w.QueryRow("PRAGMA foreign_keys").Scan(&fk))
	must(t, j.r.QueryRow("PRAGMA user_version").Scan(&version))
	if fk != 1 || version != schemaVersion {
		t.Errorf("foreign_keys = %d, user_version = %d; want 1, %d", fk, version, schemaVersion)
	}
	if err := j.AddStep(StepEvent{RunID: "no-such-run", Host: "web1", Step: "probe", State: StepStarted}); err == nil {
		t.Error("AddStep for a run that does not exist succeeded; foreign keys are not enforced")
	}
}

func TestRunRoundTrip(t *testing.T) {
	j := openTemp(t, Options{})
	first := startRun(t, j, "20100621T090000Z-aaaaaa", t0)
	second := startRun(t, j, "20100621T100000Z-bbbbbb", t0.Add(time.Hour))
	other := Run{ID: "20100621T110000Z-cccccc", Command: "waves run", PlanDigest: "sha256:def"}
	must(t, j.StartRun(other)) // stamped by the clock, status and runner filled in

	got, err := j.Run(first.ID)
	must(t, err)
	if !reflect.DeepEqual(got, first) {
		t.Errorf("Run(%s) = %+v, want %+v", first.ID, got, first)
	}
	o, err := j.Run(other.ID)
	must(t, err)
	host, _ := os.Hostname()
	if o.Status != StatusRunning || o.PID != os.Getpid() || o.Host != host || !o.Started.Equal(t0.Add(time.Second)) ||
		!o.Ended.IsZero() || o.Options != nil {
		t.Errorf("Run(%s) = %+v, want running, this process, started by the clock", other.ID, o)
	}

	ended := t0.Add(90 * time.Minute)
	must(t, j.EndRun(first.ID, StatusInterrupted, ended))
	first.Status, first.Ended = StatusInterrupted, ended
	if got, _ := j.Run(first.ID); !reflect.DeepEqual(got, first) {
		t.Errorf("after EndRun: %+v, want %+v", got, first)
	}
	if err := j.EndRun("nope", StatusDone, ended); !errors.Is(err, ErrNotFound) {
		t.Errorf("EndRun(nope) = %v, want ErrNotFound", err)
	}
	if err := j.EndRun(first.ID, "finished", ended); err == nil {
		t.Error("EndRun with status finished succeeded")
	}

	runs, err := j.Runs(0)
	must(t, err)
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	// other started at t0+1s, by the clock.
	if want := []string{second.ID, other.ID, first.ID}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Runs(0) = %v, want newest first %v", ids, want)
	}
	if runs, _ := j.Runs(1); len(runs) != 1 || runs[0].ID != second.ID {
		t.Errorf("Runs(1) = %v, want only %s", runs, second.ID)
	}

	last, ok, err := j.LastRun("sha256:abc")
	must(t, err)
	if !ok || last.ID != second.ID {
		t.Errorf("LastRun(sha256:abc) = %s, %v; want %s", last.ID, ok, second.ID)
	}
	if _, ok, err := j.LastRun("sha256:never"); ok || err != nil {
		t.Errorf("LastRun(never) = %v, %v; want false, nil", ok, err)
	}

	for prefix, want := range map[string]string{"20100621T10": second.ID, "20100621T090000Z-a": first.ID} {
		if got, err := j.Run(prefix); err != nil || got.ID != want {
			t.Errorf("Run(%s) = %s, %v; want %s", prefix, got.ID, err, want)
		}
	}
	if _, err := j.Run("20100621T"); err == nil || !strings.Contains(err.Error(), "several runs") {
		t.Errorf("Run(ambiguous prefix) = %v, want an error saying several runs match", err)
	}
	for _, id := range []string{"2011", ""} {
		if _, err := j.Run(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Run(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := j.StartRun(first); err == nil {
		t.Error("StartRun with an ID already in the journal succeeded")
	}
}

func TestNewRunID(t *testing.T) {
	id := NewRunID(time.Date(2010, 6, 21, 11, 0, 0, 0, time.FixedZone("CEST", 2*3600)))
	if !regexp.MustCompile(`^20100621T090000Z-[0-9a-f]{6}$`).MatchString(id) {
		t.Errorf("NewRunID = %q, want 20100621T090000Z-<6 hex digits>", id)
	}
	if a, b := NewRunID(t0), NewRunID(t0.Add(time.Second)); a >= b {
		t.Errorf("NewRunID does not sort by time: %s >= %s", a, b)
	}
}

func TestHostsRoundTrip(t *testing.T) {
	j := openTemp(t, Options{})
	run := startRun(t, j, "r1", t0)
	web2 := HostState{RunID: run.ID, Host: "web2", VerdictBefore: "mismatch", Step: "stage", Started: t0}
	web1 := HostState{RunID: run.ID, Host: "web1:5986", VerdictBefore: "healthy", Outcome: OutcomeNotPlanned,
		Evidence: []string{"iisutil.dll 6.0.3790.3959"}, Started: t0, Ended: t0.Add(time.Minute)}
	must(t, j.PutHost(web2))
	must(t, j.PutHost(web1))
	// web2 goes on; a zero Started keeps the recorded one.
	web2.Step, web2.Outcome, web2.Evidence = "verify", OutcomeRemediated, []string{"pools up 10m", "no new 1009"}
	web2.Ended = t0.Add(40 * time.Minute)
	update := web2
	update.Started = time.Time{}
	must(t, j.PutHost(update))

	got, err := j.Hosts(run.ID)
	must(t, err)
	if want := []HostState{web2, web1}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts = %+v\nwant (insertion order) %+v", got, want)
	}
	if err := j.PutHost(HostState{RunID: run.ID, Host: "web3", Outcome: "fixed"}); err == nil {
		t.Error("PutHost with outcome fixed succeeded")
	}
	if hosts, err := j.Hosts("other"); err != nil || len(hosts) != 0 {
		t.Errorf("Hosts(other) = %v, %v; want none", hosts, err)
	}
}

func TestStepsRoundTrip(t *testing.T) {
	j := openTemp(t, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	run := startRun(t, j, "r1", t0)
	events := []StepEvent{
		{RunID: run.ID, Host: "web1", Step: "probe", State: StepStarted, At: t0},
		{RunID: run.ID, Host: "web2", Step: "probe", State: StepStarted, At: t0},
		{RunID: run.ID, Host: "web1", Step: "probe", State: StepDone, Detail: "mismatch", At: t0.Add(time.Second)},
		{RunID: run.ID, Host: "web1", Step: "stage", State: StepSkipped, Detail: "already staged"},
	}
	for _, e := range events {
		must(t, j.AddStep(e))
	}
	events[3].At = t0.Add(time.Hour) // stamped by the clock
	all, err := j.Steps(run.ID, "")
	must(t, err)
	if !reflect.DeepEqual(all, events) {
		t.Errorf("Steps(all) = %+v\nwant %+v", all, events)
	}
	web1, err := j.Steps(run.ID, "web1")
	must(t, err)
	if want := []StepEvent{events[0], events[2], events[3]}; !reflect.DeepEqual(web1, want) {
		t.Errorf("Steps(web1) = %+v\nwant %+v", web1, want)
	}
	if err := j.AddStep(StepEvent{RunID: run.ID, Host: "web1", Step: "x", State: "begun"}); err == nil {
		t.Error("AddStep with state begun succeeded")
	}
}

func TestFactsRoundTrip(t *testing.T) {
	j := openTemp(t, Options{})
	run := startRun(t, j, "r1", t0)
	before := json.RawMessage(`{"os":"5.2.3790 SP2","files":{"iisutil.dll":"6.0.3790.1830"}}`)
	after := json.RawMessage(`{"os":"5.2.3790 SP2","files":{"iisutil.dll":"6.0.3790.3959"}}`)
	must(t, j.PutFacts(run.ID, "web1", PhaseBefore, json.RawMessage(`{}`)))
	must(t, j.PutFacts(run.ID, "web1", PhaseBefore, before)) // replaces
	must(t, j.PutFacts(run.ID, "web1", PhaseAfter, after))
	for phase, want := range map[string]json.RawMessage{PhaseBefore: before, PhaseAfter: after} {
		got, err := j.Facts(run.ID, "web1", phase)
		must(t, err)
		if string(got) != string(want) {
			t.Errorf("Facts(%s) = %s, want %s", phase, got, want)
		}
	}
	if _, err := j.Facts(run.ID, "web2", PhaseBefore); !errors.Is(err, ErrNotFound) {
		t.Errorf("Facts(web2) = %v, want ErrNotFound", err)
	}
	if err := j.PutFacts(run.ID, "web1", "during", before); err == nil {
		t.Error("PutFacts with phase during succeeded")
	}
	if err := j.PutFacts(run.ID, "web1", PhaseAfter, json.RawMessage(`{"os":`)); err == nil {
		t.Error("PutFacts with broken JSON succeeded")
	}
}

func TestCommandsRoundTrip(t *testing.T) {
	j := openTemp(t, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	run := startRun(t, j, "r1", t0)
	cmds := []Command{
		{RunID: run.ID, Host: "web1", Step: "probe", At: t0, Duration: 1500 * time.Millisecond,
			CommandLine: `cmd /c reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"`,
			Stdout:      []byte("CSDVersion    REG_SZ    Service Pack 2\r\n\x82\xe9")},
		{RunID: run.ID, Host: "web2", Step: "install", At: t0, Duration: 30 * time.Minute,
			CommandLine: `schtasks /run /tn iisremedy-sp2`, ExitCode: 3010, Stderr: []byte("warning\n")},
		{RunID: run.ID, Host: "web1", Step: "reboot", CommandLine: "shutdown /r /t 5", ExitCode: -1,
			Err: "winrm: host unreachable"},
	}
	for _, c := range cmds {
		must(t, j.AddCommand(c))
	}
	cmds[2].At = t0.Add(time.Hour)
	all, err := j.Commands(run.ID, "")
	must(t, err)
	if !reflect.DeepEqual(all, cmds) {
		t.Errorf("Commands(all) = %+v\nwant %+v", all, cmds)
	}
	web2, err := j.Commands(run.ID, "web2")
	must(t, err)
	if !reflect.DeepEqual(web2, cmds[1:2]) {
		t.Errorf("Commands(web2) = %+v\nwant %+v", web2, cmds[1:2])
	}
	// An empty output reads back as nil.
	must(t, j.AddCommand(Command{RunID: run.ID, Host: "web3", Step: "probe", CommandLine: "ver", Stdout: []byte{}}))
	if got, err := j.Commands(run.ID, "web3"); err != nil || len(got) != 1 || got[0].Stdout != nil {
		t.Errorf("Commands(web3) = %+v, %v; want one with nil output", got, err)
	}
}

func TestCapOutput(t *testing.T) {
	var lines []string
	for i := range 1000 {
		lines = append(lines, fmt.Sprintf("line %04d", i))
	}
	long := []byte(strings.Join(lines, "\n") + "\n") // 10,000 bytes
	got := string(capOutput(long, 1000))
	if !strings.HasPrefix(got, "line 0000\n") || !strings.HasSuffix(got, "line 0999\n") {
		t.Errorf("capped output lost its head or tail:\n%s", got)
	}
	marker := regexp.MustCompile(`(?m)^\[journal: (\d+) bytes left out\]$`).FindStringSubmatch(got)
	if marker == nil {
		t.Fatalf("capped output has no marker line:\n%s", got)
	}
	kept := len(got) - len(marker[0]) - 1
	if kept > 1000 || kept < 900 || marker[1] != fmt.Sprint(len(long)-kept) {
		t.Errorf("kept %d bytes, marker says %s left out of %d; want at most 1000 kept, the rest counted", kept, marker[1], len(long))
	}
	if !regexp.MustCompile(`\nline \d{4}\n\[journal: \d+ bytes left out\]\nline \d{4}\n`).MatchString(got) {
		t.Errorf("cuts are not on line ends:\n%s", got)
	}
	// The tail is where an installer says why it failed: it gets the larger share.
	head, tail, _ := strings.Cut(got, marker[0])
	if len(tail) < 2*len(head) {
		t.Errorf("head %d bytes, tail %d: want the tail larger", len(head), len(tail))
	}
	oneLine := repeat('x', 5000)
	if got := capOutput(oneLine, 100); len(got) > 100+len("\n[journal: 4900 bytes left out]\n") {
		t.Errorf("capping one long line kept %d bytes", len(got))
	}
	if got := capOutput(long, -1); len(got) != len(long) {
		t.Errorf("MaxOutput < 0 kept %d of %d bytes, want all", len(got), len(long))
	}
	if got := capOutput(long[:50], 50); string(got) != string(long[:50]) {
		t.Errorf("output at the cap was changed: %q", got)
	}
}

func repeat(c byte, n int) []byte {
	return []byte(strings.Repeat(string(c), n))
}

func TestAddCommandCapsOutput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		size     int
		wantKept int // -1: capped
	}{
		{"default keeps 64 KiB", 0, DefaultMaxOutput, DefaultMaxOutput},
		{"default caps above 64 KiB", 0, DefaultMaxOutput + 1, -1},
		{"small cap", 1024, 4096, -1},
		{"no cap", -1, 1 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := openTemp(t, Options{MaxOutput: tc.max})
			run := startRun(t, j, "r1", t0)
			out := repeat('o', tc.size)
			must(t, j.AddCommand(Command{RunID: run.ID, Host: "web1", Step: "install", CommandLine: "x", Stdout: out, Stderr: out}))
			cmds, err := j.Commands(run.ID, "web1")
			must(t, err)
			max := tc.max
			if max == 0 {
				max = DefaultMaxOutput
			}
			for name, got := range map[string][]byte{"stdout": cmds[0].Stdout, "stderr": cmds[0].Stderr} {
				capped := strings.Contains(string(got), "bytes left out]")
				switch {
				case tc.wantKept >= 0 && (len(got) != tc.wantKept || capped):
					t.Errorf("%s kept %d bytes (capped %v), want all %d", name, len(got), capped, tc.wantKept)
				case tc.wantKept < 0 && (!capped || len(got) > max+64):
					t.Errorf("%s kept %d bytes (capped %v), want at most %d and a marker", name, len(got), capped, max)
				}
			}
		})
	}
}

func TestRedactsEveryColumn(t *testing.T) {
	// One secret with characters JSON escapes, one plain token, one that contains another.
	password := `Pa<s"s&w0rd\`
	token := "tok-5f3a9c1e77"
	secrets := []string{password, token, token + "-long"}
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j := openAt(t, path, Options{Redact: append(secrets, "")})
	pw := func(s string) string { return strings.ReplaceAll(s, "PW", password) }
	tk := func(s string) string { return strings.ReplaceAll(s, "TK", token) }

	run := Run{ID: "r1", Command: "run", PlanDigest: pw("digest PW"), Inventory: tk("inv TK"),
		Options: mustJSON(t, map[string]string{"password": password, "token": token + "-long"}), Host: pw("ctl PW"), PID: 1}
	must(t, j.StartRun(run))
	must(t, j.PutHost(HostState{RunID: "r1", Host: "web1", VerdictBefore: pw("v PW"), Step: tk("s TK"),
		Evidence: []string{pw("net use \\\\share /user:admin PW"), tk("token=TK")}}))
	must(t, j.AddStep(StepEvent{RunID: "r1", Host: "web1", Step: "stage", State: StepFailed, Detail: pw("pull failed: PW")}))
	must(t, j.PutFacts("r1", "web1", PhaseBefore, mustJSON(t, map[string]any{"env": pw("PASSWORD=PW"), "url": tk("http://ctl/TK")})))
	must(t, j.AddCommand(Command{RunID: "r1", Host: "web1", Step: "stage",
		CommandLine: pw(`net use \\ctl\share PW /user:admin`) + tk(" & curl ?t=TK"),
		Stdout:      []byte(pw("echo PW\r\n") + strings.Repeat("filler\r\n", 20000) + pw("PW")), // capped after redaction
		Stderr:      []byte(tk("bad token TK")), Err: pw("exit PW")}))
	must(t, j.Approve("waves.yaml", "w1", pw("alice PW"), t0))
	must(t, j.PutWave(WaveState{Waves: "waves.yaml", Wave: "w1", Status: WaveHalted, Reason: tk("TK refused")}))
	_, err := j.Lock("waves.yaml", LockHolder{Host: tk("ctl TK"), PID: 1, RunID: "r1"}, t0, time.Hour)
	must(t, err)

	// Nor does an error show one.
	if err := j.AddStep(StepEvent{RunID: "r1", Host: tk("web TK"), Step: "stage", State: "begun"}); err == nil ||
		strings.Contains(err.Error(), token) {
		t.Errorf("AddStep with a bad state = %v, want an error without the secret", err)
	}

	// What reads back says [redacted] where the secrets were.
	cmds, err := j.Commands("r1", "web1")
	must(t, err)
	if got := cmds[0].CommandLine; got != `net use \\ctl\share [redacted] /user:admin & curl ?t=[redacted]` {
		t.Errorf("command line = %q", got)
	}
	facts, err := j.Facts("r1", "web1", PhaseBefore)
	must(t, err)
	if !json.Valid(facts) || !strings.Contains(string(facts), `"PASSWORD=[redacted]"`) {
		t.Errorf("facts = %s, want valid JSON with the password redacted", facts)
	}
	r, err := j.Run("r1")
	must(t, err)
	if string(r.Options) != `{"password":"[redacted]","token":"[redacted]"}` {
		t.Errorf("options = %s", r.Options)
	}

	// No form of a secret is anywhere in the files, while open and after close.
	forms := []string{password, token, `Pa\u003cs\"s\u0026w0rd\\`, `Pa<s\"s&w0rd\\`}
	grepFiles(t, dir, forms)
	must(t, j.Close())
	grepFiles(t, dir, forms)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return b
}

// grepFiles fails the test if any file in dir (the database, its WAL and shared memory)
// holds one of the strings.
func grepFiles(t *testing.T, dir string, strs []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		for _, s := range strs {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds the secret %q", e.Name(), s)
			}
		}
	}
}

func TestConcurrentAddStep(t *testing.T) {
	j := openTemp(t, Options{})
	run := startRun(t, j, "r1", t0)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			host := fmt.Sprintf("web%03d", i)
			if errs[i] = j.AddStep(StepEvent{RunID: run.ID, Host: host, Step: "probe", State: StepStarted}); errs[i] != nil {
				return
			}
			// Reads go on while others write.
			_, errs[i] = j.Steps(run.ID, host)
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	steps, err := j.Steps(run.ID, "")
	must(t, err)
	seen := map[string]bool{}
	for _, s := range steps {
		seen[s.Host] = true
	}
	if len(steps) != n || len(seen) != n {
		t.Errorf("%d steps of %d hosts recorded, want %d of %d", len(steps), len(seen), n, n)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{Now: fixedClock()})
	must(t, err)
	run := startRun(t, j, "r1", t0)
	host := HostState{RunID: "r1", Host: "web1", VerdictBefore: "mismatch", Outcome: OutcomeRemediated, Evidence: []string{"e"}, Started: t0}
	step := StepEvent{RunID: "r1", Host: "web1", Step: "verify", State: StepDone, At: t0}
	cmd := Command{RunID: "r1", Host: "web1", Step: "verify", At: t0, CommandLine: "iisapp", Stdout: []byte("ok")}
	wave := WaveState{Waves: "w.yaml", Wave: "w1", RunID: "r1", Status: WaveDone, Started: t0, Ended: t0}
	must(t, j.PutHost(host))
	must(t, j.AddStep(step))
	must(t, j.AddCommand(cmd))
	must(t, j.PutFacts("r1", "web1", PhaseAfter, json.RawMessage(`{"ok":true}`)))
	must(t, j.Approve("w.yaml", "w1", "alice", t0))
	must(t, j.PutWave(wave))
	must(t, j.Close())

	j = openAt(t, path, Options{})
	if got, err := j.Run("r1"); err != nil || !reflect.DeepEqual(got, run) {
		t.Errorf("Run after reopening = %+v, %v; want %+v", got, err, run)
	}
	if got, err := j.Hosts("r1"); err != nil || !reflect.DeepEqual(got, []HostState{host}) {
		t.Errorf("Hosts after reopening = %+v, %v", got, err)
	}
	if got, err := j.Steps("r1", "web1"); err != nil || !reflect.DeepEqual(got, []StepEvent{step}) {
		t.Errorf("Steps after reopening = %+v, %v", got, err)
	}
	if got, err := j.Commands("r1", "web1"); err != nil || !reflect.DeepEqual(got, []Command{cmd}) {
		t.Errorf("Commands after reopening = %+v, %v", got, err)
	}
	if got, err := j.Facts("r1", "web1", PhaseAfter); err != nil || string(got) != `{"ok":true}` {
		t.Errorf("Facts after reopening = %s, %v", got, err)
	}
	if ok, a, err := j.Approved("w.yaml", "w1"); err != nil || !ok || a.By != "alice" {
		t.Errorf("Approved after reopening = %v, %+v, %v", ok, a, err)
	}
	if got, err := j.Waves("w.yaml"); err != nil || !reflect.DeepEqual(got, []WaveState{wave}) {
		t.Errorf("Waves after reopening = %+v, %v", got, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openAt(t, path, Options{})
	must(t, j.Close())
	setPragma(t, path, "user_version", schemaVersion+1)
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "schema version 2 is newer") {
		t.Errorf("Open(newer schema) = %v, want an error naming %s and the newer version", err, path)
	}
}

func setPragma(t *testing.T, path, pragma string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	must(t, err)
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf("PRAGMA %s = %d", pragma, v))
	must(t, err)
}

func TestRefusesWhatIsNotAJournal(t *testing.T) {
	dir := t.TempDir()
	notSQLite := filepath.Join(dir, "hosts.txt")
	must(t, os.WriteFile(notSQLite, []byte("web1\nweb2:5986\nweb3\n"), 0o600))
	short := filepath.Join(dir, "short.db")
	must(t, os.WriteFile(short, []byte("SQLite"), 0o600))
	otherApp := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", otherApp)
	must(t, err)
	_, err = db.Exec("CREATE TABLE t (x)")
	must(t, err)
	must(t, db.Close())
	otherID := filepath.Join(dir, "other-id.db")
	setPragma(t, otherID, "application_id", 42)

	for path, want := range map[string]string{
		notSQLite: "not an SQLite database",
		short:     "not an SQLite database",
		dir:       "is a directory",
		otherApp:  "another program",
		otherID:   "another program",
	} {
		_, err := Open(path, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "journal "+path+":") {
			t.Errorf("Open(%s) = %v, want one error naming the file and saying %q", path, err, want)
		}
	}
	if b, _ := os.ReadFile(notSQLite); string(b) != "web1\nweb2:5986\nweb3\n" {
		t.Errorf("refusing %s changed it: %q", notSQLite, b)
	}
}

func TestRefusesUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	must(t, os.WriteFile(path, nil, 0))
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "journal "+path+": cannot open: permission denied") {
		t.Errorf("Open(unreadable) = %v, want one error naming the file", err)
	}
}

func TestDefaultPath(t *testing.T) {
	home := func() (string, error) { return "/home/ops", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	for _, tc := range []struct {
		goos string
		env  map[string]string
		home func() (string, error)
		want string // "" for an error
	}{
		{"linux", nil, home, "/home/ops/.local/state/iisremedy/journal.db"},
		{"linux", map[string]string{"XDG_STATE_HOME": "/var/state"}, home, "/var/state/iisremedy/journal.db"},
		{"freebsd", map[string]string{"XDG_STATE_HOME": "relative"}, home, "/home/ops/.local/state/iisremedy/journal.db"},
		{"linux", nil, noHome, ""},
		{"darwin", map[string]string{"XDG_STATE_HOME": "/var/state"}, home, "/home/ops/Library/Application Support/iisremedy/journal.db"},
		{"windows", map[string]string{"LOCALAPPDATA": `C:\Users\ops\AppData\Local`}, noHome,
			filepath.Join(`C:\Users\ops\AppData\Local`, "iisremedy", "journal.db")},
		{"windows", nil, home, ""},
	} {
		got, err := defaultPath(tc.goos, func(k string) string { return tc.env[k] }, tc.home)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("defaultPath(%s, %v) = %q, %v; want %q", tc.goos, tc.env, got, err, tc.want)
		}
	}
	if p, err := DefaultPath(); err != nil || filepath.Base(p) != "journal.db" {
		t.Errorf("DefaultPath() = %q, %v", p, err)
	}
}
