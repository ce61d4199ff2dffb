package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
	"github.com/spf13/cobra"
)

// detectOptions are the flags of `detect`.
type detectOptions struct {
	Inventory string
	Output    string
	Playbook  string
}

func newDetectCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &detectOptions{}
	cmd := &cobra.Command{
		Use:   "detect -i INVENTORY",
		Short: "Probe hosts over WinRM and diagnose them (read-only)",
		Long: `Probe every host of the inventory over WinRM with one read-only command and diagnose it:
affected, mismatch, at-risk, other-cause, healthy, not-applicable, or unreachable, auth-failed,
probe-failed when its facts could not be established. Nothing on the hosts is changed.

Exit status 0 when every host is healthy or not applicable, 1 when any needs attention.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return detectRun(cmd.Context(), ios, global, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Inventory, "inventory", "i", "", "inventory `FILE`: one host[:port] a line, with key=value settings")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	cmd.Flags().StringVar(&opts.Playbook, "playbook", "", "playbook: an embedded name or a YAML `FILE` (default: every embedded playbook, the most severe verdict wins)")
	return cmd
}

func detectRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *detectOptions) error {
	if opts.Inventory == "" {
		return usageErrorf("--inventory: required")
	}
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	pbs, err := loadPlaybooks(opts.Playbook)
	if err != nil {
		return err
	}
	inv, err := readInventory(opts.Inventory)
	if err != nil {
		return err
	}
	if len(inv.Hosts) == 0 {
		return usageErrorf("%s: no hosts", opts.Inventory)
	}
	targets, err := targetsFor(ios, global, inv.Hosts)
	if err != nil {
		return err
	}
	password, err := global.password(ios)
	if err != nil {
		return err
	}
	findings := runDetect(ctx, ios, global, pbs, dialerFor(targets, password, global.logger(ios)), inv.Hosts)
	// After an interrupt the hosts already probed are still reported; the others say why not.
	if err := writeFindings(ios.Out, opts.Output, findings); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return attentionFor(findings)
}

// runDetect probes the hosts with a progress bar on a terminal, or one line per host otherwise.
func runDetect(ctx context.Context, ios *ioStreams, global *globalOptions, pbs []*playbooks.Playbook, dial remediate.Dialer, hosts []remediate.InventoryHost) []remediate.HostFinding {
	progress := newProgress(ios, global.Quiet, len(hosts), "probing")
	d := &remediate.Detector{
		Dial:      dial,
		Playbooks: pbs,
		Parallel:  global.Parallel,
		Logger:    global.logger(ios),
		HostDone: func(hf remediate.HostFinding) {
			progress.done(fmt.Sprintf("%s: %s", hf.Host.Entry, hf.Verdict))
		},
	}
	findings := d.Detect(ctx, hosts)
	progress.finish()
	return findings
}

// attentionFor returns errNeedsAttention when any host needs attention.
func attentionFor(findings []remediate.HostFinding) error {
	for _, f := range findings {
		if needsAttention(f.Verdict) {
			return errNeedsAttention
		}
	}
	return nil
}

// needsAttention is true for every verdict but healthy and not-applicable: those hosts need a
// fix, an escalation, or facts that could not be established.
func needsAttention(v playbooks.Verdict) bool {
	return v != playbooks.Healthy && v != playbooks.NotApplicable
}

func checkOutput(format string) error {
	switch format {
	case "table", "json", "markdown":
		return nil
	}
	return usageErrorf("--output %q: want table, json or markdown", format)
}

// loadPlaybooks returns the playbooks to diagnose under: every embedded one for "", else the
// embedded one of that name or the file. A bad file is bad input.
func loadPlaybooks(nameOrFile string) ([]*playbooks.Playbook, error) {
	if nameOrFile == "" {
		return nil, nil
	}
	pb, err := loadPlaybook(nameOrFile)
	if err != nil {
		return nil, err
	}
	return []*playbooks.Playbook{pb}, nil
}

func loadPlaybook(nameOrFile string) (*playbooks.Playbook, error) {
	for _, name := range playbooks.Embedded() {
		if name == nameOrFile {
			return playbooks.Get(name)
		}
	}
	if _, err := os.Stat(nameOrFile); err != nil {
		return nil, usageErrorf("--playbook %q: neither an embedded playbook (%s) nor a readable file",
			nameOrFile, strings.Join(playbooks.Embedded(), ", "))
	}
	pb, err := playbooks.LoadFile(nameOrFile)
	return pb, asUsage(err)
}

// readInventory parses the inventory file; any problem is bad input naming file and line.
func readInventory(path string) (*remediate.Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("inventory: %v", err)
	}
	defer f.Close()
	inv, err := remediate.ParseInventory(path, f)
	return inv, asUsage(err)
}

// targetsFor builds every host's WinRM target, with the host's own settings over the command
// line's, so that bad settings are reported before any password is asked or host touched. The
// security downgrades the targets allow are printed once per kind, naming the hosts.
func targetsFor(ios *ioStreams, global *globalOptions, hosts []remediate.InventoryHost) (map[string]remote.Target, error) {
	targets := make(map[string]remote.Target, len(hosts))
	var kinds []string
	hostsOf := map[string][]string{}
	for _, h := range hosts {
		t, err := targetFor(global, h)
		if err != nil {
			return nil, err
		}
		targets[h.Entry] = t
		for _, w := range t.Warnings() {
			kind := strings.TrimPrefix(w, t.Host+": ")
			if hostsOf[kind] == nil {
				kinds = append(kinds, kind)
			}
			hostsOf[kind] = append(hostsOf[kind], h.Entry)
		}
	}
	if !global.Quiet {
		for _, kind := range kinds {
			fmt.Fprintf(ios.ErrOut, "warning: %s: %s\n", kind, hostList(hostsOf[kind]))
		}
	}
	return targets, nil
}

// hostList names a few hosts and counts the rest.
func hostList(hosts []string) string {
	const shown = 3
	if len(hosts) <= shown {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%s and %d more hosts", strings.Join(hosts[:shown], ", "), len(hosts)-shown)
}

// dialerFor returns the function that opens a WinRM session to an inventory host.
func dialerFor(targets map[string]remote.Target, password string, logger *slog.Logger) remediate.Dialer {
	return func(ctx context.Context, h remediate.InventoryHost) (remediate.Session, error) {
		t := targets[h.Entry]
		t.Password = password
		s, err := remote.Dial(ctx, t, remote.WithLogger(logger))
		if err != nil {
			// A nil *remote.Session in a non-nil interface would look like a session.
			return nil, err
		}
		return s, nil
	}
}

// targetFor builds the WinRM target of an inventory host; unusable settings are bad input.
func targetFor(global *globalOptions, h remediate.InventoryHost) (remote.Target, error) {
	t := remote.Target{
		Host:             h.Host,
		Port:             h.Port,
		HTTPS:            h.HTTPS,
		Auth:             global.Auth,
		User:             global.User,
		AllowUnencrypted: global.AllowUnencrypted,
	}
	if h.Auth != "" {
		t.Auth = h.Auth
	}
	if h.User != "" {
		t.User = h.User
	}
	t.TLS.Fingerprint = h.TLSFingerprint
	t.TLS.LegacyTLS = h.TLS == "legacy"
	where := fmt.Sprintf("inventory line %d (%s)", h.Line, h.Entry)
	if t.Auth == "kerberos" || t.Auth == "certificate" {
		return t, usageErrorf("%s: auth=%s is not supported yet; use negotiate or basic", where, t.Auth)
	}
	if err := t.Validate(); err != nil {
		var re *remote.Error
		if errors.As(err, &re) {
			err = re.Err // the reason, without the "remote: dial" framing
		}
		return t, usageErrorf("%s: %v", where, err)
	}
	return t, nil
}
