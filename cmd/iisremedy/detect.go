package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/spf13/cobra"
)

// detectOptions are the flags of `detect`.
type detectOptions struct {
	Connect   *connectOptions
	Inventory string
	Output    string
	Playbook  string
}

func newDetectCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &detectOptions{Connect: global.connect()}
	cmd := &cobra.Command{
		Use:   "detect -i INVENTORY",
		Short: "Probe hosts over WinRM and diagnose them (read-only)",
		Long: `Probe every host of the inventory over WinRM with one read-only command and diagnose it:
affected, mismatch, at-risk, other-cause, healthy, not-applicable, or unreachable, auth-failed,
probe-failed when its facts could not be established. Nothing on the hosts is changed.
After an interrupt, hosts not probed to the end are reported as skipped.

Exit status 0 when every host is healthy or not applicable, 1 when any needs attention,
130 when interrupted.`,
		Example: `  export IISREMEDY_PASSWORD=...          # or be asked on the terminal
  iisremedy detect -i hosts.txt
  iisremedy detect -i hosts.txt -o json > findings.json
  iisremedy detect -i hosts.txt -o markdown --playbook kb973917`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return detectRun(cmd.Context(), ios, global, opts)
		},
	}
	opts.Connect.addFlags(cmd.Flags(), true)
	cmd.Flags().StringVarP(&opts.Inventory, "inventory", "i", "", "inventory `FILE`: one host[:port] a line, with key=value settings")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	cmd.Flags().StringVar(&opts.Playbook, "playbook", "", "playbook: an embedded name or a YAML `FILE` (default: every embedded playbook, the most severe verdict wins)")
	completeOutput(cmd)
	completePlaybook(cmd)
	return cmd
}

func detectRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *detectOptions) error {
	if opts.Inventory == "" {
		return usageErrorf("detect: give the host list with -i FILE (one host a line)")
	}
	if err := opts.Connect.validate(); err != nil {
		return err
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
	hosts, err := resolveTargets(ios, global.Quiet, inv, opts.Connect.defaults())
	if err != nil {
		return err
	}
	password, err := opts.Connect.password(ctx, ios)
	if err != nil {
		return err
	}
	e := newEngine(global, ios, opts.Connect, password, pbs)
	findings := runDetect(ctx, ios, global, e, hosts)
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
func runDetect(ctx context.Context, ios *ioStreams, global *globalOptions, e *remediate.Engine, hosts []remediate.Host) []remediate.HostFinding {
	progress := newProgress(ios, global.Quiet, len(hosts), "probing")
	e.Events = func(ev remediate.HostStep) {
		if ev.Step != remediate.StepProbe || ev.State == remediate.StepStarted {
			return
		}
		verdict, _, _ := strings.Cut(ev.Detail, ":")
		if ev.State == remediate.StepSkipped {
			verdict = string(playbooks.Skipped)
		}
		progress.done(fmt.Sprintf("%s: %s", printable(ev.Host), verdict))
	}
	findings := e.Detect(ctx, hosts)
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

// needsAttention is true for every verdict but healthy, not-applicable and skipped: those hosts
// need a fix, an escalation, or facts that could not be established. A skipped host's run was
// interrupted, which the exit status says.
func needsAttention(v playbooks.Verdict) bool {
	return v != playbooks.Healthy && v != playbooks.NotApplicable && v != playbooks.Skipped
}

// outputFormats are the values of -o.
var outputFormats = []string{"table", "json", "markdown"}

func checkOutput(format string) error {
	if slices.Contains(outputFormats, format) {
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
