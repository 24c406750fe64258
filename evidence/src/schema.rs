//! Database schema and its migrations (`PRAGMA user_version` counts the applied ones).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::{Error, Result};

/// `PRAGMA application_id`: "DMEV", so a wrong `--config` cannot make us write into someone
/// else's database.
pub(crate) const APPLICATION_ID: i64 = 0x444d_4556;

/// Migration N (1-based) brings the schema from version N-1 to N. Append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
-- The evidence: one row per event, each linked to its predecessor by prev_hash (a hash chain).
-- UNIQUE(prev_hash) makes a fork impossible, and the triggers make the table append-only.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    time        TEXT NOT NULL,            -- when recorded, RFC 3339 UTC
    kind        TEXT NOT NULL,
    private_id  TEXT NOT NULL,
    payload     TEXT NOT NULL,            -- JSON, hashed as stored
    blobs       TEXT NOT NULL,            -- referenced blob digests, hex, space-separated
    prev_hash   BLOB NOT NULL UNIQUE CHECK (length(prev_hash) = 32),
    hash        BLOB NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX events_private_id ON events (private_id, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'evidence events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'evidence events are append-only'); END;

-- Lookup projection of the submission events (derived data; the payload is authoritative).
CREATE TABLE submissions (
    private_id  TEXT PRIMARY KEY,
    event_id    INTEGER NOT NULL UNIQUE REFERENCES events (id),
    origin_key  BLOB NOT NULL,
    message_id  TEXT NOT NULL,            -- without angle brackets
    tenant      TEXT NOT NULL,
    time        INTEGER NOT NULL          -- submission time, Unix nanoseconds
) WITHOUT ROWID;
CREATE INDEX submissions_origin_key ON submissions (origin_key, time, event_id);
CREATE INDEX submissions_message_id ON submissions (message_id, time, event_id);
CREATE INDEX submissions_time ON submissions (time, event_id);
CREATE INDEX submissions_tenant_time ON submissions (tenant, time, event_id);
CREATE TRIGGER submissions_no_update BEFORE UPDATE ON submissions
    BEGIN SELECT RAISE(ABORT, 'evidence submissions are append-only'); END;
CREATE TRIGGER submissions_no_delete BEFORE DELETE ON submissions
    BEGIN SELECT RAISE(ABORT, 'evidence submissions are append-only'); END;
"#,
    crate::confirmation::MIGRATION,
    crate::qes::MIGRATION,
    crate::blob::MIGRATION,
];

pub(crate) fn version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Per-connection settings. FULL makes every commit fsync the WAL before it returns.
pub(crate) fn configure(conn: &Connection, busy: std::time::Duration) -> Result<()> {
    conn.busy_timeout(busy)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

pub(crate) fn enable_wal(conn: &Connection, path: &Path) -> Result<()> {
    let current: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "{}: journal_mode is {mode:?}, WAL could not be enabled",
            path.display()
        )));
    }
    Ok(())
}

/// Brings the schema up to date in one immediate transaction, so concurrent openers
/// serialise and each migration runs exactly once. A current schema needs no write lock, so
/// opening never waits for a busy writer.
pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    if check_identity(conn, path)? == version() {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let found = check_identity(&tx, path)?;
    if found == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// For read-only opens: the schema must be exactly ours and current.
pub(crate) fn check_current(conn: &Connection, path: &Path) -> Result<()> {
    let found = check_identity(conn, path)?;
    if found != version() {
        return Err(Error::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: version(),
            hint: "; open it read-write once to migrate",
        });
    }
    Ok(())
}

/// Returns the schema version after checking that the file is ours (or empty).
pub(crate) fn check_identity(conn: &Connection, path: &Path) -> Result<i64> {
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let not_ours = |reason: String| Error::NotEvidenceDatabase {
        path: path.to_path_buf(),
        reason,
    };
    if app == 0 {
        let any_table: Option<String> = conn
            .query_row("SELECT name FROM sqlite_schema LIMIT 1", [], |r| r.get(0))
            .optional()?;
        if let Some(name) = any_table {
            return Err(not_ours(format!(
                "it holds table {name:?} but no application id"
            )));
        }
        return Ok(0);
    }
    if app != APPLICATION_ID {
        return Err(not_ours(format!("application id {app:#x}")));
    }
    if found > version() {
        return Err(Error::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: version(),
            hint: " (written by a newer demail-gateway)",
        });
    }
    if found < 1 {
        return Err(not_ours(format!(
            "our application id but schema version {found}"
        )));
    }
    Ok(found)
}
