package journal

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLockLost is returned (wrapped) by Heartbeat and Unlock when the lock is no longer the
// caller's: it went stale and another runner took it over, or it was never taken.
var ErrLockLost = errors.New("lock lost")

// LockHolder is who holds a waves lock: a runner process and its run.
type LockHolder struct {
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	RunID string `json:"run_id"`
}

// Lock is a waves lock as taken.
type Lock struct {
	Name      string     `json:"name"`
	Holder    LockHolder `json:"holder"`
	Since     time.Time  `json:"since"`
	Heartbeat time.Time  `json:"heartbeat"`
	// TookOver is the holder of the stale lock that this one replaced, nil otherwise: its
	// run was cut off and may want resuming.
	TookOver *LockHolder `json:"took_over,omitempty"`
}

// LockedError says that a lock is held by another runner.
type LockedError struct {
	Name      string
	Holder    LockHolder
	Since     time.Time
	Heartbeat time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by run %s (pid %d on %s) since %s, last heartbeat %s",
		e.Name, e.Holder.RunID, e.Holder.PID, e.Holder.Host,
		e.Since.UTC().Format(time.RFC3339), e.Heartbeat.UTC().Format(time.RFC3339))
}

// Lock takes the lock called name (one per waves file) for holder at now. It succeeds when
// the lock is free, already holder's (the heartbeat is renewed), or stale: its heartbeat is
// more than staleAfter before now, so its runner is taken for dead (staleAfter <= 0: a lock
// never goes stale). Otherwise it returns a *LockedError. The check and the take are one
// transaction that holds the file's write lock, so two processes cannot both win.
func (j *Journal) Lock(name string, holder LockHolder, now time.Time, staleAfter time.Duration) (Lock, error) {
	lock := Lock{Name: name, Holder: holder, Since: now, Heartbeat: now}
	err := j.tx(func(tx *sql.Tx) error {
		cur, held, err := j.lockRow(tx, name)
		switch {
		case err != nil:
			return err
		case !held:
			return j.txExec(tx, `INSERT INTO locks (name, holder_host, holder_pid, holder_run, since, heartbeat)
				VALUES (?, ?, ?, ?, ?, ?)`, name, holder.Host, holder.PID, holder.RunID, dbTime(now), dbTime(now))
		case cur.Holder == j.redactHolder(holder):
			lock.Since = cur.Since
		case staleAfter > 0 && now.Sub(cur.Heartbeat) > staleAfter:
			lock.TookOver = &cur.Holder
		default:
			return &cur
		}
		return j.txExec(tx, `UPDATE locks SET holder_host = ?, holder_pid = ?, holder_run = ?, since = ?, heartbeat = ?
			WHERE name = ?`, holder.Host, holder.PID, holder.RunID, dbTime(lock.Since), dbTime(now), name)
	})
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		return Lock{}, locked
	case err != nil:
		return Lock{}, j.errf("lock %s: %w", name, err)
	}
	return lock, nil
}

// Heartbeat renews holder's lock at now, so that it does not go stale. It wraps ErrLockLost,
// and a *LockedError naming the new holder if there is one, when holder no longer has it: the
// runner must then stop.
func (j *Journal) Heartbeat(name string, holder LockHolder, now time.Time) error {
	err := j.tx(func(tx *sql.Tx) error {
		cur, held, err := j.lockRow(tx, name)
		if err != nil {
			return err
		}
		if err := j.checkHolder(cur, held, holder); err != nil {
			return err
		}
		return j.txExec(tx, `UPDATE locks SET heartbeat = ? WHERE name = ?`, dbTime(now), name)
	})
	if err != nil {
		return j.errf("heartbeat of lock %s: %w", name, err)
	}
	return nil
}

// Unlock releases holder's lock. Releasing a free lock does nothing; releasing one that
// another runner holds is refused as in Heartbeat.
func (j *Journal) Unlock(name string, holder LockHolder) error {
	err := j.tx(func(tx *sql.Tx) error {
		cur, held, err := j.lockRow(tx, name)
		if err != nil || !held {
			return err
		}
		if err := j.checkHolder(cur, held, holder); err != nil {
			return err
		}
		return j.txExec(tx, `DELETE FROM locks WHERE name = ?`, name)
	})
	if err != nil {
		return j.errf("unlock %s: %w", name, err)
	}
	return nil
}

// checkHolder says how holder lost the lock cur, if it did.
func (j *Journal) checkHolder(cur LockedError, held bool, holder LockHolder) error {
	switch {
	case !held:
		return fmt.Errorf("%w: nobody holds it", ErrLockLost)
	case cur.Holder != j.redactHolder(holder):
		return fmt.Errorf("%w: %w", ErrLockLost, &cur)
	}
	return nil
}

// lockRow reads the lock called name inside tx.
func (j *Journal) lockRow(tx *sql.Tx, name string) (cur LockedError, held bool, err error) {
	err = tx.QueryRow(`SELECT name, holder_host, holder_pid, holder_run, since, heartbeat FROM locks WHERE name = ?`,
		j.redact.string(name)).Scan(&cur.Name, &cur.Holder.Host, &cur.Holder.PID, &cur.Holder.RunID, timeCol(&cur.Since), timeCol(&cur.Heartbeat))
	if errors.Is(err, sql.ErrNoRows) {
		return cur, false, nil
	}
	return cur, err == nil, err
}

// redactHolder is h as it is stored, to compare with a stored holder.
func (j *Journal) redactHolder(h LockHolder) LockHolder {
	return LockHolder{Host: j.redact.string(h.Host), PID: h.PID, RunID: j.redact.string(h.RunID)}
}

// Approval is a person's go-ahead for one wave of a waves file.
type Approval struct {
	Waves string    `json:"waves"`
	Wave  string    `json:"wave"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// Approve records that by approved wave of the waves file; a zero at is stamped with the
// journal's clock. Approving again replaces the approval: the latest one is kept.
func (j *Journal) Approve(waves, wave, by string, at time.Time) error {
	if by == "" {
		return j.errf("approve wave %s of %s: no approver named", wave, waves)
	}
	_, err := j.exec(`INSERT INTO approvals (waves, wave, by, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (waves, wave) DO UPDATE SET by = excluded.by, at = excluded.at`,
		waves, wave, by, dbTime(j.stamp(at)))
	if err != nil {
		return j.errf("approve wave %s of %s: %w", wave, waves, err)
	}
	return nil
}

// Approved reports whether wave of the waves file was approved, and the approval.
func (j *Journal) Approved(waves, wave string) (bool, Approval, error) {
	as, err := collect(j, `SELECT waves, wave, by, at FROM approvals WHERE waves = ? AND wave = ?`,
		[]any{waves, wave}, func(rows *sql.Rows) (Approval, error) {
			var a Approval
			err := rows.Scan(&a.Waves, &a.Wave, &a.By, timeCol(&a.At))
			return a, err // scanned before a is read
		})
	if err != nil {
		return false, Approval{}, j.errf("approval of wave %s of %s: %w", wave, waves, err)
	}
	if len(as) == 0 {
		return false, Approval{}, nil
	}
	return true, as[0], nil
}

// Wave statuses.
const (
	WavePending         = "pending"
	WaveRunning         = "running"
	WaveDone            = "done"
	WaveHalted          = "halted"
	WaveWaitingWindow   = "waiting-window"
	WaveWaitingApproval = "waiting-approval"
)

// WaveState is the progress of one wave of a waves file.
type WaveState struct {
	Waves   string    `json:"waves"` // the waves file, as the lock names it
	Wave    string    `json:"wave"`
	RunID   string    `json:"run_id,omitempty"` // the run working on it, "" before one does
	Status  string    `json:"status"`           // a Wave constant
	Reason  string    `json:"reason,omitempty"` // why it halted or waits
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// PutWave records or replaces the state of a wave. A zero Started keeps the one recorded
// before.
func (j *Journal) PutWave(w WaveState) error {
	if err := oneOf("status", w.Status, WavePending, WaveRunning, WaveDone, WaveHalted,
		WaveWaitingWindow, WaveWaitingApproval); err != nil {
		return j.errf("put wave %s of %s: %w", w.Wave, w.Waves, err)
	}
	var runID any
	if w.RunID != "" {
		runID = w.RunID
	}
	_, err := j.exec(`INSERT INTO waves (waves, wave, run_id, status, reason, started, ended) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (waves, wave) DO UPDATE SET run_id = excluded.run_id, status = excluded.status,
			reason = excluded.reason, started = coalesce(excluded.started, waves.started), ended = excluded.ended`,
		w.Waves, w.Wave, runID, w.Status, w.Reason, dbTime(w.Started), dbTime(w.Ended))
	if err != nil {
		return j.errf("put wave %s of %s: %w", w.Wave, w.Waves, err)
	}
	return nil
}

// Waves lists the waves of a waves file in the order they were first put.
func (j *Journal) Waves(waves string) ([]WaveState, error) {
	ws, err := collect(j, `SELECT waves, wave, coalesce(run_id, ''), status, reason, started, ended
		FROM waves WHERE waves = ? ORDER BY rowid`, []any{waves}, func(rows *sql.Rows) (WaveState, error) {
		var w WaveState
		err := rows.Scan(&w.Waves, &w.Wave, &w.RunID, &w.Status, &w.Reason, timeCol(&w.Started), timeCol(&w.Ended))
		return w, err // scanned before w is read
	})
	if err != nil {
		return nil, j.errf("waves of %s: %w", waves, err)
	}
	return ws, nil
}
