//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiagnoseReadsAtMostItsCap: a device without end, a pipe fed forever and a sparse file
// over the cap are each refused as bad input after reading at most the cap.
func TestDiagnoseReadsAtMostItsCap(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, maxCaptureSize+1); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "yes.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		// `yes` into the pipe until diagnose stops reading and the pipe breaks.
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		line := []byte(strings.Repeat("y\n", 4096))
		for {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	for _, path := range []string{"/dev/zero", fifo, big} {
		code, stdout, stderr := runCLI(t, nil, "diagnose", path)
		if code != exitUsage || !strings.Contains(stderr, "is not a probe capture") || stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q", path, code, stderr, stdout)
		}
	}
}

// TestDiagnoseInterruptedRead: a pipe that stays open without data does not hold diagnose after
// an interrupt.
func TestDiagnoseInterruptedRead(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "silent.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A writer that never writes keeps the read blocked.
	w := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w <- f
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	ios, _, _, errOut := testStreams()
	done := make(chan exitCode)
	go func() { done <- runWithEnv(ctx, []string{"diagnose", fifo}, ios, func(string) string { return "" }) }()
	f := <-w // the reader has opened its end
	defer f.Close()
	cancel()
	if code := <-done; code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, exitInterrupted, errOut)
	}
}

// TestDiagnoseInterruptedOpen: a named pipe nobody writes to blocks in open; an interrupt
// still ends diagnose.
func TestDiagnoseInterruptedOpen(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "nobody.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, _, _, _ := testStreams()
	if code := runWithEnv(ctx, []string{"diagnose", fifo}, ios, func(string) string { return "" }); code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	// Let the abandoned open finish, so the test leaves no goroutine blocked.
	if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
		f.Close()
	}
}
