package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iisremedy/iisremedy/remediate"
	"github.com/schollz/progressbar/v3"
)

// stepProgress shows a remediation or a staging run. On a terminal: one bar per installer
// transfer (bytes, rate, time left) above a bar of the hosts finished, redrawn in place. Elsewhere:
// one plain line per host and step as it ends. Nothing with --quiet.
type stepProgress struct {
	ios   *ioStreams
	quiet bool

	mu        sync.Mutex
	hosts     *progressbar.ProgressBar // nil when not on a terminal
	transfers map[string]*progressbar.ProgressBar
	drawn     int // lines drawn by the last redraw
	stop      chan struct{}
	stopped   chan struct{}
}

func newStepProgress(ios *ioStreams, quiet bool, hosts int, what string) *stepProgress {
	p := &stepProgress{ios: ios, quiet: quiet, transfers: map[string]*progressbar.ProgressBar{}}
	if quiet || !ios.IsStderrTTY() {
		return p
	}
	p.hosts = progressbar.NewOptions(hosts, progressbar.OptionSetWriter(io.Discard), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionSetRenderBlankState(true))
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go p.redraw()
	return p
}

// event is a remediate.Engine.Events callback.
func (p *stepProgress) event(ev remediate.HostStep) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hosts == nil {
		if ev.State == remediate.StepStarted && ev.Detail == "" {
			return // a log reads better with each step once, when it ends
		}
		line := fmt.Sprintf("%s: %s %s", printable(ev.Host), ev.Step, ev.State)
		if ev.Detail != "" {
			line += ": " + printable(ev.Detail)
		}
		fmt.Fprintln(p.ios.ErrOut, line)
		return
	}
	if ev.Step == remediate.StepStage && ev.State != remediate.StepStarted {
		delete(p.transfers, ev.Host)
	}
}

// hostDone counts a host that finished.
func (p *stepProgress) hostDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hosts != nil {
		_ = p.hosts.Add(1)
	}
}

// transfer is a remediate.Engine.Transfer callback.
func (p *stepProgress) transfer(host string, sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hosts == nil {
		return
	}
	b := p.transfers[host]
	if b == nil {
		b = progressbar.NewOptions64(total, progressbar.OptionSetWriter(io.Discard), progressbar.OptionSetDescription(printable(host)),
			progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(20), progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionThrottle(100*time.Millisecond))
		p.transfers[host] = b
	}
	_ = b.Set64(sent)
}

// redraw repaints the bars in place five times a second (the screen's time, not the engine's).
func (p *stepProgress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.paint()
		case <-p.stop:
			p.paint()
			return
		}
	}
}

func (p *stepProgress) paint() {
	p.mu.Lock()
	defer p.mu.Unlock()
	hosts := make([]string, 0, len(p.transfers))
	for h := range p.transfers {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	lines := 0
	for _, h := range hosts {
		fmt.Fprintf(&b, "\r\x1b[2K%s\n", strings.TrimLeft(p.transfers[h].String(), "\r"))
		lines++
	}
	fmt.Fprintf(&b, "\r\x1b[2K%s\n", strings.TrimLeft(p.hosts.String(), "\r"))
	lines++
	// Lines left over from a longer picture are cleared.
	for i := lines; i < p.drawn; i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	if extra := p.drawn - lines; extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	p.drawn = lines
	_, _ = io.WriteString(p.ios.ErrOut, b.String())
}

func (p *stepProgress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.stopped
	}
}
