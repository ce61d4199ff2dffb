package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/spf13/cobra"
)

// labRunOptions are the flags of `lab`.
type labRunOptions struct {
	Fleet  lab.Config
	Output string
}

func newLabCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &labRunOptions{Fleet: lab.Config{MaxEnvelopeKB: 150, TLSProfile: "modern"}}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Rehearse on a simulated fleet of Windows Server 2003 + IIS 6 hosts",
		Long: `Start a simulated fleet of Windows Server 2003 + IIS 6 hosts on loopback addresses
(127.0.10.1, 127.0.10.2, …), probe every host over real WinRM (NTLM with message encryption),
diagnose it, and compare each verdict with the one the lab knows to be right.

Exit status 0 when every verdict matches the lab's manifest, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return labRun(cmd.Context(), ios, global, opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Fleet.Hosts, "hosts", 20, "number of hosts")
	f.StringVar(&opts.Fleet.Scenario, "scenario", "mix", "scenario of every host, or mix")
	f.Int64Var(&opts.Fleet.Seed, "seed", 1, "seed of the mix and of per-host details")
	f.DurationVar(&opts.Fleet.Latency, "latency", 0, "latency added to every WinRM reply")
	f.Float64Var(&opts.Fleet.TimeScale, "time-scale", 60, "simulated seconds per real second")
	f.StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	cmd.AddCommand(newLabServeCmd(ios, global))
	return cmd
}

func labRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *labRunOptions) error {
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	if err := (&labServeOptions{Fleet: opts.Fleet, Auth: []string{global.Auth}}).validate(); err != nil {
		return err
	}
	// The fleet lives only as long as this command: a random password that nobody sees will do.
	password := rand.Text()
	cfg := opts.Fleet
	cfg.Port = -1 // free ports, so a running `lab serve` does not get in the way
	cfg.Auth = []string{global.Auth}
	cfg.AllowUnencrypted = global.AllowUnencrypted
	cfg.User = global.User
	cfg.Password = password
	fleet, err := lab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer fleet.Close()

	// The fleet's inventory goes through the same parser as an admin's file.
	var inventory bytes.Buffer
	if err := fleet.WriteInventory(&inventory); err != nil {
		return err
	}
	inv, err := remediate.ParseInventory("lab inventory", &inventory)
	if err != nil {
		return err
	}
	targets, err := targetsFor(ios, global, inv.Hosts)
	if err != nil {
		return err
	}
	if !global.Quiet {
		fmt.Fprintf(ios.ErrOut, "lab: %d hosts up; probing over WinRM (%s)\n", len(inv.Hosts), global.Auth)
	}
	start := time.Now()
	findings := runDetect(ctx, ios, global, nil, dialerFor(targets, password, global.logger(ios)), inv.Hosts)
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeFindings(ios.Out, opts.Output, findings); err != nil {
		return err
	}
	return compareWithManifest(ios, fleet.Manifest(), findings, elapsed)
}

// compareWithManifest reports every host whose verdict differs from the lab's expectation.
func compareWithManifest(ios *ioStreams, m lab.Manifest, findings []remediate.HostFinding, elapsed time.Duration) error {
	want := make(map[string]lab.ManifestHost, len(m.Hosts))
	for _, h := range m.Hosts {
		want[h.Host] = h
	}
	wrong := 0
	for _, f := range findings {
		w := want[f.Host.Entry]
		if f.Verdict != w.Verdict {
			wrong++
			fmt.Fprintf(ios.ErrOut, "lab: %s (%s): verdict %s, want %s\n", f.Host.Entry, w.Scenario, f.Verdict, w.Verdict)
		}
	}
	fmt.Fprintf(ios.ErrOut, "lab: %d of %d verdicts match the manifest; probed in %s (%.0f hosts/s)\n",
		len(findings)-wrong, len(findings), elapsed.Round(time.Millisecond), float64(len(findings))/elapsed.Seconds())
	if wrong > 0 {
		return errNeedsAttention
	}
	return nil
}

// labServeOptions are the flags of `lab serve`.
type labServeOptions struct {
	Fleet     lab.Config
	Auth      []string
	Inventory string
	Manifest  string
	FirstAddr string
}

func newLabServeCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &labServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve lab hosts over WinRM until interrupted",
		Long: `Serve lab hosts over WinRM on loopback addresses 127.0.10.1, 127.0.10.2, … (port 5985,
or 5986 with --https) until interrupted. The inventory of the hosts is printed on standard
output and, with --inventory, written to a file; --manifest writes each host's scenario and the
verdict a correct diagnosis gives. The login is Administrator with the password from the
environment variable named by --password-env.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return labServeRun(cmd, ios, global, opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Fleet.Hosts, "hosts", 10, "number of hosts")
	f.StringVar(&opts.Fleet.Scenario, "scenario", "mix", "scenario of every host, or mix")
	f.Int64Var(&opts.Fleet.Seed, "seed", 1, "seed of the mix and of per-host details")
	f.BoolVar(&opts.Fleet.HTTPS, "https", false, "serve HTTPS on port 5986 instead of HTTP on 5985")
	f.StringVar(&opts.Fleet.TLSProfile, "tls-profile", "modern", "TLS the hosts offer: modern, or server2003 (TLS 1.0, 3DES/RC4, SHA-1 certificate)")
	f.StringSliceVar(&opts.Auth, "auth", []string{"negotiate"}, "authentication schemes offered: negotiate, basic")
	f.IntVar(&opts.Fleet.MaxEnvelopeKB, "max-envelope-kb", 150, "MaxEnvelopeSizekb of the hosts' WinRM service")
	f.DurationVar(&opts.Fleet.Latency, "latency", 0, "latency added to every WinRM reply")
	f.Float64Var(&opts.Fleet.TimeScale, "time-scale", 60, "simulated seconds per real second")
	f.StringVar(&opts.FirstAddr, "first-addr", "127.0.10.1", "loopback address of the first host; the others follow it")
	f.IntVar(&opts.Fleet.Port, "port", 0, "port of every host (default 5985, or 5986 with --https; 0 = a free port for each host)")
	f.StringVar(&opts.Inventory, "inventory", "", "write the inventory to `FILE`")
	f.StringVar(&opts.Manifest, "manifest", "", "write the manifest (scenario and expected verdict per host) to `FILE`")
	return cmd
}

func (o *labServeOptions) validate() error {
	if o.Fleet.Hosts < 1 || o.Fleet.Hosts > 10000 {
		return usageErrorf("--hosts %d: want 1 to 10000", o.Fleet.Hosts)
	}
	if o.Fleet.MaxEnvelopeKB < 1 {
		return usageErrorf("--max-envelope-kb %d: want a positive size", o.Fleet.MaxEnvelopeKB)
	}
	if o.Fleet.Latency < 0 {
		return usageErrorf("--latency %s: want a positive duration", o.Fleet.Latency)
	}
	if o.Fleet.TimeScale <= 0 {
		return usageErrorf("--time-scale %g: want a positive factor", o.Fleet.TimeScale)
	}
	switch o.Fleet.TLSProfile {
	case "modern", "server2003":
	default:
		return usageErrorf("--tls-profile %q: want modern or server2003", o.Fleet.TLSProfile)
	}
	for _, a := range o.Auth {
		if a != "negotiate" && a != "basic" {
			return usageErrorf("--auth %q: want negotiate or basic", a)
		}
	}
	if o.FirstAddr != "" {
		a, err := netip.ParseAddr(o.FirstAddr)
		if err != nil || !a.Is4() || !a.IsLoopback() {
			return usageErrorf("--first-addr %q: want an IPv4 loopback address (127.x.y.z)", o.FirstAddr)
		}
		o.Fleet.FirstAddr = a
	}
	if o.Fleet.Port < 0 || o.Fleet.Port > 65535 {
		return usageErrorf("--port %d: want 0 to 65535", o.Fleet.Port)
	}
	return checkScenario(o.Fleet.Scenario)
}

func labServeRun(cmd *cobra.Command, ios *ioStreams, global *globalOptions, opts *labServeOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	password := global.getenv(global.PasswordEnv)
	if password == "" {
		return usageErrorf("the lab hosts' password comes from $%s, which is empty: set it (any value) and run again", global.PasswordEnv)
	}
	cfg := opts.Fleet
	if cfg.Port == 0 && cmd.Flags().Changed("port") {
		cfg.Port = -1 // --port 0: free ports, so that runs side by side never collide
	}
	cfg.Auth = opts.Auth
	cfg.AllowUnencrypted = global.AllowUnencrypted
	cfg.User = "Administrator"
	cfg.Password = password
	ctx := cmd.Context()
	start := time.Now()
	fleet, err := lab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer fleet.Close()

	if err := writeFileWith(opts.Inventory, fleet.WriteInventory); err != nil {
		return err
	}
	if err := writeFileWith(opts.Manifest, fleet.WriteManifest); err != nil {
		return err
	}
	if err := fleet.WriteInventory(ios.Out); err != nil {
		return err
	}
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https (" + cfg.TLSProfile + ")"
	}
	fmt.Fprintf(ios.ErrOut, "lab: %d hosts up in %s, %s, auth %s; interrupt to stop\n",
		len(fleet.Hosts()), time.Since(start).Round(time.Millisecond), scheme, strings.Join(cfg.Auth, ","))
	<-ctx.Done()
	return nil
}

// checkScenario accepts mix or a known scenario name.
func checkScenario(name string) error {
	if name == "mix" {
		return nil
	}
	for _, s := range lab.Scenarios() {
		if s == name {
			return nil
		}
	}
	return usageErrorf("--scenario %q: want mix or one of %s", name, strings.Join(lab.Scenarios(), ", "))
}

// writeFileWith writes a file through write; an empty path writes nothing.
func writeFileWith(path string, write func(w io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
