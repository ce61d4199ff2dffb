package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares, resolved once before a command runs.
type globalOptions struct {
	User             string
	PasswordEnv      string
	Auth             string
	Parallel         int
	AllowUnencrypted bool
	Quiet            bool
	Debug            bool

	// getenv reads the environment; tests replace it.
	getenv func(string) string
}

const rootLong = `iisremedy finds Windows Server 2003 + IIS 6 hosts whose IIS binaries are older than the
operating system's Service Pack 2 — the mismatch that update KB982666 (MS10-040), and KB973917
before it, turn into worker processes dying at start — tells them from hosts whose pools crash
for another reason, and warns about hosts that will break on the next patch night.

EXIT STATUS
  0    all good
  1    a host failed or needs attention
  2    usage or input error; nothing was touched
  3    aborted (reserved for the remediation commands, not built yet)
  130  interrupted`

func newRootCmd(ios *ioStreams, getenv func(string) string, started *bool) *cobra.Command {
	opts := &globalOptions{getenv: getenv}
	root := &cobra.Command{
		Use:           "iisremedy",
		Short:         "Detect and remediate the IIS 6 binary mismatch exposed by KB982666",
		Long:          rootLong,
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

	f := root.PersistentFlags()
	f.StringVarP(&opts.User, "user", "u", "Administrator", "user name for WinRM (DOMAIN\\user or user@domain for a domain account)")
	f.StringVar(&opts.PasswordEnv, "password-env", "IISREMEDY_PASSWORD", "name of the environment variable holding the password (a prompt on a terminal when unset)")
	f.StringVar(&opts.Auth, "auth", "negotiate", "WinRM authentication: negotiate or basic")
	f.IntVar(&opts.Parallel, "parallel", 20, "hosts worked on at once")
	f.BoolVar(&opts.AllowUnencrypted, "allow-unencrypted", false, "allow Basic authentication over plain HTTP (the password crosses the network readable)")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "print only results and errors")
	f.BoolVar(&opts.Debug, "debug", false, "log WinRM retries and cleanups on standard error (never credentials)")

	root.AddCommand(
		newDetectCmd(ios, opts),
		newDiagnoseCmd(ios),
		newProbeScriptCmd(ios),
		newPlaybooksCmd(ios),
		newLabCmd(ios, opts),
		newVersionCmd(ios),
	)
	return root
}

func (o *globalOptions) validate() error {
	switch o.Auth {
	case "negotiate", "basic":
	case "kerberos", "certificate":
		return usageErrorf("--auth %s: not supported yet; use negotiate or basic", o.Auth)
	default:
		return usageErrorf("--auth %q: want negotiate or basic", o.Auth)
	}
	if o.Parallel < 1 || o.Parallel > 1000 {
		return usageErrorf("--parallel %d: want 1 to 1000", o.Parallel)
	}
	if o.PasswordEnv == "" {
		return usageErrorf("--password-env: empty variable name")
	}
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

// run executes one command line and returns its exit code. Errors are printed here, once.
func run(ctx context.Context, args []string, ios *ioStreams) exitCode {
	return runWithEnv(ctx, args, ios, os.Getenv)
}

// runWithEnv is run with the environment read through getenv.
func runWithEnv(ctx context.Context, args []string, ios *ioStreams, getenv func(string) string) exitCode {
	started := false
	root := newRootCmd(ios, getenv, &started)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		// An interrupt that a command absorbed is still not a success.
		err = ctx.Err()
	}
	if err != nil && !started {
		// Cobra rejected the command line before any command ran: unknown command,
		// wrong argument count. That is a usage error whatever its type.
		err = asUsage(err)
	}
	code := exitCodeFor(err)
	switch {
	case err == nil, errors.Is(err, errNeedsAttention):
	case code == exitInterrupted:
		fmt.Fprintln(ios.ErrOut, "iisremedy: interrupted")
	default:
		fmt.Fprintf(ios.ErrOut, "iisremedy: %v\n", err)
	}
	return code
}
