package journal

import (
	"database/sql"
	"errors"
	"fmt"
)

// schemaVersion is the schema this code writes, kept in the file's user_version. A change of
// schema adds a step to migrate and bumps it; an older iisremedy then refuses the file rather
// than misreading it.
const schemaVersion = 1

// applicationID marks the file as an iisremedy journal ("iisr"), so that another program's
// SQLite database named by mistake is refused instead of getting our tables.
const applicationID = 0x69697372

// schemaV1 is version 1. Times are text (timeLayout), NULL when unset; JSON is text; outputs
// are blobs because Windows writes them in the host's code page. Rows that keep an order
// (hosts, waves) use their rowid, which an upsert keeps.
const schemaV1 = `
CREATE TABLE runs (
	id          TEXT PRIMARY KEY,
	command     TEXT NOT NULL,
	plan_digest TEXT NOT NULL,
	inventory   TEXT NOT NULL,
	started     TEXT NOT NULL,
	ended       TEXT,
	status      TEXT NOT NULL,
	options     TEXT,
	runner_host TEXT NOT NULL,
	runner_pid  INTEGER NOT NULL
);
CREATE INDEX runs_by_started ON runs (started, id);
CREATE INDEX runs_by_plan ON runs (plan_digest, started, id);

CREATE TABLE hosts (
	run_id         TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	host           TEXT NOT NULL,
	verdict_before TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	step           TEXT NOT NULL,
	evidence       TEXT NOT NULL,
	started        TEXT,
	ended          TEXT,
	PRIMARY KEY (run_id, host)
);

CREATE TABLE steps (
	id     INTEGER PRIMARY KEY,
	run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	host   TEXT NOT NULL,
	step   TEXT NOT NULL,
	state  TEXT NOT NULL,
	detail TEXT NOT NULL,
	at     TEXT NOT NULL
);
CREATE INDEX steps_by_host ON steps (run_id, host, id);

CREATE TABLE facts (
	run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	host   TEXT NOT NULL,
	phase  TEXT NOT NULL,
	facts  TEXT NOT NULL,
	PRIMARY KEY (run_id, host, phase)
);

CREATE TABLE commands (
	id           INTEGER PRIMARY KEY,
	run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	host         TEXT NOT NULL,
	step         TEXT NOT NULL,
	at           TEXT NOT NULL,
	duration_ns  INTEGER NOT NULL,
	command_line TEXT NOT NULL,
	exit_code    INTEGER NOT NULL,
	stdout       BLOB NOT NULL,
	stderr       BLOB NOT NULL,
	err          TEXT NOT NULL
);
CREATE INDEX commands_by_host ON commands (run_id, host, id);

CREATE TABLE locks (
	name        TEXT PRIMARY KEY,
	holder_host TEXT NOT NULL,
	holder_pid  INTEGER NOT NULL,
	holder_run  TEXT NOT NULL,
	since       TEXT NOT NULL,
	heartbeat   TEXT NOT NULL
);

CREATE TABLE approvals (
	waves TEXT NOT NULL,
	wave  TEXT NOT NULL,
	by    TEXT NOT NULL,
	at    TEXT NOT NULL,
	PRIMARY KEY (waves, wave)
);

CREATE TABLE waves (
	waves   TEXT NOT NULL,
	wave    TEXT NOT NULL,
	run_id  TEXT REFERENCES runs (id) ON DELETE SET NULL,
	status  TEXT NOT NULL,
	reason  TEXT NOT NULL,
	started TEXT,
	ended   TEXT,
	PRIMARY KEY (waves, wave)
);
`

// migrate brings the file to schemaVersion in one transaction; a second process opening a
// new file at the same moment waits for it and then finds the schema made.
func (j *Journal) migrate() error {
	err := j.tx(func(tx *sql.Tx) error {
		var version, appID, objects int
		if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
			return err
		}
		if err := tx.QueryRow("PRAGMA application_id").Scan(&appID); err != nil {
			return err
		}
		if err := tx.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
			return err
		}
		switch {
		case appID != applicationID && (appID != 0 || version != 0 || objects != 0):
			return errors.New("an SQLite database of another program, not a journal")
		case version > schemaVersion:
			return fmt.Errorf("schema version %d is newer than this iisremedy reads (%d): use a newer iisremedy or another journal file", version, schemaVersion)
		case version == schemaVersion:
			return nil
		}
		if version < 1 {
			if _, err := tx.Exec(schemaV1); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		// PRAGMA takes no bound parameters; both values are constants.
		_, err := tx.Exec(fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, schemaVersion))
		return err
	})
	if err != nil {
		return j.errf("%w", err)
	}
	return nil
}
