package remediate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
)

// The staging benchmarks: what a transfer costs on the wire and in time, against a plain
// HTTP GET of the same file on the same loopback; the runner's memory while it stages a big
// file; the total rate of many hosts under --bwlimit.

// benchStage is a stageRig whose engine also measures each host's stage step: the real time
// it takes and the bytes on the wire meanwhile (the WinRM connections, and the downloads of a
// pull, which go through a counting proxy).
type benchStage struct {
	*stageRig
	proxy *cutProxy // stage=pull

	mu       sync.Mutex
	sessions []*remote.Session
	started  map[string]time.Time
	wireAt   map[string]int64
	took     time.Duration // summed over hosts
	wire     int64
}

func newBenchStage(b *testing.B, cfg lab.Config, method string) *benchStage {
	b.Helper()
	bs := &benchStage{stageRig: newStageRig(b, cfg, method), started: map[string]time.Time{}, wireAt: map[string]int64{}}
	dial := bs.e.Dial
	bs.e.Dial = func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
		s, err := dial(ctx, h)
		if rs, ok := s.(*remote.Session); ok {
			bs.mu.Lock()
			bs.sessions = append(bs.sessions, rs)
			bs.mu.Unlock()
		}
		return s, err
	}
	bs.e.Events = bs.event
	bs.e.Transfer = nil // progress callbacks are not what is measured
	if bs.pull != nil {
		bs.proxy = startCutProxy(b, bs.pull.URLHost, 0, 0)
		bs.pull.URLHost = bs.proxy.ln.Addr().String()
	}
	return bs
}

// wireNow is the bytes on the wire so far, both ways.
func (bs *benchStage) wireNow() int64 {
	var n int64
	for _, s := range bs.sessions {
		st := s.Stats()
		n += st.BytesOut + st.BytesIn
	}
	if bs.proxy != nil {
		n += bs.proxy.bytes.Load()
	}
	return n
}

// event times each host's stage step; the engine serialises the calls.
func (bs *benchStage) event(ev remediate.HostStep) {
	if ev.Step != remediate.StepStage {
		return
	}
	now := time.Now()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	switch ev.State {
	case remediate.StepStarted:
		if _, ok := bs.started[ev.Host]; ok {
			return // a resumed transfer
		}
		bs.started[ev.Host] = now
		bs.wireAt[ev.Host] = bs.wireNow()
	case remediate.StepDone:
		bs.took += now.Sub(bs.started[ev.Host])
		bs.wire += bs.wireNow() - bs.wireAt[ev.Host]
	}
}

// again removes the staged installer from every host, so that the next stage sends it whole.
func (bs *benchStage) again(b *testing.B) {
	b.Helper()
	bs.mu.Lock()
	clear(bs.started)
	bs.mu.Unlock()
	for i, h := range bs.f.Hosts() {
		var out strings.Builder
		exe := `C:\iisremedy\` + bs.installer(b, i).SHA256 + ".exe"
		if code := h.Model.Exec(context.Background(), `del /q "`+exe+`"`, nil, &out, &out); code != 0 {
			b.Fatalf("del %s: %d %s", exe, code, out.String())
		}
	}
}

// stageAll stages every host once, failing the benchmark on a host that is not staged.
func (bs *benchStage) stageAll(b *testing.B) {
	b.Helper()
	for i, res := range bs.stage(b) {
		if res.Outcome != remediate.Staged {
			b.Fatalf("%s: %s at %s: %q", bs.hosts[i].Entry, res.Outcome, res.Step, res.Evidence)
		}
	}
}

// plainGet fetches url to its end with a plain client and returns the time it took.
func plainGet(b *testing.B, url string) time.Duration {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return time.Since(start)
}

// hostGet runs the engine's last download command on host h again, from url instead of the
// pull server, and removes what it wrote: the host's own cost of a download of the file.
func hostGet(b *testing.B, h *lab.Host, url string) time.Duration {
	b.Helper()
	var cmdline string
	for _, c := range h.Model.Commands() {
		if m := pullURL.FindString(c.CommandLine); m != "" {
			cmdline = strings.Replace(c.CommandLine, m, url, 1)
		}
	}
	if cmdline == "" {
		b.Fatal("no download command in the host's log")
	}
	part := regexp.MustCompile(`[A-Za-z]:\\[^']+\.part`).FindString(cmdline)
	var out strings.Builder
	start := time.Now()
	if code := h.Model.Exec(context.Background(), cmdline, nil, &out, &out); code != 0 {
		b.Fatalf("%s: %d %s", cmdline, code, out.String())
	}
	took := time.Since(start)
	if code := h.Model.Exec(context.Background(), `del /q "`+part+`"`, nil, &out, &out); code != 0 {
		b.Fatalf("del %s: %d %s", part, code, out.String())
	}
	return took
}

// BenchmarkStageTransfer stages a 16 MiB installer to one host again and again, by push
// (NTLM-sealed WinRM, envelopes of 150 and 500 KB) and by pull, and reports the installer
// bytes per second of the stage step, the installer bytes per byte on the wire (WinRM both
// ways, and the pull's HTTP), and the rate as a share of a plain HTTP GET of the same file on
// the same loopback, measured between the iterations. For pull it also reports the pull
// server's own rate to a plain client as a share of the plain GET (server-x-plain-get), and
// the stage rate as a share of the lab host's own download of the file from a plain server
// (x-host-get): the lab host hashes and checks every byte it receives.
//
//	go test ./remediate -run '^$' -bench StageTransfer -benchtime 5x
func BenchmarkStageTransfer(b *testing.B) {
	const size = 16 << 20
	for _, tc := range []struct {
		name     string
		method   string
		envelope int
	}{
		{"push-150KB", remediate.StagePush, 150},
		{"push-500KB", remediate.StagePush, 500},
		{"pull", remediate.StagePull, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bs := newBenchStage(b, lab.Config{Hosts: 1, Scenario: "affected", InstallerSize: size, MaxEnvelopeKB: tc.envelope}, tc.method)
			if tc.envelope > 0 {
				// The client sizes its Send envelopes to the host's MaxEnvelopeSizekb, which the
				// inventory does not carry: the engine assumes WinRM 2.0's 150 (docs/facts.md
				// §6.2). Here it is told the lab's.
				dial := bs.e.Dial
				bs.e.Dial = func(ctx context.Context, h remediate.Host) (remediate.Session, error) {
					h.Target.MaxEnvelopeSizeKB = tc.envelope
					return dial(ctx, h)
				}
			}
			inst := bs.installer(b, 0)
			path := filepath.Join(bs.dir, inst.File)
			plainSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) }))
			defer plainSrv.Close()
			var plain, server, host time.Duration
			n := 0
			for b.Loop() {
				bs.again(b)
				bs.stageAll(b)
				n++
				b.StopTimer()
				plain += plainGet(b, plainSrv.URL+"/"+inst.File)
				if bs.pull != nil {
					url, revoke := bs.pull.Grant("bench", inst.File, path, nil)
					server += plainGet(b, url)
					revoke()
					host += hostGet(b, bs.f.Hosts()[0], plainSrv.URL+"/"+inst.File)
				}
				b.StartTimer()
			}
			payload := float64(n) * size
			rate := payload / bs.took.Seconds()
			b.ReportMetric(rate/(1<<20), "payload-MB/s")
			b.ReportMetric(payload/float64(bs.wire), "payload/wire")
			b.ReportMetric(rate/(payload/plain.Seconds()), "x-plain-get")
			b.ReportMetric(payload/plain.Seconds()/(1<<20), "plain-get-MB/s")
			if bs.pull != nil {
				b.ReportMetric(plain.Seconds()/server.Seconds(), "server-x-plain-get")
				b.ReportMetric(rate/(payload/host.Seconds()), "x-host-get")
			}
		})
	}
}

// BenchmarkStageMemory stages a 16 MiB and a 370 MiB installer by push and by pull and reports
// the peak of the heap in use meanwhile (sampled every 5 ms; the lab's hosts run in the same
// process and count too): it must not grow with the installer. A 370 MiB push takes about a
// minute (the lab's XML parsing of each Send bounds it); -short leaves the 370 MiB runs out.
//
//	go test ./remediate -run '^$' -bench StageMemory -benchtime 1x
func BenchmarkStageMemory(b *testing.B) {
	for _, method := range []string{remediate.StagePush, remediate.StagePull} {
		for _, size := range []int64{16 << 20, 370 << 20} {
			b.Run(fmt.Sprintf("%s-%dMiB", method, size>>20), func(b *testing.B) {
				if testing.Short() && size > 16<<20 {
					b.Skip("-short: the big installer takes long to stage in the lab")
				}
				bs := newBenchStage(b, lab.Config{Hosts: 1, Scenario: "affected", InstallerSize: size}, method)
				var peak float64
				n := 0
				for b.Loop() {
					bs.again(b)
					runtime.GC()
					stop := heapPeak()
					bs.stageAll(b)
					peak = max(peak, stop())
					n++
				}
				b.ReportMetric(peak, "peak-heap-MB")
				b.ReportMetric(float64(n)*float64(size)/bs.took.Seconds()/(1<<20), "payload-MB/s")
				if peak > 64 {
					b.Errorf("peak heap %.0f MB staging %d MiB, want at most 64 MB", peak, size>>20)
				}
			})
		}
	}
}

// BenchmarkStageRateLimit stages a 128 KiB installer to 50 hosts at once under a 2 MiB/s
// --bwlimit, by push and by pull, and reports the total installer rate while bytes flow (from
// the first byte any host is sent to the last, as Engine.Transfer hears them) and its ratio to
// the limit. The limit is real time: each iteration takes about 3 seconds.
//
//	go test ./remediate -run '^$' -bench StageRateLimit -benchtime 2x
func BenchmarkStageRateLimit(b *testing.B) {
	const (
		hosts = 50
		size  = 128 << 10
		limit = 2 << 20
	)
	for _, method := range []string{remediate.StagePush, remediate.StagePull} {
		b.Run(method, func(b *testing.B) {
			bs := newBenchStage(b, lab.Config{Hosts: hosts, Scenario: "affected", InstallerSize: size}, method)
			bs.e.Parallel = hosts
			bs.e.StageLimit = remediate.NewRateLimit(limit)
			if bs.pull != nil {
				// The pull server paces by the same limit, as iisremedy passes it.
				srv, err := remediate.StartPullServer("127.0.0.1:0", bs.e.StageLimit)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(srv.Close)
				bs.pull = srv
			}
			var mu sync.Mutex
			var first, last time.Time
			at := map[string]int64{}
			var moved int64
			bs.e.Transfer = func(host string, sent, _ int64) {
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if d := sent - at[host]; d > 0 {
					if first.IsZero() {
						first = now
					} else {
						moved += d // the first bytes go at once; the limit paces the rest
					}
					last = now
				}
				at[host] = sent
			}
			var flowing time.Duration
			var bytes int64
			for b.Loop() {
				bs.again(b)
				mu.Lock()
				first, moved = time.Time{}, 0
				clear(at)
				mu.Unlock()
				bs.stageAll(b)
				mu.Lock()
				flowing += last.Sub(first)
				bytes += moved
				mu.Unlock()
			}
			rate := float64(bytes) / flowing.Seconds()
			b.ReportMetric(rate/(1<<20), "total-MB/s")
			b.ReportMetric(rate/limit, "x-limit")
			if rate > 1.1*limit {
				b.Errorf("%.2f MiB/s to %d hosts under a %d MiB/s limit", rate/(1<<20), hosts, limit>>20)
			}
		})
	}
}
