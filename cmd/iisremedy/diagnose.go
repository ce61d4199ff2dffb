package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/spf13/cobra"
)

// diagnoseOptions are the flags of `diagnose`.
type diagnoseOptions struct {
	Output   string
	Playbook string
}

func newDiagnoseCmd(ios *ioStreams) *cobra.Command {
	opts := &diagnoseOptions{}
	cmd := &cobra.Command{
		Use:   "diagnose FILE...",
		Short: "Diagnose hosts from captured probe output",
		Long: `Diagnose hosts from probe output captured by hand: run the file that 'iisremedy probe-script'
prints on the host as 'probe.cmd > probe.txt', copy probe.txt here and pass it. The verdict is
the one detect gives over WinRM. A file that is not a probe capture is refused (exit status 2);
a capture cut short gets probe-failed for what it lacks.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return diagnoseRun(ios, opts, args)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	cmd.Flags().StringVar(&opts.Playbook, "playbook", "", "playbook: an embedded name or a YAML `FILE` (default: every embedded playbook, the most severe verdict wins)")
	return cmd
}

// maxCaptureSize bounds a capture file; a real one is tens of kilobytes.
const maxCaptureSize = 64 << 20

func diagnoseRun(ios *ioStreams, opts *diagnoseOptions, files []string) error {
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	pbs, err := loadPlaybooks(opts.Playbook)
	if err != nil {
		return err
	}
	// Every file is read and parsed before anything is printed, so bad input is reported alone.
	reports := make([]hostReport, 0, len(files))
	for _, path := range files {
		facts, err := readCapture(path)
		if err != nil {
			return err
		}
		host := facts.Hostname
		if host == "" {
			host = path
		}
		reports = append(reports, newHostReport(host, remediate.Diagnose(facts, pbs), facts, nil))
	}
	if err := writeReports(ios.Out, opts.Output, reports); err != nil {
		return err
	}
	for _, r := range reports {
		if needsAttention(r.Verdict) {
			return errNeedsAttention
		}
	}
	return nil
}

func readCapture(path string) (*checks.Facts, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	if st.Size() > maxCaptureSize {
		return nil, usageErrorf("%s: %d bytes is not a probe capture (at most %d)", path, st.Size(), maxCaptureSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	facts, err := checks.ParseFacts(data)
	if errors.Is(err, checks.ErrNotCapture) {
		return nil, usageErrorf("%s: not an iisremedy probe capture (no \"##iisremedy-probe v1\" markers)", path)
	}
	if err != nil {
		return nil, usageErrorf("%s: %v", path, err)
	}
	return facts, nil
}

func newProbeScriptCmd(ios *ioStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "probe-script",
		Short: "Print the probe as a .cmd file, for hosts without WinRM",
		Long: `Print the read-only probe as a batch file. On the host, save it as probe.cmd, run
'probe.cmd > probe.txt' in an administrator's command prompt, and give probe.txt to
'iisremedy diagnose'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(ios.Out, checks.ProbeScript())
			return err
		},
	}
}
