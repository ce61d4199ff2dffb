package main

import (
	"fmt"
	"strings"
)

// password returns the WinRM password: the environment variable named by --password-env, else
// a prompt on the terminal. It is never taken from a flag value, which would end up in shell
// history and process listings.
func (o *globalOptions) password(ios *ioStreams) (string, error) {
	if p := o.getenv(o.PasswordEnv); p != "" {
		return p, nil
	}
	if !ios.CanPrompt() {
		return "", usageErrorf("no password: set $%s (or run on a terminal to be asked)", o.PasswordEnv)
	}
	fmt.Fprintf(ios.ErrOut, "Password for %s: ", o.User)
	b, err := ios.readPassword()
	fmt.Fprintln(ios.ErrOut)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", usageErrorf("empty password")
	}
	return p, nil
}
