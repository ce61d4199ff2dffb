package main

import (
	"bytes"
	"io"
	"os"

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
	readPassword func() ([]byte, error)
}

func systemStreams() *ioStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	s := &ioStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, stderrTTY: isTTY(os.Stderr)}
	if isTTY(os.Stdin) {
		s.readPassword = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
	}
	return s
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
