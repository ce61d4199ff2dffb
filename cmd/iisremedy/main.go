// Command iisremedy finds Windows Server 2003 + IIS 6 hosts broken (or about to be broken) by the
// binary mismatch that KB982666 and KB973917 expose, and re-applies Service Pack 2 where the
// symptoms are confirmed. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	first, second := interrupts()
	code := run(withHardStop(first, second), os.Args[1:], systemStreams())
	os.Exit(int(code))
}

// interrupts returns a context cancelled by the first Ctrl-C or SIGTERM and one cancelled by
// the second: a remediation drains on the first (every host reaches a safe point) and stops at
// once on the second.
func interrupts() (first, second context.Context) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	first, stopFirst := context.WithCancel(context.Background())
	second, stopSecond := context.WithCancel(context.Background())
	go func() {
		<-ch
		stopFirst()
		<-ch
		stopSecond()
	}()
	return first, second
}

type hardStopKey struct{}

// withHardStop attaches to ctx (ended by the first interrupt) the context the second interrupt
// ends.
func withHardStop(ctx, hard context.Context) context.Context {
	return context.WithValue(ctx, hardStopKey{}, hard)
}

// hardStop returns the context a second interrupt ends; without one, ctx itself.
func hardStop(ctx context.Context) context.Context {
	if h, ok := ctx.Value(hardStopKey{}).(context.Context); ok {
		return h
	}
	return ctx
}
