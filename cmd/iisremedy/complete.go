package main

import (
	"fmt"
	"strings"

	"github.com/iisremedy/iisremedy/lab"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/spf13/cobra"
)

// noArgs refuses arguments, saying which flag the command takes its input from instead.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments (got %q); see --help", cmd.CommandPath(), args[0])
	}
	return nil
}

// argsWanted requires at least one argument and says what to give.
func argsWanted(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("%s: give %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// oneArg requires exactly one argument and says what it is.
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch len(args) {
		case 0:
			return usageErrorf("%s: give %s", cmd.CommandPath(), what)
		case 1:
			return nil
		}
		return usageErrorf("%s: give only %s (got %d arguments)", cmd.CommandPath(), what, len(args))
	}
}

func fixedCompletion(values []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, v := range values {
			if strings.HasPrefix(v, prefix) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeOutput completes -o with the output formats.
func completeOutput(cmd *cobra.Command) {
	must(cmd.RegisterFlagCompletionFunc("output", fixedCompletion(outputFormats)))
}

// completePlaybook completes --playbook with the embedded names, and files.
func completePlaybook(cmd *cobra.Command) {
	must(cmd.RegisterFlagCompletionFunc("playbook", func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, n := range playbooks.Embedded() {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveDefault
	}))
}

// completeScenario completes --scenario with mix and the lab's scenarios.
func completeScenario(cmd *cobra.Command) {
	must(cmd.RegisterFlagCompletionFunc("scenario", fixedCompletion(append([]string{"mix"}, lab.Scenarios()...))))
}

// must panics on a programming error in the command tree (a completion for a flag that does
// not exist); it never sees input.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("command setup: %v", err))
	}
}
