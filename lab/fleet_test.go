package lab_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/remote"
)

func dial(t *testing.T, h *lab.Host, password string) (*remote.Session, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(h.Addr)
	p, _ := strconv.Atoi(port)
	return remote.Dial(context.Background(), remote.Target{Host: host, Port: p, User: "Administrator", Password: password})
}

func TestFleetAddressesInventoryManifest(t *testing.T) {
	f, err := lab.Start(context.Background(), lab.Config{Hosts: 300, Scenario: "mix", Seed: 4, Port: -1, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var inv strings.Builder
	if err := f.WriteInventory(&inv); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(inv.String()), "\n")
	m := f.Manifest()
	if len(lines) != 300 || len(m.Hosts) != 300 {
		t.Fatalf("%d inventory lines, %d manifest hosts, want 300", len(lines), len(m.Hosts))
	}
	seen := map[string]bool{}
	scenarios := map[string]bool{}
	for i, h := range m.Hosts {
		if h.Host != lines[i] {
			t.Errorf("manifest host %d is %q, inventory line %q", i, h.Host, lines[i])
		}
		ip, _, _ := net.SplitHostPort(h.Host)
		if seen[ip] || strings.HasSuffix(ip, ".0") || strings.HasSuffix(ip, ".255") {
			t.Errorf("address %s repeated or not a host address", ip)
		}
		seen[ip] = true
		scenarios[h.Scenario] = true
		if v, ok := win2003.ScenarioVerdict(h.Scenario); !ok || v != h.Verdict {
			t.Errorf("%s: scenario %s with verdict %s", h.Host, h.Scenario, h.Verdict)
		}
	}
	if !seen["127.0.10.1"] || !seen["127.0.11.1"] {
		t.Errorf("addresses do not start at 127.0.10.1 and carry over to 127.0.11.x: %v", lines[:2])
	}
	if len(scenarios) != len(win2003.MixScenarios()) {
		t.Errorf("mix of 300 hosts has %d scenarios, want all %d", len(scenarios), len(win2003.MixScenarios()))
	}

	// The same seed gives the same fleet.
	g, err := lab.Start(context.Background(), lab.Config{Hosts: 300, Scenario: "mix", Seed: 4, Port: -1, Password: "pw", FirstAddr: mustAddr("127.0.40.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for i, h := range g.Manifest().Hosts {
		if h.Scenario != m.Hosts[i].Scenario {
			t.Fatalf("host %d: scenario %s, then %s with the same seed", i, m.Hosts[i].Scenario, h.Scenario)
		}
	}
}

// TestFleetReboot: shutdown /r closes the host's endpoint (connections refused), and the host
// comes back on the same address with a newer boot time and no shells left.
func TestFleetReboot(t *testing.T) {
	clock := win2003.NewManualClock(win2003.DefaultStart)
	f, err := lab.Start(context.Background(), lab.Config{Hosts: 1, Scenario: "healthy", Port: -1, Password: "pw", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := f.Hosts()[0]
	bootBefore := h.Model.LastBootUpTime()
	s, err := dial(t, h, "pw")
	if err != nil {
		t.Fatal(err)
	}
	down := h.Model.PowerChanged()
	res, err := s.Run(context.Background(), `shutdown /r /t 5 /d p:2:17 /c "iisremedy test"`)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("shutdown: %v, exit %d, %q", err, res.ExitCode, res.Stderr)
	}
	clock.Advance(5 * time.Second)
	<-down
	if h.Model.Up() {
		t.Fatal("host still up after its power changed")
	}
	up := h.Model.PowerChanged()
	if _, err := dial(t, h, "pw"); !errors.Is(err, remote.ErrUnreachable) {
		t.Errorf("dial while down: %v, want unreachable", err)
	}
	clock.Advance(10 * time.Minute) // a boot takes minutes
	<-up
	if !h.Model.Up() {
		t.Fatal("host not up after its second power change")
	}
	s2, err := dial(t, h, "pw")
	if err != nil {
		t.Fatalf("dial after reboot: %v", err)
	}
	defer s2.Close(context.Background())
	if !h.Model.LastBootUpTime().After(bootBefore) {
		t.Errorf("boot time %v not after %v", h.Model.LastBootUpTime(), bootBefore)
	}
	if got := h.Server.Stats().Shells; got != 1 {
		t.Errorf("%d shells after reboot, want only the new one", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// BenchmarkStart200Mix starts `lab serve --hosts 200 --scenario mix`'s fleet and reports the
// time to have every listener up and the heap the idle fleet holds.
func BenchmarkStart200Mix(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, err := lab.Start(context.Background(), lab.Config{Hosts: 200, Scenario: "mix", Port: -1, Password: "pw", FirstAddr: mustAddr("127.0.50.1")})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MB")
		f.Close()
	}
}
