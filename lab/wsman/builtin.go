package wsman

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// builtinHost is the minimal host used when Server.Host is nil. It understands a handful of
// cmd.exe command lines joined by " & ":
//
//	echo TEXT [1>&2]        prints TEXT and CRLF (to stderr with 1>&2 or >&2)
//	exit /b N               ends the command line with exit code N
//	hostname                prints the host name
//	findstr "^"             copies stdin to stdout until End="true"
//	ping -n N 127.0.0.1     prints N replies, one scaled second apart (N-1 seconds in all)
//	cmd /c LINE             runs LINE
//
// Anything else prints cmd.exe's "is not recognized" text to stderr and sets exit code 9009.
type builtinHost struct {
	hostname string
	second   time.Duration
}

// exitTerminated is what a process killed by Signal terminate or shell deletion reports
// (STATUS_CONTROL_C_EXIT; unconfirmed: what Windows reports for a terminated winrs process is unknown).
const exitTerminated = -1073741510 // 0xC000013A as a signed 32-bit value

func (h *builtinHost) Exec(ctx context.Context, cmdline string, stdin io.Reader, stdout, stderr io.Writer) int {
	code := 0
	for _, part := range splitAmp(cmdline) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var exit bool
		code, exit = h.run(ctx, part, stdin, stdout, stderr)
		if exit || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return exitTerminated
	}
	return code
}

func (h *builtinHost) run(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) (code int, exit bool) {
	lower := strings.ToLower(line)
	switch {
	case strings.HasPrefix(lower, "cmd /c "):
		// Only the child cmd.exe ends; the outer line goes on after "&", as in cmd.exe.
		return h.Exec(ctx, strings.Trim(strings.TrimSpace(line[7:]), `"`), stdin, stdout, stderr), false
	case lower == "echo." || lower == "echo":
		fmt.Fprint(stdout, "\r\n")
	case strings.HasPrefix(lower, "echo "):
		text, w := line[5:], stdout
		for _, redir := range []string{"1>&2", ">&2"} {
			if strings.HasSuffix(text, redir) {
				text, w = strings.TrimRight(strings.TrimSuffix(text, redir), " "), stderr
				break
			}
		}
		fmt.Fprint(w, text+"\r\n")
	case strings.HasPrefix(lower, "exit /b"):
		n, err := strconv.Atoi(strings.TrimSpace(line[7:]))
		if err != nil {
			n = 0
		}
		return n, true
	case lower == "hostname":
		fmt.Fprint(stdout, h.hostname+"\r\n")
	case lower == `findstr "^"` || lower == "findstr ^":
		_, _ = io.Copy(stdout, stdin)
	case strings.HasPrefix(lower, "ping -n "):
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 || len(f) < 4 {
			fmt.Fprint(stdout, "Bad value for option -n, valid range is from 1 to 4294967295.\r\n")
			return 1, false
		}
		return h.ping(ctx, n, f[3], stdout), false
	default:
		name := strings.Fields(line)[0]
		fmt.Fprintf(stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", name)
		return 9009, false
	}
	return 0, false
}

// ping prints Windows-like ping output; it waits one scaled second between replies.
func (h *builtinHost) ping(ctx context.Context, n int, target string, stdout io.Writer) int {
	fmt.Fprintf(stdout, "\r\nPinging %s with 32 bytes of data:\r\n\r\n", target)
	for i := 0; i < n; i++ {
		if i > 0 {
			t := time.NewTimer(h.second)
			select {
			case <-ctx.Done():
				t.Stop()
				return exitTerminated
			case <-t.C:
			}
		}
		fmt.Fprintf(stdout, "Reply from %s: bytes=32 time<1ms TTL=128\r\n", target)
	}
	fmt.Fprintf(stdout, "\r\nPing statistics for %s:\r\n    Packets: Sent = %d, Received = %d, Lost = 0 (0%% loss),\r\n", target, n, n)
	return 0
}

// splitAmp splits a command line on cmd.exe's & separator, leaving the & of a ">&2" redirection alone.
func splitAmp(line string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(line); i++ {
		if line[i] == '&' && (i == 0 || line[i-1] != '>') {
			parts = append(parts, line[start:i])
			start = i + 1
		}
	}
	return append(parts, line[start:])
}
