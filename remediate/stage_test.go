package remediate_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
)

// stageRig is a virtual-time lab fleet, its installers folder and a plan that stages every
// host by one method, with an engine on the fleet's clock that counts the installer bytes it
// sends to each host.
type stageRig struct {
	f     *lab.Fleet
	hosts []remediate.Host
	e     *remediate.Engine
	in    *remediate.Installers
	plan  *remediate.Plan
	pull  *remediate.PullServer // stage=pull only
	dir   string

	mu       sync.Mutex
	attempts map[string][]int64 // installer bytes read for a host, per attempt
	at       map[string]int64   // where the host's transfer stands
}

func newStageRig(t testing.TB, cfg lab.Config, method string) *stageRig {
	t.Helper()
	cfg.VirtualTime = true
	cfg.InstallersDir = t.TempDir()
	if cfg.InstallerSize == 0 {
		cfg.InstallerSize = 192 << 10
	}
	f, hosts := startFleet(t, cfg)
	r := &stageRig{f: f, hosts: hosts, e: engine(f, labPassword), dir: cfg.InstallersDir,
		attempts: map[string][]int64{}, at: map[string]int64{}}
	r.e.Parallel = 8
	r.e.Transfer = r.transfer
	pb := playbooks.Default()
	in, err := remediate.LoadInstallers(r.dir, pb, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.in = in
	opts := remediate.Options{Stage: method, Warmup: "remote", InstallerDir: r.dir, Timing: remediate.TimingFrom(pb.Steps)}
	if method == remediate.StageShare {
		opts.Share = f.Share()
	}
	r.plan = remediate.NewPlan(r.e.Detect(context.Background(), hosts), opts, in, nil, "iisremedy test", r.e.Clock.Now(),
		filepath.Join(t.TempDir(), "hosts.txt"))
	if method == remediate.StagePull {
		r.pull, err = remediate.StartPullServer("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.pull.Close)
	}
	return r
}

// transfer hears Engine.Transfer: a call that does not move the transfer forward starts an
// attempt (from the host's partial file, or from 0), later calls add to it.
func (r *stageRig) transfer(host string, sent, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.attempts[host]
	if d := sent - r.at[host]; d > 0 && len(a) > 0 {
		a[len(a)-1] += d
	} else {
		r.attempts[host] = append(a, 0)
	}
	r.at[host] = sent
}

// sentTo is the installer bytes the engine sent to host so far.
func (r *stageRig) sentTo(host string) int64 {
	var n int64
	for _, a := range r.attemptsTo(host) {
		n += a
	}
	return n
}

// attemptsTo is the installer bytes sent to host by each attempt so far.
func (r *stageRig) attemptsTo(host string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.attempts[host])
}

// resetSent forgets the bytes counted so far.
func (r *stageRig) resetSent() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.attempts)
	clear(r.at)
}

// stage runs iisremedy stage's remediation of the plan.
func (r *stageRig) stage(t testing.TB) []remediate.HostResult {
	t.Helper()
	res, err := r.e.Remediate(context.Background(), &remediate.Run{ID: "s1", Plan: r.plan, Installers: r.in, Pull: r.pull, StageOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// installer is the plan's installer for host i.
func (r *stageRig) installer(t testing.TB, i int) *remediate.PlanInstaller {
	t.Helper()
	inst := r.plan.Hosts[i].Installer
	if inst == nil {
		t.Fatalf("%s: the plan has no installer: %s %s", r.plan.Hosts[i].Host, r.plan.Hosts[i].Action, r.plan.Hosts[i].Reason)
	}
	return inst
}

// workFiles lists the work folder of a lab host as the model holds it: size by name.
func workFiles(t *testing.T, h *win2003.Host) map[string]int64 {
	t.Helper()
	var out, errb strings.Builder
	if code := h.Exec(context.Background(), `for %F in ("C:\iisremedy\*") do @echo %~zF %~nxF`, nil, &out, &errb); code != 0 {
		t.Fatalf("listing the work folder: %d %s", code, errb.String())
	}
	files := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\r\n") {
		size, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			t.Fatalf("listing line %q", line)
		}
		files[strings.ToLower(name)] = n
	}
	return files
}

// writes returns the command lines that changed the host, from the n-th of its log on.
func writes(h *win2003.Host, from int) []string {
	var out []string
	for _, c := range h.Commands()[from:] {
		if c.Wrote {
			out = append(out, c.CommandLine)
		}
	}
	return out
}

var methods = []string{remediate.StagePush, remediate.StagePull, remediate.StageShare}

// TestStageArrivesProven: by each method the installer arrives whole under its content name,
// nothing of the transfer is left beside it, and the evidence names the method and the proof.
func TestStageArrivesProven(t *testing.T) {
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 1, Scenario: "affected"}, method)
			res := r.stage(t)
			inst := r.installer(t, 0)
			if res[0].Outcome != remediate.Staged {
				t.Fatalf("%s at %s: %q", res[0].Outcome, res[0].Step, res[0].Evidence)
			}
			files := workFiles(t, r.f.Hosts()[0].Model)
			exe := strings.ToLower(inst.SHA256 + ".exe")
			if files[exe] != inst.Size {
				t.Errorf("work folder %v, want %s of %d bytes", files, exe, inst.Size)
			}
			for name := range files {
				if strings.HasPrefix(name, strings.ToLower(inst.SHA256)) && name != exe {
					t.Errorf("left over on the host: %s", name)
				}
			}
			want := fmt.Sprintf("by %s as C:\\iisremedy\\%s.exe; proof: SHA-256 computed on the host with PowerShell", method, inst.SHA256)
			if ev := strings.Join(res[0].Evidence, " "); !strings.Contains(ev, want) {
				t.Errorf("evidence %q lacks %q", ev, want)
			}
			switch method {
			case remediate.StagePush:
				if got := r.sentTo(r.hosts[0].Entry); got != inst.Size {
					t.Errorf("pushed %d bytes, want %d", got, inst.Size)
				}
			case remediate.StagePull:
				if got := r.pull.Served(); got != inst.Size {
					t.Errorf("served %d bytes, want %d", got, inst.Size)
				}
			}
		})
	}
}

// TestStageAgainSendsNothing: staging the same plan again finds the proven file under its
// content name and sends nothing, writes nothing, and says so.
func TestStageAgainSendsNothing(t *testing.T) {
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 2, Scenario: "affected"}, method)
			for i, res := range r.stage(t) {
				if res.Outcome != remediate.Staged {
					t.Fatalf("%s, first stage: %s %q", r.hosts[i].Entry, res.Outcome, res.Evidence)
				}
			}
			r.resetSent()
			var served int64
			if r.pull != nil {
				served = r.pull.Served()
			}
			before := make([]int, len(r.hosts))
			for i, h := range r.f.Hosts() {
				before[i] = len(h.Model.Commands())
			}
			for i, res := range r.stage(t) {
				h := r.f.Hosts()[i]
				if res.Outcome != remediate.Staged || !strings.Contains(strings.Join(res.Evidence, " "), "already on the host, proven") {
					t.Errorf("%s, second stage: %s %q", h.Addr, res.Outcome, res.Evidence)
				}
				if n := r.sentTo(r.hosts[i].Entry); n != 0 {
					t.Errorf("%s: %d bytes sent again", h.Addr, n)
				}
				if w := writes(h.Model, before[i]); len(w) > 0 {
					t.Errorf("%s: the second stage changed the host: %q", h.Addr, w)
				}
			}
			if r.pull != nil && r.pull.Served() != served {
				t.Errorf("the pull server served %d bytes again", r.pull.Served()-served)
			}
		})
	}
}

// TestStageRefusesWrongHash: an installer whose bytes are not the ones the catalogue or the
// plan names never leaves this machine. A SHA256SUMS that disagrees with the file stops the
// loading; a file that changed after the plan (its new hash listed, so it loads) is refused by
// every host's stage step before any command writes to the host.
func TestStageRefusesWrongHash(t *testing.T) {
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 2, Scenario: "affected", InstallerSize: 64 << 10}, method)
			inst := r.installer(t, 0)
			path := filepath.Join(r.dir, inst.File)
			other := []byte("MZ not the installer the plan was made with")
			if err := os.WriteFile(path, other, 0o644); err != nil {
				t.Fatal(err)
			}
			pb := playbooks.Default()
			if _, err := remediate.LoadInstallers(r.dir, pb, nil); err == nil || !strings.Contains(err.Error(), inst.File) {
				t.Errorf("SHA256SUMS disagreeing with the file: %v, want a refusal naming %s", err, inst.File)
			}
			sum := sha256.Sum256(other)
			if err := os.WriteFile(filepath.Join(r.dir, remediate.SumsFile), fmt.Appendf(nil, "%x  %s\n", sum, inst.File), 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := remediate.LoadInstallers(r.dir, pb, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.in = in
			before := make([]int, len(r.hosts))
			for i, h := range r.f.Hosts() {
				before[i] = len(h.Model.Commands())
			}
			for i, res := range r.stage(t) {
				h := r.f.Hosts()[i]
				if res.Outcome != remediate.RemediationFailed || res.Step != remediate.StepStage ||
					!strings.Contains(strings.Join(res.Evidence, " "), inst.SHA256) {
					t.Errorf("%s: %s at %q %q, want a stage failure naming sha256 %s", h.Addr, res.Outcome, res.Step, res.Evidence, inst.SHA256)
				}
				if w := writes(h.Model, before[i]); len(w) > 0 {
					t.Errorf("%s: changed by a refused stage: %q", h.Addr, w)
				}
				if n := r.sentTo(r.hosts[i].Entry); n != 0 {
					t.Errorf("%s: %d bytes sent", h.Addr, n)
				}
			}
			if r.pull != nil && r.pull.Served() != 0 {
				t.Errorf("the pull server served %d bytes", r.pull.Served())
			}
		})
	}
}

// TestStageDiskFull: a host whose system drive filled up after the plan fails its stage step
// before the transfer, with its free space and the need in the evidence; one that was full
// when the plan was made is blocked by the plan, saying the same.
func TestStageDiskFull(t *testing.T) {
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 1, Scenario: "affected"}, method)
			h := r.f.Hosts()[0]
			h.Model.SetFreeSpace(700 << 20)
			before := len(h.Model.Commands())
			res := r.stage(t)[0]
			ev := strings.Join(res.Evidence, " ")
			if res.Outcome != remediate.RemediationFailed || res.Step != remediate.StepStage || !strings.Contains(ev, "C: has 700 MB free") {
				t.Errorf("%s at %q %q, want a stage failure saying C: has 700 MB free", res.Outcome, res.Step, ev)
			}
			for _, c := range writes(h.Model, before) {
				if !strings.HasPrefix(c, "if not exist") {
					t.Errorf("written to a full disk: %s", c)
				}
			}
			if n := r.sentTo(r.hosts[0].Entry); n != 0 {
				t.Errorf("%d bytes sent to a full disk", n)
			}

			// The same host planned now: blocked, nothing staged.
			r.plan = remediate.NewPlan(r.e.Detect(context.Background(), r.hosts), r.plan.Options, r.in, nil, "iisremedy test", r.e.Clock.Now(),
				filepath.Join(t.TempDir(), "hosts.txt"))
			res = r.stage(t)[0]
			if ev := strings.Join(res.Evidence, " "); res.Outcome != remediate.RemediationFailed || !strings.Contains(ev, "has 700 MB") {
				t.Errorf("planned on a full disk: %s %q, want blocked with has 700 MB", res.Outcome, ev)
			}
		})
	}
}

// cutProxy forwards TCP connections to a server; the cutConn-th connection is cut once cut
// bytes of the reply have gone through, as a link that fails in the middle of a download. It
// keeps the head of each request and counts the bytes of each reply.
type cutProxy struct {
	ln      net.Listener
	to      string
	cutConn int
	cut     int64

	mu    sync.Mutex
	conns []*proxied
	bytes atomic.Int64 // bytes forwarded both ways
}

// proxied is one connection through a cutProxy.
type proxied struct {
	head  string
	reply atomic.Int64
}

func startCutProxy(tb testing.TB, to string, cutConn int, cut int64) *cutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &cutProxy{ln: ln, to: to, cutConn: cutConn, cut: cut}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pc := &proxied{}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			cut := len(p.conns) == p.cutConn
			p.mu.Unlock()
			go p.serve(c, pc, cut)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn, pc *proxied, cut bool) {
	defer c.Close()
	s, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		head := make([]byte, 1024)
		n, _ := c.Read(head)
		p.mu.Lock()
		pc.head = string(head[:n])
		p.mu.Unlock()
		_, _ = io.Copy(counter{s, &p.bytes, nil}, io.MultiReader(bytes.NewReader(head[:n]), c))
	}()
	var r io.Reader = s
	if cut {
		r = io.LimitReader(s, p.cut)
	}
	// Counted as they go: the host may be done before the server closes the connection.
	_, _ = io.Copy(counter{c, &p.bytes, &pc.reply}, r)
}

// counter is a writer that counts what it writes in a and b (nil = not there).
type counter struct {
	w    io.Writer
	a, b *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.a.Add(int64(n))
	if c.b != nil {
		c.b.Add(int64(n))
	}
	return n, err
}

// seen returns, for each connection so far, its request's Range header ("" = none, "?" = no
// request) and the bytes of its reply.
func (p *cutProxy) seen() (ranges []string, replies []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		rg := "?"
		if req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(pc.head))); err == nil {
			rg = req.Header.Get("Range")
		}
		ranges = append(ranges, rg)
		replies = append(replies, pc.reply.Load())
	}
	return ranges, replies
}

// TestStageCutResumes: a transfer cut in the middle goes on, in the same run, from what the
// host holds, and sends less than the whole file again. Push: the WinRM connection drops
// during the upload; the engine reconnects and resumes from the host's partial file (whole
// lines of the PowerShell decoder, or of findstr's text). Pull: the host's download is cut;
// the engine runs it again and the host asks only for the rest (from its partial file's
// length, or the chunk the VBScript lost).
func TestStageCutResumes(t *testing.T) {
	const size = 256 << 10
	for _, scenario := range []string{"affected", "no-powershell"} {
		t.Run("push/"+scenario, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 1, Scenario: scenario, InstallerSize: size}, remediate.StagePush)
			h := r.f.Hosts()[0]
			srv := h.Server
			free := h.Model.FreeSpace()
			var dropped atomic.Bool
			// The first request after the second Send of stdin, once the host has written some
			// of it (it reads stdin at its own pace), loses its connection: some lines are on
			// the host, the rest is not.
			srv.DropConnection = func(int64, *http.Request) bool {
				return srv.Stats().Sends >= 2 && h.Model.FreeSpace() < free && dropped.CompareAndSwap(false, true)
			}
			res := r.stage(t)[0]
			if res.Outcome != remediate.Staged {
				t.Fatalf("%s at %s: %q", res.Outcome, res.Step, res.Evidence)
			}
			if srv.Stats().Dropped != 1 {
				t.Fatalf("%d connections dropped, want 1", srv.Stats().Dropped)
			}
			a := r.attemptsTo(r.hosts[0].Entry)
			resumed := resumedAt(res.Evidence)
			if len(a) != 2 || resumed <= 0 || a[1] != size-resumed {
				t.Errorf("attempts sent %v, resumed at %d: want a second attempt of the %d bytes from there", a, resumed, size-resumed)
			}
			checkStaged(t, r, 0, size)
		})
	}
	for _, tc := range []struct {
		scenario string
		size     int64
		cutConn  int // the connection cut: PowerShell downloads on one, the VBScript one a chunk
		cut      int64
		resumed  int64 // where the download resumes (-1: before the cut, whose reply has headers)
	}{
		{"affected", size, 1, 100 << 10, -1},
		{"no-powershell", 9 << 20, 2, 512 << 10, 8 << 20}, // the first 8 MiB chunk is kept whole
	} {
		t.Run("pull/"+tc.scenario, func(t *testing.T) {
			r := newStageRig(t, lab.Config{Hosts: 1, Scenario: tc.scenario, InstallerSize: tc.size}, remediate.StagePull)
			proxy := startCutProxy(t, r.pull.URLHost, tc.cutConn, tc.cut)
			r.pull.URLHost = proxy.ln.Addr().String()
			res := r.stage(t)[0]
			if res.Outcome != remediate.Staged {
				t.Fatalf("%s at %s: %q", res.Outcome, res.Step, res.Evidence)
			}
			resumed := resumedAt(res.Evidence)
			if tc.resumed < 0 && (resumed <= 0 || resumed >= tc.cut) || tc.resumed >= 0 && resumed != tc.resumed {
				t.Fatalf("resumed at %d (evidence %q), want after the cut at %d of the reply", resumed, res.Evidence, tc.cut)
			}
			// After the cut, one request asks for the rest, and its reply is the rest and its
			// HTTP header.
			ranges, replies := proxy.seen()
			if len(ranges) != tc.cutConn+1 || !strings.HasPrefix(ranges[tc.cutConn], fmt.Sprintf("bytes=%d-", resumed)) {
				t.Fatalf("the host's requests asked for %q, want one more after the cut, from byte %d", ranges, resumed)
			}
			if again := replies[tc.cutConn]; again < tc.size-resumed || again > tc.size-resumed+1024 {
				t.Errorf("%d bytes sent after the cut, want the %d bytes from %d and a header", again, tc.size-resumed, resumed)
			}
			if at := r.attemptsTo(r.hosts[0].Entry); len(at) < 2 {
				t.Errorf("transfer progress %v: the resumed download was not reported", at)
			}
			checkStaged(t, r, 0, tc.size)
		})
	}
	// pull, its reply lost: the connection drops once the host holds the whole file, before
	// the engine hears the download end. The host is not asked to download again (the pull
	// server would refuse a range past the end); the file is proven.
	t.Run("pull/reply-lost", func(t *testing.T) {
		r := newStageRig(t, lab.Config{Hosts: 1, Scenario: "affected", InstallerSize: size}, remediate.StagePull)
		h := r.f.Hosts()[0]
		free := h.Model.FreeSpace()
		var dropped atomic.Bool
		// The first request about the running download (the Receive that would bring its end)
		// waits for the host to hold the whole file, then loses its connection.
		h.Server.DropConnection = func(int64, *http.Request) bool {
			cmds := h.Model.Commands()
			if dropped.Load() || !strings.Contains(cmds[len(cmds)-1].CommandLine, "[Net.WebRequest]::Create") {
				return false
			}
			// The host's download goes on in its own goroutine; the deadline only keeps a
			// broken test from hanging.
			for deadline := time.Now().Add(2 * time.Minute); h.Model.FreeSpace() > free-size && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			return dropped.CompareAndSwap(false, true)
		}
		res := r.stage(t)[0]
		if res.Outcome != remediate.Staged || !dropped.Load() {
			t.Fatalf("%s at %s (dropped %v): %q", res.Outcome, res.Step, dropped.Load(), res.Evidence)
		}
		if r.pull.Served() != size {
			t.Errorf("served %d bytes, want the file once (%d)", r.pull.Served(), size)
		}
		checkStaged(t, r, 0, size)
	})
	// share: the copy runs in a SYSTEM task, outside the WinRM shell, so a dropped connection
	// does not cut it: the engine reconnects, the copy runs once and is proven.
	t.Run("share", func(t *testing.T) {
		r := newStageRig(t, lab.Config{Hosts: 1, Scenario: "affected", InstallerSize: size}, remediate.StageShare)
		h := r.f.Hosts()[0]
		var dropped atomic.Int64
		h.Server.DropConnection = func(int64, *http.Request) bool {
			return dropped.Load() < 2 && taskRan(h.Model, "iisremedy-share") && dropped.Add(1) > 0
		}
		res := r.stage(t)[0]
		if res.Outcome != remediate.Staged || dropped.Load() != 2 {
			t.Fatalf("%s at %s after %d drops: %q", res.Outcome, res.Step, dropped.Load(), res.Evidence)
		}
		runs := 0
		for _, c := range h.Model.Commands() {
			if strings.EqualFold(c.Task, "iisremedy-share") {
				runs++
			}
		}
		if runs != 1 {
			t.Errorf("the copy task ran %d times, want once", runs)
		}
		checkStaged(t, r, 0, size)
	})
}

// taskRan reports whether a task's program started on the host.
func taskRan(h *win2003.Host, task string) bool {
	for _, c := range h.Commands() {
		if strings.EqualFold(c.Task, task) {
			return true
		}
	}
	return false
}

// checkStaged checks that host i holds the installer whole under its content name and nothing
// else of the transfer.
func checkStaged(t *testing.T, r *stageRig, i int, size int64) {
	t.Helper()
	sha := strings.ToLower(r.installer(t, i).SHA256)
	files := workFiles(t, r.f.Hosts()[i].Model)
	if files[sha+".exe"] != size {
		t.Errorf("work folder %v, want %s.exe of %d bytes", files, sha, size)
	}
	for name := range files {
		if strings.HasPrefix(name, sha) && name != sha+".exe" {
			t.Errorf("left over on the host: %s", name)
		}
	}
}

// resumedAt reads the byte a transfer resumed at from the evidence (0 = it did not resume).
func resumedAt(evidence []string) int64 {
	for _, e := range evidence {
		var at, of int64
		if _, err := fmt.Sscanf(e, "The transfer resumed at byte %d of %d.", &at, &of); err == nil {
			return at
		}
	}
	return 0
}

// pullURL matches a pull server's URL in a host's command line.
var pullURL = regexp.MustCompile(`http://[0-9.:]+/([0-9a-f]{32})/[^'"\s]+`)

// TestStagePullTokens: each host downloads under a token of its own, which stays out of the
// transcript and is refused once its host has its file; a live token opens its one file only.
func TestStagePullTokens(t *testing.T) {
	for _, scenario := range []string{"affected", "no-powershell"} {
		t.Run(scenario, func(t *testing.T) { testPullTokens(t, scenario) })
	}
}

func testPullTokens(t *testing.T, scenario string) {
	r := newStageRig(t, lab.Config{Hosts: 2, Scenario: scenario}, remediate.StagePull)
	var mu sync.Mutex
	var transcript []string
	r.e.Commands = func(c remediate.CommandRecord) {
		mu.Lock()
		defer mu.Unlock()
		transcript = append(transcript, c.CommandLine+"\n"+string(c.Stdout)+string(c.Stderr))
	}
	for i, res := range r.stage(t) {
		if res.Outcome != remediate.Staged {
			t.Fatalf("%s: %s %q", r.hosts[i].Entry, res.Outcome, res.Evidence)
		}
	}
	tokens := map[string]string{} // token -> URL
	for _, h := range r.f.Hosts() {
		n := 0
		for _, c := range h.Model.Commands() {
			if m := pullURL.FindStringSubmatch(c.CommandLine); m != nil {
				tokens[m[1]] = m[0]
				n++
			}
		}
		if n == 0 {
			t.Fatalf("%s (%s) downloaded from no URL", h.Addr, h.Scenario)
		}
	}
	if len(tokens) < len(r.hosts) {
		t.Errorf("%d tokens for %d hosts", len(tokens), len(r.hosts))
	}
	all := strings.Join(transcript, "\n")
	if !strings.Contains(all, "[token]") {
		t.Error("the transcript does not show where the token was")
	}
	for token, url := range tokens {
		if strings.Contains(all, token) {
			t.Errorf("token %s in the transcript", token)
		}
		if code := httpGet(t, url); code != http.StatusForbidden {
			t.Errorf("%s reused after staging: %d, want 403", url, code)
		}
	}

	inst := r.installer(t, 0)
	url, revoke := r.pull.Grant("web01", inst.File, filepath.Join(r.dir, inst.File), nil)
	defer revoke()
	base := url[:strings.LastIndex(url, "/")+1]
	for _, u := range []string{base + remediate.SumsFile, base + "..%2f" + remediate.SumsFile, base + inst.File + "%00.txt"} {
		if code := httpGet(t, u); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", u, code)
		}
	}
	if code := httpGet(t, url); code != http.StatusOK {
		t.Errorf("the live grant: %d", code)
	}
}

// httpGet fetches url and returns the status.
func httpGet(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestStageWithoutPowerShell: a host without PowerShell is staged by push (findstr, then
// certutil -decode in a SYSTEM task) and by pull (the VBScript), and the proof is the best its
// certutil allows: SHA-1 by -hashfile, else the size by wmic datafile (docs/facts.md §5.10),
// which the evidence says.
func TestStageWithoutPowerShell(t *testing.T) {
	for _, tc := range []struct {
		hashfile string // win2003.Quirks.CertutilHashfile
		proof    string // in the evidence
		command  string // on the host's log
	}{
		{"sha1", "proof: SHA-1 computed on the host with certutil -hashfile (its only algorithm on Server 2003)", "certutil -hashfile"},
		{"none", `proof: size only, from wmic datafile (no PowerShell, no certutil -hashfile; version resource "5.2.3790.3959"): a weaker check`, "wmic datafile"},
	} {
		for _, method := range methods {
			t.Run(tc.hashfile+"/"+method, func(t *testing.T) {
				q := win2003.DefaultQuirks()
				q.CertutilHashfile = tc.hashfile
				r := newStageRig(t, lab.Config{Hosts: 1, Scenario: "no-powershell", Quirks: &q}, method)
				res := r.stage(t)[0]
				if res.Outcome != remediate.Staged {
					t.Fatalf("%s at %s: %q", res.Outcome, res.Step, res.Evidence)
				}
				inst := r.installer(t, 0)
				want := fmt.Sprintf("Staged %s by %s as C:\\iisremedy\\%s.exe; %s.", inst.File, method, inst.SHA256, tc.proof)
				if ev := strings.Join(res.Evidence, " "); !strings.Contains(ev, want) {
					t.Errorf("evidence %q\nlacks %q", ev, want)
				}
				proved := false
				for _, c := range r.f.Hosts()[0].Model.Commands() {
					proved = proved || strings.HasPrefix(c.CommandLine, tc.command) && strings.Contains(c.CommandLine, inst.SHA256+".part")
					if strings.HasPrefix(strings.ToLower(c.CommandLine), "powershell") {
						t.Errorf("PowerShell used on a host without it: %s", c.CommandLine)
					}
				}
				if !proved {
					t.Errorf("no %s of the staged file on the host", tc.command)
				}
				checkStaged(t, r, 0, inst.Size)
			})
		}
	}
}
