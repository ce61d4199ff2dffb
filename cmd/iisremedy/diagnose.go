package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

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
		Example: `  iisremedy probe-script > probe.cmd      # run on the host: probe.cmd > probe.txt
  iisremedy diagnose probe.txt
  iisremedy diagnose web01.txt web02.txt -o markdown`,
		Args: argsWanted("at least one capture file (the output of the probe-script run on a host)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return diagnoseRun(cmd.Context(), ios, opts, args)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table, json or markdown")
	cmd.Flags().StringVar(&opts.Playbook, "playbook", "", "playbook: an embedded name or a YAML `FILE` (default: every embedded playbook, the most severe verdict wins)")
	completeOutput(cmd)
	completePlaybook(cmd)
	return cmd
}

// maxCaptureSize bounds what diagnose reads of one capture, from a file, a pipe or a device
// alike: a real capture is tens of kilobytes, a very busy host's a few megabytes (wmic sections
// redirected to a file are UTF-16, twice their size).
const maxCaptureSize = 16 << 20

func diagnoseRun(ctx context.Context, ios *ioStreams, opts *diagnoseOptions, files []string) error {
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
		facts, err := readCapture(ctx, path)
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

func readCapture(ctx context.Context, path string) (*checks.Facts, error) {
	data, err := readBounded(ctx, path, maxCaptureSize)
	if err != nil {
		return nil, err
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

// readBounded reads the file at path to its end, at most limit bytes: more is bad input,
// whatever the file is (a regular file, a pipe that never ends, /dev/zero). An interrupt
// abandons the open (a named pipe without a writer blocks in it) and the read.
func readBounded(ctx context.Context, path string, limit int64) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	var mu sync.Mutex
	var f *os.File
	go func() {
		file, err := os.Open(path)
		if err != nil {
			done <- result{nil, usageErrorf("%v", err)}
			return
		}
		mu.Lock()
		f = file
		mu.Unlock()
		defer file.Close()
		b, err := io.ReadAll(io.LimitReader(file, limit+1))
		switch {
		case err != nil:
			err = usageErrorf("%s: %v", path, err)
		case int64(len(b)) > limit:
			b, err = nil, usageErrorf("%s: more than %d bytes is not a probe capture", path, limit)
		}
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		mu.Lock()
		if f != nil {
			_ = f.Close() // unblocks a read from a pipe
		}
		mu.Unlock()
		return nil, ctx.Err()
	}
}

func newProbeScriptCmd(ios *ioStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "probe-script",
		Short: "Print the probe as a .cmd file, for hosts without WinRM",
		Long: `Print the read-only probe as a batch file. On the host, save it as probe.cmd, run
'probe.cmd > probe.txt' in an administrator's command prompt, and give probe.txt to
'iisremedy diagnose'.`,
		Example: `  iisremedy probe-script > probe.cmd`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(ios.Out, checks.ProbeScript())
			return err
		},
	}
}
