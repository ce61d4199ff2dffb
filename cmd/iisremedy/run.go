package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// runOptions are the flags of `run` and `stage`.
type runOptions struct {
	Connect   *connectOptions
	Rem       remediationFlags
	Apply     applyFlags
	Inventory string
	DryRun    bool
	Out       string
}

func newRunCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &runOptions{Connect: global.connect()}
	cmd := &cobra.Command{
		Use:   "run -i INVENTORY --installers DIR",
		Short: "Plan and apply in one go: probe, then remediate the hosts that need it",
		Long: `Probe every host of the inventory, plan its remediation as 'iisremedy plan' does, and apply
the plan at once as 'iisremedy apply' does. With --dry-run only the plan is printed (and written
with --out): nothing is changed on any host.

Exit status as for apply: 0 every planned host remediated, 1 a host failed or needs attention,
2 bad input, 3 stopped early (drained by Ctrl-C, or --max-failures reached), 130 stopped by a
second Ctrl-C.`,
		Example: `  iisremedy run -i hosts.txt --installers ./sp2 --dry-run -o markdown
  iisremedy run -i hosts.txt --installers ./sp2 --parallel 10 --max-failures 2
  iisremedy run -i hosts.txt --installers ./sp2 --stage pull --serve-addr 10.0.0.5:8089 --bwlimit 4M`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), ios, global, opts, false)
		},
	}
	addRunFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().StringVar(&opts.Out, "out", "", "also write the plan (JSON) to `FILE`")
	return cmd
}

func newStageCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &runOptions{Connect: global.connect()}
	cmd := &cobra.Command{
		Use:   "stage -i INVENTORY --installers DIR",
		Short: "Copy the SP2 installer to the hosts a remediation would touch, and prove it",
		Long: `Probe every host and, to each one a remediation would touch (affected and mismatch; at-risk
with --include at-risk; never the others), copy its installer into the work folder and prove it
with a hash computed on the host. Ahead of a maintenance window: the later run finds the file
there and sends nothing. A transfer cut by a dropped connection or Ctrl-C resumes on the next
run where the host's partial file ends.

--stage push (default) streams the file through WinRM; pull has the host download it from a
short-lived server on this machine (--serve-addr); share has a SYSTEM task copy it from --share.`,
		Example: `  iisremedy stage -i hosts.txt --installers ./sp2
  iisremedy stage -i hosts.txt --installers ./sp2 --parallel 50 --bwlimit 10M
  iisremedy stage -i hosts.txt --installers ./sp2 --stage share --share '\\files\sp2$\w2k3'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), ios, global, opts, true)
		},
	}
	addRunFlags(cmd, opts)
	return cmd
}

func addRunFlags(cmd *cobra.Command, opts *runOptions) {
	f := cmd.Flags()
	opts.Connect.addFlags(f, true)
	opts.Rem.addFlags(f)
	opts.Apply.addFlags(f, false) // --serve-addr and --bwlimit are among the remediation flags
	f.StringVarP(&opts.Inventory, "inventory", "i", "", "inventory `FILE`")
	completeOutput(cmd)
	completePlaybook(cmd)
}

func runRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *runOptions, stageOnly bool) error {
	opts.Apply.ServeAddr, opts.Apply.BWLimit = opts.Rem.ServeAddr, opts.Rem.BWLimit
	if err := opts.Apply.validate(); err != nil {
		return err
	}
	p, err := makePlan(ctx, ios, global, opts.Connect, &opts.Rem, opts.Inventory)
	if err != nil {
		return err
	}
	if opts.Out != "" {
		if err := writeFileAtomic(opts.Out, p.plan.Write); err != nil {
			return err
		}
	}
	if opts.DryRun {
		if err := writePlan(ios.Out, opts.Apply.Output, p.plan); err != nil {
			return err
		}
		if !global.Quiet {
			fmt.Fprintf(ios.ErrOut, "run --dry-run: %s would be remediated; nothing was changed\n", plural(p.plan.Remediated(), "host"))
		}
		return planAttention(p.plan)
	}
	command := "run"
	if stageOnly {
		command = "stage"
	}
	_, err = execute(ctx, ios, global, p.engine, execution{plan: p.plan, installers: p.installers, password: p.password,
		flags: opts.Apply, command: command, stageOnly: stageOnly})
	return err
}
