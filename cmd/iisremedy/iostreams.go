package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// ioStreams is the one place the commands reach the terminal through: data goes to Out,
// progress, status and warnings to ErrOut. Tests build it with testStreams.
type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stderrTTY bool
	// readPassword reads a secret from the terminal without echo; nil when In is not a terminal.
	// It returns when ctx ends, with the terminal restored.
	readPassword func(ctx context.Context) ([]byte, error)
}

func systemStreams() *ioStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	s := &ioStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, stderrTTY: isTTY(os.Stderr)}
	if isTTY(os.Stdin) {
		s.readPassword = readTerminalPassword
	}
	return s
}

// readTerminalPassword reads a line from the terminal without echo. Ctrl-C or SIGTERM end
// the wait: the terminal gets its echo back and the read is abandoned (the process is about
// to exit).
func readTerminalPassword(ctx context.Context) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		return nil, ctx.Err()
	}
}

// testStreams returns streams backed by buffers, with every TTY flag off.
func testStreams() (s *ioStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &ioStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStderrTTY reports whether progress bars may be drawn.
func (s *ioStreams) IsStderrTTY() bool { return s.stderrTTY }

// CanPrompt reports whether a secret may be asked for interactively.
func (s *ioStreams) CanPrompt() bool { return s.readPassword != nil && s.stderrTTY }

// lockedWriter serialises the writes of many goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
