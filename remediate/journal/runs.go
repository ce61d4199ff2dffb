package journal

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Run statuses.
const (
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	StatusAborted     = "aborted"
)

// Run is one invocation of a command that works on hosts.
type Run struct {
	ID         string          `json:"id"`      // NewRunID
	Command    string          `json:"command"` // "run", "apply", "stage", "waves run", "lab"
	PlanDigest string          `json:"plan_digest,omitempty"`
	Inventory  string          `json:"inventory,omitempty"`
	Started    time.Time       `json:"started"`
	Ended      time.Time       `json:"ended,omitzero"` // zero while running
	Status     string          `json:"status"`         // a Status constant
	Options    json.RawMessage `json:"options,omitempty"`
	Host       string          `json:"host"` // the machine the runner ran on
	PID        int             `json:"pid"`  // the runner's process
}

// NewRunID makes a run ID that sorts by its start time: the UTC second, then 6 random hex
// digits that keep runs of the same second apart, e.g. "20100621T090000Z-3fa2c1".
func NewRunID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program rather than return an error
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// StartRun records a new run. A zero Started is stamped with the journal's clock, an empty
// Status is "running", and an empty Host and zero PID are this process's.
func (j *Journal) StartRun(r Run) error {
	if r.ID == "" || r.Command == "" {
		return j.errf("start run: a run needs an ID and a command")
	}
	if r.Status == "" {
		r.Status = StatusRunning
	}
	if err := oneOf("status", r.Status, StatusRunning, StatusDone, StatusFailed, StatusInterrupted, StatusAborted); err != nil {
		return j.errf("start run %s: %w", r.ID, err)
	}
	if r.Options != nil && !json.Valid(r.Options) {
		return j.errf("start run %s: options are not valid JSON", r.ID)
	}
	if r.Host == "" && r.PID == 0 {
		r.Host, _ = os.Hostname() // no name is no reason to lose the run
		r.PID = os.Getpid()
	}
	_, err := j.exec(`INSERT INTO runs (id, command, plan_digest, inventory, started, ended, status, options, runner_host, runner_pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Command, r.PlanDigest, r.Inventory, dbTime(j.stamp(r.Started)), dbTime(r.Ended), r.Status, jsonText(r.Options), r.Host, r.PID)
	if err != nil {
		return j.errf("start run %s: %w", r.ID, err)
	}
	return nil
}

// EndRun records how run id ended; a zero ended is stamped with the journal's clock.
func (j *Journal) EndRun(id, status string, ended time.Time) error {
	if err := oneOf("status", status, StatusDone, StatusFailed, StatusInterrupted, StatusAborted); err != nil {
		return j.errf("end run %s: %w", id, err)
	}
	res, err := j.exec(`UPDATE runs SET status = ?, ended = ? WHERE id = ?`, status, dbTime(j.stamp(ended)), id)
	if err != nil {
		return j.errf("end run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return j.errf("end run %s: %w", id, ErrNotFound)
	}
	return nil
}

const runColumns = `id, command, plan_digest, inventory, started, ended, status, options, runner_host, runner_pid`

// Runs lists the newest runs first, at most limit of them (limit <= 0: all).
func (j *Journal) Runs(limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	runs, err := j.runs(`SELECT `+runColumns+` FROM runs ORDER BY started DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, j.errf("list runs: %w", err)
	}
	return runs, nil
}

// Run returns the run whose ID is id or, failing that, the one run whose ID starts with id.
// It wraps ErrNotFound when there is none.
func (j *Journal) Run(id string) (Run, error) {
	if id == "" {
		return Run{}, j.errf("run: no ID given: %w", ErrNotFound)
	}
	// The exact match first, then at most two more, to name in the error.
	runs, err := j.runs(`SELECT `+runColumns+` FROM runs WHERE substr(id, 1, length(?1)) = ?1
		ORDER BY id <> ?1, id LIMIT 3`, id)
	switch {
	case err != nil:
		return Run{}, j.errf("run %s: %w", id, err)
	case len(runs) == 0:
		return Run{}, j.errf("run %s: %w", id, ErrNotFound)
	case runs[0].ID == j.redact.string(id) || len(runs) == 1:
		return runs[0], nil
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	if len(runs) > 2 {
		ids[2] = "…"
	}
	return Run{}, j.errf("run %s: the prefix matches several runs (%s): give more of the ID", id, strings.Join(ids, ", "))
}

// LastRun returns the newest run of the plan with that digest, to resume it when it was
// interrupted; ok is false when the plan never ran.
func (j *Journal) LastRun(planDigest string) (r Run, ok bool, err error) {
	runs, err := j.runs(`SELECT `+runColumns+` FROM runs WHERE plan_digest = ? ORDER BY started DESC, id DESC LIMIT 1`, planDigest)
	if err != nil {
		return Run{}, false, j.errf("last run of plan %s: %w", planDigest, err)
	}
	if len(runs) == 0 {
		return Run{}, false, nil
	}
	return runs[0], true, nil
}

func (j *Journal) runs(query string, args ...any) ([]Run, error) {
	return collect(j, query, args, func(rows *sql.Rows) (Run, error) {
		var r Run
		var options sql.NullString
		err := rows.Scan(&r.ID, &r.Command, &r.PlanDigest, &r.Inventory, timeCol(&r.Started), timeCol(&r.Ended),
			&r.Status, &options, &r.Host, &r.PID)
		if options.Valid {
			r.Options = json.RawMessage(options.String)
		}
		return r, err
	})
}

// Host outcomes.
const (
	OutcomeRemediated        = "remediated"
	OutcomeRemediationFailed = "remediation-failed"
	OutcomeRefusedDrift      = "refused-drift"
	OutcomeNotPlanned        = "not-planned"
	OutcomeInterrupted       = "interrupted"
	OutcomeSkipped           = "skipped"
	// OutcomeStaged is a host whose installer was staged and proven, not yet installed: by
	// `stage`, or by a rollout staging ahead of a wave's window.
	OutcomeStaged = "staged"
)

// HostState is where one host of a run stands.
type HostState struct {
	RunID         string    `json:"run_id"`
	Host          string    `json:"host"` // the inventory entry
	VerdictBefore string    `json:"verdict_before"`
	Outcome       string    `json:"outcome,omitempty"` // an Outcome constant, "" while in progress
	Step          string    `json:"step,omitempty"`    // the step it is at, or failed at
	Evidence      []string  `json:"evidence,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	Ended         time.Time `json:"ended,omitzero"`
}

// PutHost records or replaces the state of h.Host in h.RunID. A zero Started keeps the one
// recorded before.
func (j *Journal) PutHost(h HostState) error {
	if h.Outcome != "" {
		if err := oneOf("outcome", h.Outcome, OutcomeRemediated, OutcomeRemediationFailed, OutcomeRefusedDrift,
			OutcomeNotPlanned, OutcomeInterrupted, OutcomeSkipped, OutcomeStaged); err != nil {
			return j.errf("put host %s of run %s: %w", h.Host, h.RunID, err)
		}
	}
	evidence, err := json.Marshal(h.Evidence)
	if err != nil {
		return j.errf("put host %s of run %s: %w", h.Host, h.RunID, err)
	}
	_, err = j.exec(`INSERT INTO hosts (run_id, host, verdict_before, outcome, step, evidence, started, ended)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, host) DO UPDATE SET verdict_before = excluded.verdict_before,
			outcome = excluded.outcome, step = excluded.step, evidence = excluded.evidence,
			started = coalesce(excluded.started, hosts.started), ended = excluded.ended`,
		h.RunID, h.Host, h.VerdictBefore, h.Outcome, h.Step, string(evidence), dbTime(h.Started), dbTime(h.Ended))
	if err != nil {
		return j.errf("put host %s of run %s: %w", h.Host, h.RunID, err)
	}
	return nil
}

// Hosts lists the hosts of a run in the order they were first put.
func (j *Journal) Hosts(runID string) ([]HostState, error) {
	hosts, err := collect(j, `SELECT run_id, host, verdict_before, outcome, step, evidence, started, ended
		FROM hosts WHERE run_id = ? ORDER BY rowid`, []any{runID}, func(rows *sql.Rows) (HostState, error) {
		var h HostState
		var evidence string
		err := rows.Scan(&h.RunID, &h.Host, &h.VerdictBefore, &h.Outcome, &h.Step, &evidence, timeCol(&h.Started), timeCol(&h.Ended))
		if err != nil {
			return h, err
		}
		if err := json.Unmarshal([]byte(evidence), &h.Evidence); err != nil {
			return h, fmt.Errorf("evidence of %s: %w", h.Host, err)
		}
		return h, nil
	})
	if err != nil {
		return nil, j.errf("hosts of run %s: %w", runID, err)
	}
	return hosts, nil
}

// Step states.
const (
	StepStarted = "started"
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// StepEvent is one step of one host starting or ending.
type StepEvent struct {
	RunID  string    `json:"run_id"`
	Host   string    `json:"host"`
	Step   string    `json:"step"`
	State  string    `json:"state"` // a Step constant
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// AddStep appends a step event; a zero At is stamped with the journal's clock.
func (j *Journal) AddStep(e StepEvent) error {
	if err := oneOf("state", e.State, StepStarted, StepDone, StepFailed, StepSkipped); err != nil {
		return j.errf("add step %s of %s in run %s: %w", e.Step, e.Host, e.RunID, err)
	}
	_, err := j.exec(`INSERT INTO steps (run_id, host, step, state, detail, at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.RunID, e.Host, e.Step, e.State, e.Detail, dbTime(j.stamp(e.At)))
	if err != nil {
		return j.errf("add step %s of %s in run %s: %w", e.Step, e.Host, e.RunID, err)
	}
	return nil
}

// Steps lists the step events of one host of a run (host "": of every host) in the order
// they were added.
func (j *Journal) Steps(runID, host string) ([]StepEvent, error) {
	steps, err := collect(j, `SELECT run_id, host, step, state, detail, at FROM steps
		WHERE run_id = ?1 AND (?2 = '' OR host = ?2) ORDER BY id`, []any{runID, host}, func(rows *sql.Rows) (StepEvent, error) {
		var e StepEvent
		err := rows.Scan(&e.RunID, &e.Host, &e.Step, &e.State, &e.Detail, timeCol(&e.At))
		return e, err // scanned before e is read
	})
	if err != nil {
		return nil, j.errf("steps of run %s: %w", runID, err)
	}
	return steps, nil
}

// Facts phases.
const (
	PhaseBefore = "before"
	PhaseAfter  = "after"
)

// PutFacts records (or replaces) the facts of a host in a run, taken before or after the
// remediation (phase).
func (j *Journal) PutFacts(runID, host, phase string, facts json.RawMessage) error {
	if err := oneOf("phase", phase, PhaseBefore, PhaseAfter); err != nil {
		return j.errf("put facts of %s in run %s: %w", host, runID, err)
	}
	if !json.Valid(facts) {
		return j.errf("put facts of %s in run %s: not valid JSON", host, runID)
	}
	_, err := j.exec(`INSERT INTO facts (run_id, host, phase, facts) VALUES (?, ?, ?, ?)
		ON CONFLICT (run_id, host, phase) DO UPDATE SET facts = excluded.facts`,
		runID, host, phase, string(facts))
	if err != nil {
		return j.errf("put facts of %s in run %s: %w", host, runID, err)
	}
	return nil
}

// Facts returns the facts of a host in a run for a phase; it wraps ErrNotFound when none were
// recorded.
func (j *Journal) Facts(runID, host, phase string) (json.RawMessage, error) {
	facts, err := collect(j, `SELECT facts FROM facts WHERE run_id = ? AND host = ? AND phase = ?`,
		[]any{runID, host, phase}, func(rows *sql.Rows) (json.RawMessage, error) {
			var s string
			err := rows.Scan(&s)
			return json.RawMessage(s), err
		})
	switch {
	case err != nil:
		return nil, j.errf("facts %s of %s in run %s: %w", phase, host, runID, err)
	case len(facts) == 0:
		return nil, j.errf("facts %s of %s in run %s: %w", phase, host, runID, ErrNotFound)
	}
	return facts[0], nil
}

// Command is one remote command of the transcript.
type Command struct {
	RunID       string        `json:"run_id"`
	Host        string        `json:"host"`
	Step        string        `json:"step"`
	At          time.Time     `json:"at"` // when it started
	Duration    time.Duration `json:"duration"`
	CommandLine string        `json:"command_line"`
	ExitCode    int           `json:"exit_code"`
	Stdout      []byte        `json:"stdout,omitempty"`
	Stderr      []byte        `json:"stderr,omitempty"`
	Err         string        `json:"error,omitempty"` // the transport or WinRM error, if any
}

// AddCommand appends a command to the transcript, its secrets redacted and its outputs capped
// (Options.MaxOutput); a zero At is stamped with the journal's clock.
func (j *Journal) AddCommand(c Command) error {
	// Redact before capping, so a cut cannot split a secret and let half of it through.
	stdout := capOutput(j.redact.bytes(c.Stdout), j.maxOutput)
	stderr := capOutput(j.redact.bytes(c.Stderr), j.maxOutput)
	_, err := j.exec(`INSERT INTO commands (run_id, host, step, at, duration_ns, command_line, exit_code, stdout, stderr, err)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.RunID, c.Host, c.Step, dbTime(j.stamp(c.At)), int64(c.Duration), c.CommandLine, c.ExitCode,
		nonNil(stdout), nonNil(stderr), c.Err)
	if err != nil {
		return j.errf("add command of %s in run %s: %w", c.Host, c.RunID, err)
	}
	return nil
}

// Commands lists the transcript of one host of a run (host "": of every host) in the order the
// commands were added.
func (j *Journal) Commands(runID, host string) ([]Command, error) {
	cmds, err := collect(j, `SELECT run_id, host, step, at, duration_ns, command_line, exit_code, stdout, stderr, err
		FROM commands WHERE run_id = ?1 AND (?2 = '' OR host = ?2) ORDER BY id`, []any{runID, host},
		func(rows *sql.Rows) (Command, error) {
			var c Command
			var d int64
			err := rows.Scan(&c.RunID, &c.Host, &c.Step, timeCol(&c.At), &d, &c.CommandLine, &c.ExitCode, &c.Stdout, &c.Stderr, &c.Err)
			c.Duration = time.Duration(d)
			if len(c.Stdout) == 0 { // as the caller likely gave it: nil, not empty
				c.Stdout = nil
			}
			if len(c.Stderr) == 0 {
				c.Stderr = nil
			}
			return c, err
		})
	if err != nil {
		return nil, j.errf("commands of run %s: %w", runID, err)
	}
	return cmds, nil
}

// collect runs a read and scans every row with scan.
func collect[T any](j *Journal, query string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := j.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// jsonText is raw JSON as stored: NULL when there is none.
func jsonText(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

// nonNil keeps an empty output a blob: the driver would store a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
