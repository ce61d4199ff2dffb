//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// backgroundChildFlag marks the process a `lab serve --background` parent starts.
const backgroundChildFlag = "background-child"

// readyFD is the descriptor the background server reports readiness on (the parent's pipe).
const readyFD = 3

// startBackground runs `lab serve` again, with the same flags, as a process of its own (a new
// session, so the terminal's hangup does not reach it), relays what it prints until its hosts
// listen, writes its PID and returns. When the server fails instead, its message has been
// relayed and its exit status is this command's.
func startBackground(ctx context.Context, cmd *cobra.Command, ios *ioStreams, pidFile string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--background: %w", err)
	}
	args := strings.Fields(cmd.CommandPath())[1:]
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "background", "pid-file":
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		args = append(args, "--"+f.Name+"="+v)
	})
	args = append(args, "--"+backgroundChildFlag)
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	c := exec.CommandContext(ctx, exe, args...)
	c.Stdin = nil
	c.ExtraFiles = []*os.File{readyW} // descriptor 3 in the child
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := c.StderrPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		readyW.Close()
		return fmt.Errorf("--background: %w", err)
	}
	readyW.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(ios.Out, stdout) })
	wg.Go(func() { _, _ = io.Copy(ios.ErrOut, stderr) })
	status, _ := io.ReadAll(ready)
	wg.Wait()
	if !bytes.Equal(status, []byte("ready\n")) {
		err := c.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &silentError{code: exitCode(ee.ExitCode())}
		}
		return fmt.Errorf("--background: the lab server stopped: %v", err)
	}
	pid := c.Process.Pid
	_ = c.Process.Release()
	if pidFile != "" {
		if err := writeFileAtomic(pidFile, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, pid)
			return err
		}); err != nil {
			return err
		}
	}
	fmt.Fprintf(ios.ErrOut, "lab: served in the background by process %s; stop it with: kill %s\n", strconv.Itoa(pid), strconv.Itoa(pid))
	return nil
}

// detachOutput ends a background server's output once its hosts listen: the parent is told it
// may return, and the terminal hears nothing more from this process.
func detachOutput(ios *ioStreams) {
	if f := os.NewFile(readyFD, "ready"); f != nil {
		_, _ = f.WriteString("ready\n")
		_ = f.Close()
	}
	ios.Out, ios.ErrOut = io.Discard, io.Discard
	_ = os.Stdout.Close()
	_ = os.Stderr.Close()
}
