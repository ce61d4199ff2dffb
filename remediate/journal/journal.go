// Package journal records remediation runs in an SQLite file: the runs, each host's state and
// steps, the facts before and after, a transcript of every remote command, and the locks,
// approvals and progress of scheduled waves. It is the durable record of what the tool did:
// the engine writes it, `iisremedy history` and `iisremedy report` read it.
//
// A Journal is safe for concurrent use by many goroutines, and several processes may open the
// same file (a second `waves run`, a `history` while a run goes on): the file is in WAL mode,
// every connection waits out another's write (busy timeout), writes inside a process go
// through one connection, and the waves lock is taken in BEGIN IMMEDIATE transactions.
//
// Secrets named in Options.Redact never reach the file: every text and blob value is redacted
// on its way in. Stdout and stderr of a command are capped (Options.MaxOutput).
//
// Methods take no context: a write is local and bounded by the busy timeout, and the engine
// must still record an interruption after its context has ended.
package journal

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver: pure Go, no cgo
)

// DefaultMaxOutput is the cap of stdout and of stderr kept per command when Options.MaxOutput
// is 0.
const DefaultMaxOutput = 64 << 10

// busyTimeout is how long a statement waits for another connection's write, here or in
// another process. Writes are single short transactions, so a longer wait means a stuck
// writer, not load.
const busyTimeout = 30 * time.Second

// readers bounds the read connections: `history` and `report` read little, the engine reads
// only when resuming.
const readers = 4

// ErrNotFound is returned (wrapped) when a run, facts or a record asked for is not in the
// journal.
var ErrNotFound = errors.New("not found")

// Options tune a Journal. The zero value is ready for use.
type Options struct {
	// Redact lists secrets (the WinRM password, pull-server tokens) that are replaced by
	// "[redacted]" in every value written; empty strings are ignored.
	Redact []string
	// MaxOutput caps the bytes of stdout and of stderr kept per command: when one is longer,
	// its head (a quarter) and tail (the rest) are kept around one marker line that says how
	// many bytes were left out. 0 means DefaultMaxOutput; a negative value keeps everything.
	MaxOutput int
	// Now is the clock for the times the journal stamps itself (a record given with a zero
	// time); nil means time.Now. It is called from any goroutine.
	Now func() time.Time
}

// Journal is an open journal file.
type Journal struct {
	path      string
	w         *sql.DB // one connection: the only writer of this process
	r         *sql.DB // read-only connections, concurrent with the writer under WAL
	redact    *redactor
	maxOutput int
	now       func() time.Time
}

// Open opens the journal at path, creating it (and its directory, owner-only) when it does
// not exist, and brings its schema to the current version. It refuses a directory, a file that
// is not an SQLite database or not a journal, and a journal of a newer schema version.
func Open(path string, opts Options) (*Journal, error) {
	if path == "" {
		return nil, errors.New("journal: no file named")
	}
	// The driver reads a query string after the first '?', so such a name cannot be passed.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("journal %s: a file name with '?' is not supported", path)
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	j := &Journal{
		path:      path,
		redact:    newRedactor(opts.Redact),
		maxOutput: opts.MaxOutput,
		now:       opts.Now,
	}
	if j.maxOutput == 0 {
		j.maxOutput = DefaultMaxOutput
	}
	if j.now == nil {
		j.now = time.Now
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", busyTimeout.Milliseconds())
	var err error
	// _txlock=immediate: every write transaction takes the write lock when it begins, so a
	// read-then-write (the waves lock) cannot interleave with another process's.
	// _synchronous=FULL: a step recorded survives a power cut of the control machine too; it
	// costs an fsync a write, and still writes over a thousand steps a second, far above what
	// a fleet produces.
	if j.w, err = sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate"); err != nil {
		return nil, j.errf("%w", err)
	}
	j.w.SetMaxOpenConns(1)
	if err := j.migrate(); err != nil {
		j.w.Close()
		return nil, err
	}
	if j.r, err = sql.Open("sqlite", path+"?"+common+"&_query_only=1"); err != nil {
		j.w.Close()
		return nil, j.errf("%w", err)
	}
	j.r.SetMaxOpenConns(readers)
	return j, nil
}

// prepareFile creates path's directory (0700) and the file itself (0600, so that the WAL and
// shared-memory files SQLite makes beside it get the same mode), and checks that an existing
// file is a readable SQLite database, to say so in one clear sentence.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("journal %s: create its directory: %w", path, pathErr(err))
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("journal %s: %w", path, pathErr(err))
	case fi.IsDir():
		return fmt.Errorf("journal %s: is a directory, not a journal file", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("journal %s: not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("journal %s: cannot open: %w", path, pathErr(err))
	}
	defer f.Close()
	const magic = "SQLite format 3\x00"
	head := make([]byte, len(magic))
	n, err := io.ReadFull(f, head)
	if n == 0 && errors.Is(err, io.EOF) {
		return nil // empty: SQLite makes it a new database
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("journal %s: cannot read: %w", path, pathErr(err))
	}
	if !bytes.Equal(head[:n], []byte(magic)) {
		return fmt.Errorf("journal %s: not an SQLite database (not a journal file)", path)
	}
	return nil
}

// pathErr strips the path from an *fs.PathError: the message names the path already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// DefaultPath is where the journal lives when no file is named: journal.db in iisremedy's
// folder of the user's state directory ($XDG_STATE_HOME or ~/.local/state on Linux and BSD,
// ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows).
func DefaultPath() (string, error) {
	return defaultPath(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func defaultPath(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	var dir string
	switch goos {
	case "windows":
		dir = getenv("LOCALAPPDATA")
		if dir == "" {
			return "", errors.New("journal: no default file: %LOCALAPPDATA% is not set")
		}
	case "darwin", "ios":
		h, err := home()
		if err != nil {
			return "", fmt.Errorf("journal: no default file: %w", err)
		}
		dir = filepath.Join(h, "Library", "Application Support")
	default:
		// The XDG spec says to ignore a relative $XDG_STATE_HOME.
		if dir = getenv("XDG_STATE_HOME"); !filepath.IsAbs(dir) {
			h, err := home()
			if err != nil {
				return "", fmt.Errorf("journal: no default file: %w", err)
			}
			dir = filepath.Join(h, ".local", "state")
		}
	}
	return filepath.Join(dir, "iisremedy", "journal.db"), nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Close closes the journal. The last connection to the file to close folds the WAL back into
// it.
func (j *Journal) Close() error {
	rerr := j.r.Close()
	if err := j.w.Close(); err != nil {
		return j.errf("close: %w", err)
	}
	if rerr != nil {
		return j.errf("close: %w", rerr)
	}
	return nil
}

// errf makes an error that names the journal's file. Its string arguments (hosts, steps, IDs)
// are redacted too: a secret must not reach the terminal by way of an error either.
func (j *Journal) errf(format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = j.redact.string(s)
		}
	}
	return fmt.Errorf("journal %s: "+format, append([]any{j.path}, args...)...)
}

// exec runs one write statement, its arguments redacted.
func (j *Journal) exec(query string, args ...any) (sql.Result, error) {
	return j.w.Exec(query, j.redact.args(args)...)
}

// txExec runs one write statement inside tx, its arguments redacted.
func (j *Journal) txExec(tx *sql.Tx, query string, args ...any) error {
	_, err := tx.Exec(query, j.redact.args(args)...)
	return err
}

// query runs a read, its arguments redacted as the stored keys were.
func (j *Journal) query(query string, args ...any) (*sql.Rows, error) {
	return j.r.Query(query, j.redact.args(args)...)
}

// tx runs f in one write transaction (BEGIN IMMEDIATE), committing when it returns nil.
func (j *Journal) tx(f func(tx *sql.Tx) error) error {
	tx, err := j.w.Begin()
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// stamp is t, or the journal's clock when t is zero.
func (j *Journal) stamp(t time.Time) time.Time {
	if t.IsZero() {
		return j.now()
	}
	return t
}

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction, so that stored times sort
// as text; time.RFC3339Nano parses it.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// timeText is a time as stored. Its own type keeps it out of redaction: a short secret that
// happens to be digits must not garble the times.
type timeText string

// dbTime is t as stored: NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeText(t.UTC().Format(timeLayout))
}

// timeCol scans a stored time into t: NULL is the zero time.
func timeCol(t *time.Time) sql.Scanner { return timeScanner{t} }

type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*s.t = time.Time{}
		return nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("stored time %q: %w", v, err)
		}
		*s.t = t.UTC()
		return nil
	}
	return fmt.Errorf("stored time of type %T", v)
}

// oneOf checks v against the values a field may take.
func oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q is not one of %s", field, v, strings.Join(allowed, ", "))
}
