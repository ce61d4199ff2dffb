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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], systemStreams())
	stop()
	os.Exit(int(code))
}
