package wsman

import (
	"context"
	"io"
)

// Host runs the command lines of one simulated machine, as cmd.exe under a WinRM shell would.
// Exec blocks until the command ends or ctx is cancelled (Signal terminate, shell deleted) and
// returns the process exit code. stdin reaches EOF when the client sends End="true".
// Implementations must be safe for concurrent use: a shell may run commands while another
// shell of the same host runs others.
type Host interface {
	Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int
}
