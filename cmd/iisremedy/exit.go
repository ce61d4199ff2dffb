package main

import (
	"context"
	"errors"
	"fmt"
)

// exitCode is the process exit status; docs/design.md §3.4 fixes the values.
type exitCode int

const (
	exitOK          exitCode = 0   // all good
	exitAttention   exitCode = 1   // a host failed or needs attention
	exitUsage       exitCode = 2   // usage or input error; nothing was touched
	exitInterrupted exitCode = 130 // interrupted by a signal
)

// usageError is bad input: flags, arguments or an input file. It exits 2 and its message
// names the flag, or the file and line, at fault.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err as bad input; nil stays nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// silentError ends the command with code; its message has been printed already (by the
// background lab server whose output this process relayed).
type silentError struct{ code exitCode }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errNeedsAttention reports that the command did its job and printed its results, but at least
// one host failed or needs an admin's attention. Its message is not printed again.
var errNeedsAttention = errors.New("at least one host needs attention")

// exitCodeFor maps the error a command returned to the exit code, in one place.
func exitCodeFor(err error) exitCode {
	var usage *usageError
	var silent *silentError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &silent):
		return silent.code
	case errors.Is(err, errAborted):
		return exitAborted
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &usage):
		return exitUsage
	default:
		return exitAttention
	}
}
