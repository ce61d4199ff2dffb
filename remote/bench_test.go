package remote

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/hostile"
	"github.com/iisremedy/iisremedy/lab/wsman"
	"github.com/masterzen/winrm"
)

// countingListener counts the bytes the server reads from and writes to its connections.
type countingListener struct {
	net.Listener
	in, out *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, in: l.in, out: l.out}, nil
}

type countedConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

type benchServer struct {
	srv     *wsman.Server
	host    string
	port    int
	in, out atomic.Int64
}

func startBench(b *testing.B, srv *wsman.Server) *benchServer {
	bs := &benchServer{srv: srv}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = countingListener{Listener: ts.Listener, in: &bs.in, out: &bs.out}
	srv.Configure(ts.Config)
	ts.Start()
	b.Cleanup(func() { ts.CloseClientConnections(); ts.Close() })
	bs.host, bs.port = hostPort(b, ts.Listener.Addr())
	return bs
}

func ops(st wsman.Stats) int64 {
	return st.Creates + st.Commands + st.Sends + st.Receives + st.Signals + st.Deletes
}

// report divides the server-side deltas since before by b.N commands.
func report(b *testing.B, bs *benchServer, before wsman.Stats) {
	after := bs.srv.Stats()
	req := float64(after.Requests - before.Requests)
	op := float64(ops(after) - ops(before))
	b.ReportMetric(req/float64(b.N), "http-req/cmd")
	b.ReportMetric(op/float64(b.N), "wsman-ops/cmd")
	if op > 0 {
		b.ReportMetric(req/op, "http-req/op")
	}
}

// BenchmarkRequestsPerCommand compares HTTP requests per command and per WS-Man operation:
// our NTLM transport (one handshake per connection) vs masterzen's NewEncryption("ntlm")
// (a handshake per message), both on one shell; Basic for reference.
func BenchmarkRequestsPerCommand(b *testing.B) {
	ctx := context.Background()
	b.Run("remote-ntlm-sealed", func(b *testing.B) {
		bs := startBench(b, ntlmServer())
		s := dial(b, ntlmTarget(bs.host, bs.port))
		before := bs.srv.Stats()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Run(ctx, "echo hi"); err != nil {
				b.Fatal(err)
			}
		}
		report(b, bs, before)
	})
	b.Run("remote-basic", func(b *testing.B) {
		bs := startBench(b, basicServer())
		s := dial(b, basicTarget(bs.host, bs.port))
		before := bs.srv.Stats()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Run(ctx, "echo hi"); err != nil {
				b.Fatal(err)
			}
		}
		report(b, bs, before)
	})
	b.Run("masterzen-encryption-ntlm", func(b *testing.B) {
		bs := startBench(b, ntlmServer())
		params := winrm.NewParameters("PT60S", "en-US", 153600)
		params.TransportDecorator = func() winrm.Transporter {
			e, err := winrm.NewEncryption("ntlm")
			if err != nil {
				b.Fatal(err)
			}
			return e
		}
		c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(bs.host, bs.port, false, false, nil, nil, nil, 0), "Administrator", testPassword, params)
		if err != nil {
			b.Fatal(err)
		}
		sh, err := c.CreateShell()
		if err != nil {
			b.Fatal(err)
		}
		defer sh.Close()
		before := bs.srv.Stats()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cmd, err := sh.ExecuteWithContext(ctx, "echo hi")
			if err != nil {
				b.Fatal(err)
			}
			var out bytes.Buffer
			go func() { _, _ = out.ReadFrom(cmd.Stderr) }()
			_, _ = out.ReadFrom(cmd.Stdout)
			cmd.Wait()
			cmd.Close()
		}
		b.StopTimer()
		report(b, bs, before)
	})
}

// BenchmarkStdinWireBytes streams 1 MiB through findstr "^" and reports the bytes the client
// put on the wire (request side, as the server read them) per stdin byte.
func BenchmarkStdinWireBytes(b *testing.B) {
	in := stdinData(1 << 20)
	for _, tc := range []struct {
		name string
		srv  func() *wsman.Server
		tg   func(string, int) Target
	}{
		{"remote-ntlm-sealed", ntlmServer, ntlmTarget},
		{"remote-basic", basicServer, basicTarget},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bs := startBench(b, tc.srv())
			s := dial(b, tc.tg(bs.host, bs.port))
			b.SetBytes(int64(len(in)))
			inBefore, before := bs.in.Load(), bs.srv.Stats()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := s.RunInput(context.Background(), `findstr "^"`, bytes.NewReader(in))
				if err != nil || len(r.Stdout) != len(in) {
					b.Fatalf("%d bytes back, %v", len(r.Stdout), err)
				}
			}
			b.StopTimer()
			total := float64(b.N) * float64(len(in))
			b.ReportMetric(float64(bs.in.Load()-inBefore)/total, "wire-bytes/stdin-byte")
			after := bs.srv.Stats()
			b.ReportMetric(float64(after.Sends-before.Sends)/float64(b.N), "sends/MiB")
			b.ReportMetric(float64(after.TooLarge-before.TooLarge), "http-413")
		})
	}
	// masterzen's Encryption cannot stream stdin at all: RunWithContextWithInput runs Send and
	// Receive concurrently and its Post swaps one shared ntlmClient per message (a data race);
	// the Receive then parses an empty body and goxpath dereferences nil (the process dies).
}

// heapPeak samples the live heap while f runs and returns its peak above the heap before f.
func heapPeak(f func()) uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	runtime.GC()
	base := read()
	peak := base
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return max(peak, read()) - base
}

// BenchmarkHostileMemory meets the lab/hostile behaviours that send much, over NTLM (sealed),
// and reports per hostile exchange (a Dial, or a Dial and a Run for the Receive ones) the peak
// live heap and, with -benchmem, the bytes allocated. The hostile server runs in the same
// process: its own buffers (a 32 KB write chunk, or one reply and its sealed copy) count too.
func BenchmarkHostileMemory(b *testing.B) {
	for _, hc := range hostileCases {
		if hc.class == ClassCanceled || hc.behaviour == hostile.TrickleBody {
			continue // they end by ctx or by the deadline, not by what they send
		}
		b.Run(hc.behaviour, func(b *testing.B) {
			srv := hostile.Start(b, hc.behaviour, AuthNegotiate)
			tg := hostileTarget(srv, AuthNegotiate)
			ctx := context.Background()
			var peak uint64
			b.ReportAllocs()
			for b.Loop() {
				peak = max(peak, heapPeak(func() {
					s, err := Dial(ctx, tg)
					if err == nil {
						_, err = s.Run(ctx, "echo hi")
						_ = s.Close(ctx)
					}
					if !errors.Is(err, hc.sentinel) && hc.sentinel != nil {
						b.Fatalf("%v", err)
					}
				}))
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
		})
	}
}
