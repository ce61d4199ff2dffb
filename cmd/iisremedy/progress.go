package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows hosts finishing: a bar on a terminal (stderr), one plain line per host
// otherwise, nothing with --quiet.
type progress struct {
	ios   *ioStreams
	quiet bool
	bar   *progressbar.ProgressBar
}

func newProgress(ios *ioStreams, quiet bool, total int, what string) *progress {
	p := &progress{ios: ios, quiet: quiet}
	if !quiet && ios.IsStderrTTY() {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(ios.ErrOut),
			progressbar.OptionSetVisibility(true),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// done records one finished item; line describes it for non-terminal output.
func (p *progress) done(line string) {
	switch {
	case p.quiet:
	case p.bar != nil:
		_ = p.bar.Add(1)
	default:
		fmt.Fprintln(p.ios.ErrOut, line)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
