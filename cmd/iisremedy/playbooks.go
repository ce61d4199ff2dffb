package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/spf13/cobra"
)

func newPlaybooksCmd(ios *ioStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbooks",
		Short: "List, show and validate playbooks",
		Example: `  iisremedy playbooks list
  iisremedy playbooks show kb982666 > mine.yaml
  iisremedy playbooks validate mine.yaml`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:     "list",
			Short:   "List the embedded playbooks",
			Example: "  iisremedy playbooks list",
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTRIGGERS\tTITLE")
				for _, name := range playbooks.Embedded() {
					pb, err := playbooks.Get(name)
					if err != nil {
						return err
					}
					var kbs []string
					for _, t := range pb.Triggers {
						kbs = append(kbs, t.KB)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", pb.Name, strings.Join(kbs, ","), pb.Title)
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:               "show NAME",
			Short:             "Print an embedded playbook's YAML",
			Example:           "  iisremedy playbooks show kb973917",
			Args:              oneArg("the name of an embedded playbook (see playbooks list)"),
			ValidArgsFunction: fixedCompletion(playbooks.Embedded()),
			RunE: func(cmd *cobra.Command, args []string) error {
				src, err := playbooks.EmbeddedSource(args[0])
				if err != nil {
					return asUsage(err)
				}
				_, err = ios.Out.Write(src)
				return err
			},
		},
		&cobra.Command{
			Use:     "validate FILE",
			Short:   "Check a playbook file; every problem is listed with its line and field",
			Example: "  iisremedy playbooks validate mine.yaml",
			Args:    oneArg("the playbook file to check"),
			RunE: func(cmd *cobra.Command, args []string) error {
				pb, err := playbooks.LoadFile(args[0])
				if err != nil {
					return asUsage(err)
				}
				_, err = fmt.Fprintf(ios.Out, "%s: ok (playbook %s)\n", args[0], pb.Name)
				return err
			},
		},
	)
	return cmd
}
