package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iisremedy/iisremedy/remediate/journal"
	"github.com/spf13/cobra"
)

func newHistoryCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	var path string
	var limit int
	cmd := &cobra.Command{
		Use:   "history [RUN]",
		Short: "List the runs in the journal, or show one",
		Long: `List the runs recorded in the journal, newest first: when, which command and plan, how
they ended, and their hosts' outcomes. With a run ID (or a unique prefix of one) show that run
as 'iisremedy report RUN' does.`,
		Example: `  iisremedy history
  iisremedy history 20100621T0900`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("%s: give at most one run ID", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := openJournal(path)
			if err != nil {
				return err
			}
			defer j.Close()
			if len(args) == 1 {
				return writeReport(ios.Out, j, args[0], "table")
			}
			return writeHistory(ios.Out, j, limit)
		},
	}
	cmd.Flags().StringVar(&path, "journal", "", "journal `FILE` (default: journal.db in the user's state directory)")
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many runs")
	return cmd
}

func newReportCmd(ios *ioStreams, global *globalOptions) *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "report RUN",
		Short: "Render one run from the journal: per host the verdict, outcome, step times and evidence",
		Example: `  iisremedy report 20100621T090000Z-3fa2c1 -o markdown > run.md
  iisremedy report 2010062 -o json`,
		Args: oneArg("the ID of a run (see iisremedy history), or a unique prefix of one"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			j, err := openJournal(path)
			if err != nil {
				return err
			}
			defer j.Close()
			return writeReport(ios.Out, j, args[0], output)
		},
	}
	cmd.Flags().StringVar(&path, "journal", "", "journal `FILE` (default: journal.db in the user's state directory)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or markdown")
	completeOutput(cmd)
	return cmd
}

func writeHistory(w io.Writer, j *journal.Journal, limit int) error {
	runs, err := j.Runs(limit)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		_, err := fmt.Fprintf(w, "no runs in %s\n", j.Path())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tCOMMAND\tSTARTED\tTOOK\tSTATUS\tHOSTS")
	for _, r := range runs {
		hosts, err := j.Hosts(r.ID)
		if err != nil {
			return err
		}
		took := "-"
		if !r.Ended.IsZero() {
			took = r.Ended.Sub(r.Started).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Command, r.Started.Local().Format("2006-01-02 15:04:05"), took, r.Status, hostCounts(hosts))
	}
	return tw.Flush()
}

// hostCounts sums a run's hosts by outcome.
func hostCounts(hosts []journal.HostState) string {
	counts := map[string]int{}
	var order []string
	for _, h := range hosts {
		o := h.Outcome
		if o == "" {
			o = "in progress"
		}
		if counts[o] == 0 {
			order = append(order, o)
		}
		counts[o]++
	}
	parts := make([]string, len(order))
	for i, o := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[o], o)
	}
	return strings.Join(parts, ", ")
}

// hostRunReport is one host of a run report.
type hostRunReport struct {
	Host          string           `json:"host"`
	VerdictBefore string           `json:"verdict_before"`
	Outcome       string           `json:"outcome"`
	Step          string           `json:"step,omitempty"`
	Steps         []stepTimeReport `json:"steps"`
	Evidence      []string         `json:"evidence"`
}

// stepTimeReport is how long a step took and how it ended.
type stepTimeReport struct {
	Step    string    `json:"step"`
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Took    string    `json:"took"`
	Detail  string    `json:"detail,omitempty"`
}

func writeReport(w io.Writer, j *journal.Journal, id, format string) error {
	r, err := j.Run(id)
	if errors.Is(err, journal.ErrNotFound) {
		return usageErrorf("run %q: %v (see iisremedy history)", id, err)
	}
	if err != nil {
		return asUsage(err)
	}
	hosts, err := j.Hosts(r.ID)
	if err != nil {
		return err
	}
	steps, err := j.Steps(r.ID, "")
	if err != nil {
		return err
	}
	byHost := map[string][]journal.StepEvent{}
	for _, s := range steps {
		byHost[s.Host] = append(byHost[s.Host], s)
	}
	reports := make([]hostRunReport, len(hosts))
	for i, h := range hosts {
		reports[i] = hostRunReport{Host: h.Host, VerdictBefore: h.VerdictBefore, Outcome: orDefault(h.Outcome, "in progress"),
			Step: h.Step, Steps: stepTimes(byHost[h.Host]), Evidence: h.Evidence}
		if reports[i].Evidence == nil {
			reports[i].Evidence = []string{}
		}
	}
	switch format {
	case "json":
		return writeJSON(w, struct {
			Run   journal.Run     `json:"run"`
			Hosts []hostRunReport `json:"hosts"`
		}{r, reports})
	case "markdown":
		var b strings.Builder
		fmt.Fprintf(&b, "# iisremedy run %s\n\n- Command: %s; status %s\n- Started %s", r.ID, r.Command, r.Status, r.Started.Format(time.RFC3339))
		if !r.Ended.IsZero() {
			fmt.Fprintf(&b, ", ended %s (%s)", r.Ended.Format(time.RFC3339), r.Ended.Sub(r.Started).Round(time.Second))
		}
		fmt.Fprintf(&b, "\n- Plan digest `%s`; runner %s (pid %d)\n- Hosts: %s\n", orDefault(r.PlanDigest, "none"), markdownText(r.Host), r.PID, hostCounts(hosts))
		for _, h := range reports {
			fmt.Fprintf(&b, "\n## %s\n\nVerdict before: %s. Outcome: **%s**", markdownText(h.Host), markdownText(h.VerdictBefore), markdownText(h.Outcome))
			if h.Step != "" && h.Outcome != "remediated" {
				fmt.Fprintf(&b, " (at %s)", markdownText(h.Step))
			}
			b.WriteString(".\n\n")
			if len(h.Steps) > 0 {
				b.WriteString("| step | ended | took | detail |\n|---|---|---|---|\n")
				for _, s := range h.Steps {
					fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", markdownText(s.Step), markdownText(s.State), s.Took, markdownText(s.Detail))
				}
				b.WriteString("\n")
			}
			for _, e := range h.Evidence {
				fmt.Fprintf(&b, "- %s\n", markdownText(e))
			}
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run %s (%s, %s)\n\n", r.ID, r.Command, r.Status)
	fmt.Fprintln(tw, "HOST\tVERDICT BEFORE\tOUTCOME\tSTEPS\tDETAIL")
	for _, h := range reports {
		var st []string
		for _, s := range h.Steps {
			st = append(st, fmt.Sprintf("%s %s", s.Step, s.Took))
		}
		detail := ""
		if n := len(h.Evidence); n > 0 {
			detail = h.Evidence[n-1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(h.Host), printable(h.VerdictBefore), printable(h.Outcome), printable(strings.Join(st, ", ")), printable(detail))
	}
	return tw.Flush()
}

// stepTimes pairs each step's start with its end.
func stepTimes(events []journal.StepEvent) []stepTimeReport {
	var out []stepTimeReport
	open := map[string]int{}
	for _, e := range events {
		if e.State == journal.StepStarted {
			if _, ok := open[e.Step]; !ok {
				open[e.Step] = len(out)
				out = append(out, stepTimeReport{Step: e.Step, State: "running", Started: e.At, Took: "-"})
			}
			continue
		}
		i, ok := open[e.Step]
		if !ok {
			out = append(out, stepTimeReport{Step: e.Step, State: e.State, Started: e.At, Took: "0s", Detail: e.Detail})
			continue
		}
		delete(open, e.Step)
		out[i].State, out[i].Detail = e.State, e.Detail
		out[i].Took = e.At.Sub(out[i].Started).Round(time.Second).String()
	}
	return out
}
