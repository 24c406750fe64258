//! Database schema and its migrations: SQLite's (`PRAGMA user_version` counts the applied
//! ones) and PostgreSQL's (the `evidence_schema` row does). The two lists describe the same
//! tables; PostgreSQL's has its own types (BIGINT, BYTEA) and trigger functions, and it is
//! applied only by `demailctl evidence migrate` under the owning role, since the gateway's
//! role may not change the schema.

use std::path::Path;

use demail_sql::{Conn, args};
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

/// PostgreSQL migration N brings the schema from version N-1 to N. Append, never edit. The
/// version numbers count apart from SQLite's.
const PG_MIGRATIONS: &[&str] = &[r#"
-- Who wrote this schema and how far it is migrated: one row.
CREATE TABLE evidence_schema (
    application BIGINT NOT NULL,
    version     BIGINT NOT NULL
);
CREATE UNIQUE INDEX evidence_schema_one_row ON evidence_schema ((true));

CREATE TABLE events (
    id          BIGINT PRIMARY KEY,
    time        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    private_id  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    blobs       TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL UNIQUE CHECK (length(prev_hash) = 32),
    hash        BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX events_private_id ON events (private_id, id);
CREATE INDEX events_kind ON events (kind, id);

CREATE TABLE submissions (
    private_id  TEXT PRIMARY KEY,
    event_id    BIGINT NOT NULL UNIQUE REFERENCES events (id),
    origin_key  BYTEA NOT NULL,
    message_id  TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    time        BIGINT NOT NULL
);
CREATE INDEX submissions_origin_key ON submissions (origin_key, time, event_id);
CREATE INDEX submissions_message_id ON submissions (message_id, time, event_id);
CREATE INDEX submissions_time ON submissions (time, event_id);
CREATE INDEX submissions_tenant_time ON submissions (tenant, time, event_id);

CREATE TABLE confirmations (
    raw         BYTEA PRIMARY KEY CHECK (length(raw) = 32),
    event_id    BIGINT NOT NULL UNIQUE REFERENCES events (id),
    private_id  TEXT NOT NULL
);
CREATE INDEX confirmations_private_id ON confirmations (private_id);

CREATE TABLE qes_checks (
    raw         BYTEA PRIMARY KEY CHECK (length(raw) = 32),
    event_id    BIGINT NOT NULL UNIQUE REFERENCES events (id)
);

-- Every blob, large or small: one database backup holds the whole evidence.
CREATE TABLE blobs (
    digest      BYTEA PRIMARY KEY CHECK (length(digest) = 32),
    bytes       BYTEA NOT NULL
);

-- Defence in depth behind the grants: not even the owner changes recorded evidence by
-- accident. Only a prune deletes blob rows (recorded as an event first).
CREATE FUNCTION evidence_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'evidence % are append-only (% refused)', TG_TABLE_NAME, TG_OP;
END
$f$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER submissions_append_only BEFORE UPDATE OR DELETE ON submissions
    FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER submissions_no_truncate BEFORE TRUNCATE ON submissions
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER confirmations_append_only BEFORE UPDATE OR DELETE ON confirmations
    FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER confirmations_no_truncate BEFORE TRUNCATE ON confirmations
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER qes_checks_append_only BEFORE UPDATE OR DELETE ON qes_checks
    FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER qes_checks_no_truncate BEFORE TRUNCATE ON qes_checks
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER blobs_immutable BEFORE UPDATE ON blobs
    FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
CREATE TRIGGER blobs_no_truncate BEFORE TRUNCATE ON blobs
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
"#];

/// The tables a gateway role may read and append to (never update or delete).
const PG_TABLES: [&str; 5] = [
    "events",
    "submissions",
    "confirmations",
    "qes_checks",
    "blobs",
];

pub(crate) fn pg_version() -> i64 {
    PG_MIGRATIONS.len() as i64
}

/// The schema version of a PostgreSQL evidence database, after checking that the schema is
/// ours (or empty). `name` describes the server for messages.
pub(crate) fn pg_check_identity(conn: &Conn, name: &Path) -> Result<i64> {
    let not_ours = |reason: String| Error::NotEvidenceDatabase {
        path: name.to_path_buf(),
        reason,
    };
    let has_schema_table = conn
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename = 'evidence_schema'",
            args![],
        )?
        .is_some();
    if !has_schema_table {
        if let Some(r) = conn.query_opt(
            "SELECT tablename::text FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() ORDER BY tablename LIMIT 1",
            args![],
        )? {
            return Err(not_ours(format!(
                "its schema holds table {:?} but no evidence_schema",
                r.text(0)?
            )));
        }
        return Ok(0);
    }
    let row = conn.query_opt("SELECT application, version FROM evidence_schema", args![])?;
    let Some(row) = row else {
        return Err(not_ours("evidence_schema is empty".into()));
    };
    let (app, found) = (row.int(0)?, row.int(1)?);
    if app != APPLICATION_ID {
        return Err(not_ours(format!("application id {app:#x}")));
    }
    if found > pg_version() {
        return Err(Error::SchemaVersion {
            path: name.to_path_buf(),
            found,
            supported: pg_version(),
            hint: " (written by a newer demail-gateway)",
        });
    }
    Ok(found)
}

/// Opening a PostgreSQL store: the schema must be ours and current (the gateway's role cannot
/// migrate it; `demailctl evidence migrate` does).
pub(crate) fn pg_check_current(conn: &Conn, name: &Path) -> Result<()> {
    let found = pg_check_identity(conn, name)?;
    if found != pg_version() {
        return Err(Error::SchemaVersion {
            path: name.to_path_buf(),
            found,
            supported: pg_version(),
            hint: "; run `demailctl evidence migrate` with the owning role",
        });
    }
    Ok(())
}

/// Applies the missing PostgreSQL migrations in one transaction (under the chain's advisory
/// lock, so two admins migrating at once serialise), then grants each role in `grant` what a
/// gateway needs: SELECT and INSERT, nothing else. Returns (version before, version after).
pub(crate) fn pg_migrate(conn: &Conn, name: &Path, grant: &[String]) -> Result<(i64, i64)> {
    let tx = conn.begin(crate::chain::WRITE)?;
    let found = pg_check_identity(&tx, name)?;
    for sql in PG_MIGRATIONS.iter().skip(found as usize) {
        tx.batch(sql)?;
    }
    if found == 0 {
        tx.execute(
            "INSERT INTO evidence_schema (application, version) VALUES (?1, ?2)",
            args![APPLICATION_ID, pg_version()],
        )?;
    } else {
        tx.execute(
            "UPDATE evidence_schema SET version = ?1",
            args![pg_version()],
        )?;
    }
    let schema = match tx.query_opt("SELECT current_schema()::text", args![])? {
        Some(r) => quote_ident(&r.text(0)?)?,
        None => return Err(Error::Corrupt("no current schema".into())),
    };
    for role in grant {
        let role = quote_ident(role)?;
        tx.batch(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO {role}; \
             REVOKE ALL ON {tables} FROM {role}; \
             GRANT SELECT, INSERT ON {tables} TO {role}; \
             GRANT SELECT ON evidence_schema TO {role};",
            tables = PG_TABLES.join(", "),
        ))?;
    }
    tx.commit()?;
    Ok((found, pg_version()))
}

/// A role name as an SQL identifier; refuses what would need more than plain quoting.
fn quote_ident(name: &str) -> Result<String> {
    if name.is_empty() || name.contains(['"', '\0']) {
        return Err(Error::Invalid {
            field: "role",
            reason: format!("{name:?} is not a role name"),
        });
    }
    Ok(format!("\"{name}\""))
}
