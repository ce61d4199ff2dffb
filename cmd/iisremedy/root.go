package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/iisremedy/iisremedy/remediate"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares, resolved once before a command runs.
type globalOptions struct {
	Quiet bool
	Debug bool

	// getenv reads the environment; tests replace it.
	getenv func(string) string
	// clock is the engine's clock (nil = the wall clock); tests give a lab fleet's virtual
	// clock, so that hours of installs and soaks pass as fast as the hosts answer.
	clock remediate.Clock
}

// engineClock is the clock of the remediation engine and of what it records.
func (o *globalOptions) engineClock() remediate.Clock {
	if o.clock == nil {
		return remediate.RealClock{}
	}
	return o.clock
}

// connect returns the WinRM flags for a command that connects to hosts.
func (o *globalOptions) connect() *connectOptions { return &connectOptions{getenv: o.getenv} }

const rootLong = `iisremedy finds Windows Server 2003 + IIS 6 hosts whose IIS binaries are older than the
operating system's Service Pack 2 — the mismatch that update KB982666 (MS10-040), and KB973917
before it, turn into worker processes dying at start — tells them from hosts whose pools crash
for another reason, and warns about hosts that will break on the next patch night.

EXIT STATUS
  0    all good
  1    a host failed or needs attention
  2    usage or input error; nothing was touched
  3    a remediation stopped early: drained by Ctrl-C, or --max-failures reached
  130  interrupted`

func newRootCmd(ios *ioStreams, getenv func(string) string, clock remediate.Clock, started *bool) *cobra.Command {
	opts := &globalOptions{getenv: getenv, clock: clock}
	root := &cobra.Command{
		Use:           "iisremedy",
		Short:         "Detect and remediate the IIS 6 binary mismatch exposed by KB982666",
		Long:          rootLong,
		Version:       buildVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			*started = true
			return opts.validate()
		},
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })

	root.SetVersionTemplate("iisremedy {{.Version}}\n")
	f := root.PersistentFlags()
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "print only results and errors")
	f.BoolVar(&opts.Debug, "debug", false, "log WinRM retries and cleanups on standard error (never credentials)")

	root.AddCommand(
		newDetectCmd(ios, opts),
		newStageCmd(ios, opts),
		newPlanCmd(ios, opts),
		newApplyCmd(ios, opts),
		newRunCmd(ios, opts),
		newHistoryCmd(ios, opts),
		newReportCmd(ios, opts),
		newWavesCmd(ios, opts),
		newDiagnoseCmd(ios),
		newProbeScriptCmd(ios),
		newPlaybooksCmd(ios),
		newLabCmd(ios, opts),
		newVersionCmd(ios),
	)
	return root
}

func (o *globalOptions) validate() error {
	if o.Debug && o.Quiet {
		return usageErrorf("--debug and --quiet cannot be used together")
	}
	return nil
}

// logger returns the logger the engine's components write to: standard error with --debug,
// nowhere otherwise.
func (o *globalOptions) logger(ios *ioStreams) *slog.Logger {
	if !o.Debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// untilSignal annotates a command that runs until it is interrupted (lab serve): the
// interrupt is how it ends, and a clean end is exit status 0.
const untilSignal = "until-signal"

// run executes one command line and returns its exit code. Errors are printed here, once.
func run(ctx context.Context, args []string, ios *ioStreams) exitCode {
	return runWithEnv(ctx, args, ios, os.Getenv)
}

// runWithEnv is run with the environment read through getenv.
func runWithEnv(ctx context.Context, args []string, ios *ioStreams, getenv func(string) string) exitCode {
	return runWith(ctx, args, ios, getenv, nil)
}

// runWith is runWithEnv with the engine's clock (nil = the wall clock).
func runWith(ctx context.Context, args []string, ios *ioStreams, getenv func(string) string, clock remediate.Clock) (code exitCode) {
	defer func() {
		// A bug must not look like bad input (a Go panic exits 2): say so, with where, and exit 1.
		if r := recover(); r != nil {
			fmt.Fprintf(ios.ErrOut, "iisremedy: internal error (a bug; please report it with what follows): %v\n%s", r, debug.Stack())
			code = exitAttention
		}
	}()
	// Hosts' progress, the debug log and the drain notice reach ErrOut from many goroutines.
	ios.ErrOut = &lockedWriter{w: ios.ErrOut}
	started := false
	root := newRootCmd(ios, getenv, clock, &started)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil && cmd.Annotations[untilSignal] == "" {
		// An interrupt that a command absorbed is still not a success.
		err = ctx.Err()
	}
	if err != nil && !started {
		// Cobra rejected the command line before any command ran: unknown command,
		// wrong argument count. That is a usage error whatever its type.
		err = asUsage(err)
	}
	code = exitCodeFor(err)
	var silent *silentError
	switch {
	case err == nil, errors.Is(err, errNeedsAttention), errors.As(err, &silent):
	case code == exitInterrupted:
		fmt.Fprintln(ios.ErrOut, "iisremedy: interrupted")
	default:
		fmt.Fprintf(ios.ErrOut, "iisremedy: %v\n", err)
	}
	return code
}
