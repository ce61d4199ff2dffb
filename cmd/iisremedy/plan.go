package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/spf13/cobra"
)

// planOptions are the flags of `plan`.
type planOptions struct {
	Connect   *connectOptions
	Rem       remediationFlags
	Inventory string
	Out       string
	Output    string
}

func newPlanCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	opts := &planOptions{Connect: global.connect()}
	cmd := &cobra.Command{
		Use:   "plan -i INVENTORY --out PLAN.json",
		Short: "Probe hosts and write the remediation plan a change board reviews (changes nothing)",
		Long: `Probe every host of the inventory (read-only), diagnose it, and write the plan: per host the
facts it rests on, the verdict, the installer, and the exact steps with their commands. Affected
and mismatch hosts are remediated; at-risk ones only with --include at-risk; other-cause,
healthy and not-applicable hosts never. The plan's SHA-256 digest, printed and in the Markdown,
is what a change board signs; 'iisremedy apply PLAN.json' does exactly that plan later.

Exit status 0 when the plan is written and every host could be planned, 1 when a host's facts
could not be established or its remediation is blocked (no installer, no disk space).`,
		Example: `  iisremedy plan -i hosts.txt --installers ./sp2 --out change-4711.json -o markdown > change-4711.md
  iisremedy plan -i hosts.txt --installers ./sp2 --include at-risk --out plan.json
  iisremedy plan -i hosts.txt --installers ./sp2 --stage share --share '\\files\sp2$\w2k3' --out plan.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return planRun(cmd.Context(), ios, global, opts)
		},
	}
	f := cmd.Flags()
	opts.Connect.addFlags(f, true)
	opts.Rem.addFlags(f)
	f.StringVarP(&opts.Inventory, "inventory", "i", "", "inventory `FILE`")
	f.StringVar(&opts.Out, "out", "", "write the plan (JSON) to `FILE`")
	f.StringVarP(&opts.Output, "output", "o", "table", "what to print: table, json (the plan) or markdown (for the change board)")
	completeOutput(cmd)
	completePlaybook(cmd)
	return cmd
}

func planRun(ctx context.Context, ios *ioStreams, global *globalOptions, opts *planOptions) error {
	if opts.Out == "" {
		return usageErrorf("plan: give the plan file to write with --out PLAN.json")
	}
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	p, err := makePlan(ctx, ios, global, opts.Connect, &opts.Rem, opts.Inventory)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(opts.Out, p.plan.Write); err != nil {
		return err
	}
	if err := writePlan(ios.Out, opts.Output, p.plan); err != nil {
		return err
	}
	if !global.Quiet {
		fmt.Fprintf(ios.ErrOut, "plan: %s to remediate of %s; written to %s; digest %s\n",
			plural(p.plan.Remediated(), "host"), plural(len(p.plan.Hosts), "host"), opts.Out, p.plan.Digest)
	}
	return planAttention(p.plan)
}

// planAttention is errNeedsAttention when a host's remediation is blocked or its facts could
// not be established: the plan cannot fix it as it stands.
func planAttention(p *remediate.Plan) error {
	for _, h := range p.Hosts {
		switch h.Verdict {
		case playbooks.Unreachable, playbooks.AuthFailed, playbooks.ProbeFailed:
			return errNeedsAttention
		}
		if h.Action == remediate.ActionBlocked {
			return errNeedsAttention
		}
	}
	return nil
}

// writePlan prints a plan: a table, the plan's JSON, or the change board's Markdown.
func writePlan(w io.Writer, format string, p *remediate.Plan) error {
	switch format {
	case "json":
		return writeJSON(w, p)
	case "markdown":
		return writePlanMarkdown(w, p)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tVERDICT\tACTION\tINSTALLER\tREASON")
	for _, h := range p.Hosts {
		inst := "-"
		if h.Installer != nil {
			inst = h.Installer.File
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(h.Host), printable(string(h.Verdict)), h.Action, inst, printable(h.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nplan digest %s\n", p.Digest)
	return err
}

// writePlanMarkdown is the document a change board reads: what will be done to which host,
// why, with which file, by which exact commands, under the digest it approves.
func writePlanMarkdown(w io.Writer, p *remediate.Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# iisremedy remediation plan\n\n")
	fmt.Fprintf(&b, "- Plan digest (SHA-256): `%s`\n", p.Digest)
	fmt.Fprintf(&b, "- Made %s by %s from inventory %s, playbooks %s\n", p.Created.Format("2006-01-02 15:04 MST"),
		markdownText(p.Tool), markdownText(p.Inventory), markdownText(strings.Join(p.Playbooks, ", ")))
	o := p.Options
	fmt.Fprintf(&b, "- Installers staged by %s from %s; work folder %s; warm-up from %s\n", o.Stage, markdownText(o.InstallerDir),
		markdownText(orDefault(o.WorkDir, `<SystemDrive>\iisremedy`)), o.Warmup)
	t := o.Timing
	fmt.Fprintf(&b, "- Timings: install at most %s, restart after %s, back within %s, pools within %s, soak %s\n\n",
		t.Install.D(), t.RebootDelay.D(), t.Reboot.D(), t.PoolStart.D(), t.Soak.D())
	fmt.Fprintf(&b, "%s to remediate of %s.\n\n", plural(p.Remediated(), "host"), plural(len(p.Hosts), "host"))
	b.WriteString("| host | verdict | action | installer | reason |\n|---|---|---|---|---|\n")
	for _, h := range p.Hosts {
		inst := "—"
		if h.Installer != nil {
			inst = markdownText(h.Installer.File)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", markdownText(h.Host), markdownText(string(h.Verdict)), h.Action, inst, markdownText(h.Reason))
	}
	for _, h := range p.Hosts {
		fmt.Fprintf(&b, "\n## %s\n\n", markdownText(h.Host))
		fmt.Fprintf(&b, "Verdict **%s**; action **%s**: %s\n\n", markdownText(string(h.Verdict)), h.Action, markdownText(h.Reason))
		for _, e := range h.Evidence {
			fmt.Fprintf(&b, "- %s\n", markdownText(e))
		}
		if h.Fingerprint != "" {
			fmt.Fprintf(&b, "\nFacts fingerprint `%s`: apply refuses the host if these facts changed.\n", h.Fingerprint)
		}
		if h.Installer != nil {
			fmt.Fprintf(&b, "\nInstaller: %s (%s %s), %d bytes, SHA-256 `%s`, checked against the %s; switches %s.\n",
				markdownText(h.Installer.File), h.Installer.Arch, h.Installer.Language, h.Installer.Size, h.Installer.SHA256,
				markdownText(h.Installer.Reference), markdownText(strings.Join(h.Installer.Switches, " ")))
		}
		for _, s := range h.Steps {
			fmt.Fprintf(&b, "\n### %s\n\n", s.Step)
			for _, n := range s.Notes {
				fmt.Fprintf(&b, "%s\n\n", markdownText(n))
			}
			// An indented code block: nothing in it is markup, and printable keeps it on its lines.
			for _, c := range s.Commands {
				fmt.Fprintf(&b, "    %s\n", printable(c))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readPlanFile reads a plan; any problem is bad input.
func readPlanFile(path string) (*remediate.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	defer f.Close()
	p, err := remediate.ReadPlan(path, f)
	return p, asUsage(err)
}
