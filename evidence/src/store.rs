//! `Store`: one database connection (SQLite or PostgreSQL) plus the blob directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use demail_sql::{Conn, Location, Param, args};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use crate::chain::{self, KIND_CONFIRMATION, KIND_QES_CHECK, KIND_SUBMISSION, NewEvent};
use crate::confirmation::{self, Confirmation, ConfirmationRecorded, NewConfirmation};
use crate::prune::{self, PruneOutcome};
use crate::qes::{self, NewQesCheck, QesCheck, QesCheckRecorded};
use crate::status::{self, RecipientStatus};
use crate::submission::{self, NewSubmission, Recorded, Submission};
use crate::verify::{self, ChainHead, ChainReport};
use crate::{BlobWriter, Digest, Error, EventRecord, Result, blob, schema};

/// How long a writer waits for another connection's write lock before giving up
/// (the milter then answers tempfail and Postfix retries).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The evidence store: an append-only SQLite event log (WAL, `synchronous=FULL`) and a
/// directory of content-addressed blob files.
///
/// Concurrency: `Store` is `Send` but not `Sync` (it owns one SQLite connection). Several
/// threads or processes may each open their own `Store` on the same files; writers serialise
/// on SQLite's write lock (waiting up to the busy timeout), readers never block. Sharing one
/// `Store` behind a `Mutex` works as well but serialises reads too; the milter should open one
/// per worker or per connection.
///
/// On PostgreSQL, several nodes share one store: appends serialise on an advisory lock, every
/// blob goes into the database, and the schema is migrated by `demailctl evidence migrate`.
pub struct Store {
    conn: Conn,
    /// The database as messages name it: the SQLite path, or the server (never a secret).
    database: PathBuf,
    blobs: PathBuf,
}

impl Store {
    /// Creates the database (schema migrations, WAL) and blob dir if missing.
    /// Also removes blob temp files left by a crashed writer.
    pub fn open(database: &Path, blobs: &Path) -> Result<Store> {
        Store::open_at(&Location::Sqlite(database.to_path_buf()), blobs)
    }

    /// [`Store::open`] for either engine. A PostgreSQL schema must be current already.
    pub fn open_at(location: &Location, blobs: &Path) -> Result<Store> {
        let database = match location {
            Location::Sqlite(path) => path,
            Location::Postgres(pg) => {
                fs::create_dir_all(blobs).map_err(|e| Error::io(blobs, e))?;
                let conn = Conn::connect(pg)?;
                let name = PathBuf::from(location.describe());
                schema::pg_check_current(&conn, &name)?;
                blob::remove_stale_temps(blobs)?;
                return Ok(Store {
                    conn,
                    database: name,
                    blobs: blobs.to_path_buf(),
                });
            }
        };
        let database = database.as_path();
        fs::create_dir_all(blobs).map_err(|e| Error::io(blobs, e))?;
        if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let conn = Connection::open(database)?;
        schema::configure(&conn, DEFAULT_BUSY_TIMEOUT)?;
        // Refuse a foreign database before changing anything in it (even its journal mode).
        schema::check_identity(&conn, database)?;
        schema::enable_wal(&conn, database)?;
        schema::migrate(&conn, database)?;
        blob::remove_stale_temps(blobs)?;
        Ok(Store {
            conn: Conn::Sqlite(conn),
            database: database.to_path_buf(),
            blobs: blobs.to_path_buf(),
        })
    }

    /// Opens an existing store for reading only (no migrations, no temp clean-up): for
    /// readers such as the IMAP proxy that must never write evidence.
    pub fn open_read_only(database: &Path, blobs: &Path) -> Result<Store> {
        Store::open_read_only_at(&Location::Sqlite(database.to_path_buf()), blobs)
    }

    /// [`Store::open_read_only`] for either engine (on PostgreSQL, read-only is the role's
    /// grants and the session's default: the proxy's role needs SELECT alone).
    pub fn open_read_only_at(location: &Location, blobs: &Path) -> Result<Store> {
        let database = match location {
            Location::Sqlite(path) => path.as_path(),
            Location::Postgres(pg) => {
                let conn = Conn::connect(pg)?;
                conn.batch("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")?;
                let name = PathBuf::from(location.describe());
                schema::pg_check_current(&conn, &name)?;
                return Ok(Store {
                    conn,
                    database: name,
                    blobs: blobs.to_path_buf(),
                });
            }
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(database, flags)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
        schema::check_current(&conn, database)?;
        Ok(Store {
            conn: Conn::Sqlite(conn),
            database: database.to_path_buf(),
            blobs: blobs.to_path_buf(),
        })
    }

    /// Brings the schema up to date; on PostgreSQL also grants each of `grant` (the gateway's
    /// roles) SELECT and INSERT on the evidence tables. Returns the versions before and after.
    pub fn migrate(location: &Location, blobs: &Path, grant: &[String]) -> Result<(i64, i64)> {
        match location {
            Location::Sqlite(path) => {
                let before = if path.exists() {
                    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                    schema::check_identity(&conn, path)?
                } else {
                    0
                };
                Store::open(path, blobs)?;
                Ok((before, schema::version()))
            }
            Location::Postgres(pg) => {
                let conn = Conn::connect(pg)?;
                schema::pg_migrate(&conn, &PathBuf::from(location.describe()), grant)
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.conn.is_postgres()
    }

    /// How long a writer waits for another's write lock (SQLite; PostgreSQL writers queue on
    /// the advisory lock without a limit).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        if let Some(c) = self.conn.sqlite() {
            c.busy_timeout(timeout)?;
        }
        Ok(())
    }

    pub fn database_path(&self) -> &Path {
        &self.database
    }

    pub fn blob_dir(&self) -> &Path {
        &self.blobs
    }

    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(&self.blobs)
    }

    /// Stores `bytes` durably (in the database up to [`crate::INLINE_MAX`], else as a file).
    /// On PostgreSQL every blob goes into the database.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        if bytes.len() as u64 <= blob::INLINE_MAX || self.conn.is_postgres() {
            let d = Digest::of(bytes);
            // Autocommit: with synchronous=FULL the row is durable on return.
            self.blobs().put_inline(&d, bytes)?;
            return Ok(d);
        }
        let mut w = self.blob_writer()?;
        std::io::Write::write_all(&mut w, bytes).map_err(|e| Error::io(&self.blobs, e))?;
        Ok(w.finish()?.0)
    }

    /// The whole blob; fails with `BlobMismatch` if it does not hash to `d`.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        self.blobs().read(d)
    }

    /// The blob if the database holds it (hash-checked); `None` when it is a file at
    /// [`Store::blob_path`] (or missing), for readers that stream large files themselves.
    pub fn read_inline_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        self.blobs().read_inline(d)
    }

    /// Hashes the stored blob (files in chunks, bounded memory) and returns its length.
    pub fn verify_blob(&self, d: &Digest) -> Result<u64> {
        self.blobs().verify(d)
    }

    /// Where the blob is or would be as a file. Blobs up to [`crate::INLINE_MAX`] bytes
    /// recorded since schema version 4 are in the database instead: read them with
    /// [`Store::read_blob`].
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        blob::blob_path(&self.blobs, d)
    }

    /// Where the blob is, for reports: `database` or the file's path.
    pub fn blob_location(&self, d: &Digest) -> Result<String> {
        Ok(if self.blobs().is_inline(d)? {
            format!("{}#blobs/{}", self.database.display(), d.hex())
        } else {
            self.blob_path(d).display().to_string()
        })
    }

    pub(crate) fn blobs(&self) -> blob::Blobs<'_> {
        blob::Blobs {
            conn: &self.conn,
            database: &self.database,
            dir: &self.blobs,
        }
    }

    /// Records an outbound De-Mail in one SQLite transaction, fsynced (synchronous=FULL) before
    /// returning. Idempotent: if `private_id` exists already, nothing is written and
    /// `Recorded::AlreadyPresent(existing)` returns the stored record (even if `s` differs).
    ///
    /// The content blob must be stored already, with exactly `s.size` bytes: the evidence
    /// must be complete before the milter accepts the message.
    pub fn record_submission(&self, s: &NewSubmission) -> Result<Recorded> {
        check_content(self.blobs(), s)?;
        let prepared = prepare_submission(s)?;
        // The write lock before reading, so the existence check, the chain head and the insert
        // see one state even with other writers around (on other nodes too).
        let tx = self.conn.begin(chain::WRITE)?;
        let recorded = insert_submission(&tx, s, &prepared)?;
        tx.commit()?;
        Ok(recorded)
    }

    /// A previous submission recorded for the same original-message key (milter retries after a
    /// crash/tempfail reuse the private-id), if any; the newest if several.
    pub fn submission_by_origin_key(&self, key: &Digest) -> Result<Option<Submission>> {
        self.one(submission::BY_ORIGIN_KEY_SQL, args![&key.0])
    }

    /// Look up by private-id, else by Message-ID (with or without angle brackets; the newest
    /// submission if several share it).
    pub fn find(&self, id: &str) -> Result<Option<Submission>> {
        let id = id.trim();
        if id.is_empty() {
            return Ok(None);
        }
        if let Some(s) = self.one(submission::BY_PRIVATE_ID_SQL, args![id])? {
            return Ok(Some(s));
        }
        let key = submission::message_id_key(id);
        if key.is_empty() {
            return Ok(None);
        }
        self.one(submission::BY_MESSAGE_ID_SQL, args![key])
    }

    /// Newest first (by submission time); filters optional; `since` is inclusive.
    pub fn list(
        &self,
        tenant: Option<&str>,
        since: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<Submission>> {
        let since = since.map_or(i64::MIN, submission::unix_nanos_clamped);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match tenant {
            Some(t) => self.many(submission::LIST_TENANT_SQL, args![since, limit, t]),
            None => self.many(submission::LIST_SQL, args![since, limit]),
        }
    }

    /// Per-recipient status at the current system time; see [`Store::recipient_status_at`].
    pub fn recipient_status(&self, private_id: &str) -> Result<Vec<RecipientStatus>> {
        self.recipient_status_at(private_id, OffsetDateTime::now_utc())
    }

    /// Per-recipient status as a projection of the events of `private_id`, with the
    /// deemed-served flag evaluated at `now`. Empty if the private-id is unknown.
    pub fn recipient_status_at(
        &self,
        private_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<RecipientStatus>> {
        let rows = self
            .conn
            .query(submission::EVENTS_OF_SQL, args![private_id])?;
        let events = rows.into_iter().map(|r| {
            Ok(status::EventIn {
                id: r.int(0)?,
                kind: r.text(1)?,
                payload: r.text(2)?,
                time: r.text(3)?,
            })
        });
        status::project(events, now)
    }

    /// Records a confirmation or notification in one transaction. Idempotent on the raw
    /// blob digest: the same bytes again return `AlreadyPresent` with the stored record.
    /// Its blobs must be stored already. Untrusted ones are kept but change no status.
    pub fn record_confirmation(&self, c: &NewConfirmation) -> Result<ConfirmationRecorded> {
        confirmation::validate(c)?;
        for d in confirmation::blobs_of(c) {
            self.blobs().len(&d)?;
        }
        let payload = serde_json::to_string(c).map_err(|e| Error::Invalid {
            field: "confirmation",
            reason: e.to_string(),
        })?;
        let private_id = c.private_id.clone().unwrap_or_default();
        let tx = self.conn.begin(chain::WRITE)?;
        if let Some(existing) = self.confirmation_by_raw(&c.raw)? {
            return Ok(ConfirmationRecorded::AlreadyPresent(existing));
        }
        let event = NewEvent {
            kind: KIND_CONFIRMATION,
            private_id: &private_id,
            payload: &payload,
            blobs: &confirmation::blobs_of(c),
        };
        let event_id = chain::append(&tx, &event)?;
        tx.execute(
            confirmation::INSERT_SQL,
            args![&c.raw.0, event_id, &private_id],
        )?;
        let stored = self.confirmation_by_raw(&c.raw)?;
        tx.commit()?;
        stored
            .map(ConfirmationRecorded::Inserted)
            .ok_or_else(|| Error::Corrupt(format!("event {event_id}: not readable after insert")))
    }

    fn confirmation_by_raw(&self, raw: &Digest) -> Result<Option<Confirmation>> {
        let row = self
            .conn
            .query_opt(confirmation::BY_RAW_SQL, args![&raw.0])?;
        row.map(|r| confirmation::decode(r.int(0)?, &r.text(1)?, &r.text(2)?))
            .transpose()
    }

    /// Records the QES check of a message received for the poststelle, in one transaction.
    /// Idempotent on the raw blob digest (a retried message is recorded once): the same bytes
    /// again return `AlreadyPresent` with the stored record. The raw blob must be stored.
    pub fn record_qes_check(&self, c: &NewQesCheck) -> Result<QesCheckRecorded> {
        qes::validate(c)?;
        self.blobs().len(&c.raw)?;
        let payload = serde_json::to_string(c).map_err(|e| Error::Invalid {
            field: "qes_check",
            reason: e.to_string(),
        })?;
        let tx = self.conn.begin(chain::WRITE)?;
        if let Some(existing) = self.qes_check_by_raw(&c.raw)? {
            return Ok(QesCheckRecorded::AlreadyPresent(existing));
        }
        let event = NewEvent {
            kind: KIND_QES_CHECK,
            private_id: "",
            payload: &payload,
            blobs: &[c.raw],
        };
        let event_id = chain::append(&tx, &event)?;
        tx.execute(qes::INSERT_SQL, args![&c.raw.0, event_id])?;
        let stored = self.qes_check_by_raw(&c.raw)?;
        tx.commit()?;
        stored
            .map(QesCheckRecorded::Inserted)
            .ok_or_else(|| Error::Corrupt(format!("event {event_id}: not readable after insert")))
    }

    /// The QES check recorded for the message with this raw digest, if any.
    pub fn qes_check_by_raw(&self, raw: &Digest) -> Result<Option<QesCheck>> {
        let row = self.conn.query_opt(qes::BY_RAW_SQL, args![&raw.0])?;
        row.map(|r| qes::decode(r.int(0)?, &r.text(1)?, &r.text(2)?))
            .transpose()
    }

    /// The confirmations matched to `private_id`, oldest first (trusted or not).
    pub fn confirmations(&self, private_id: &str) -> Result<Vec<Confirmation>> {
        let rows = self
            .conn
            .query(confirmation::OF_PRIVATE_ID_SQL, args![private_id])?;
        rows.into_iter()
            .map(|r| confirmation::decode(r.int(0)?, &r.text(1)?, &r.text(2)?))
            .collect()
    }

    /// One event as stored, with the exact bytes its hash covers.
    pub fn event(&self, id: i64) -> Result<Option<EventRecord>> {
        let row = self.conn.query_opt(chain::SELECT_ONE, args![id])?;
        Ok(row
            .map(chain::EventRow::from_row)
            .transpose()?
            .map(EventRecord::from))
    }

    /// `(id, prev_hash, hash)` of every event from `from` to the head: the links that tie an
    /// exported record to the head.
    pub fn links_from(&self, from: i64) -> Result<Vec<(i64, Digest, Digest)>> {
        let rows = self.conn.query(
            "SELECT id, prev_hash, hash FROM events WHERE id >= ?1 ORDER BY id",
            args![from],
        )?;
        rows.into_iter()
            .map(|mut r| {
                let (id, prev, hash) = (r.int(0)?, r.take_bytes(1)?, r.take_bytes(2)?);
                Ok((
                    id,
                    Digest::from_slice(&prev, &format!("event {id} prev_hash"))?,
                    Digest::from_slice(&hash, &format!("event {id} hash"))?,
                ))
            })
            .collect()
    }

    /// Ids of all events of `private_id`, oldest first.
    pub fn event_ids_of(&self, private_id: &str) -> Result<Vec<i64>> {
        let rows = self
            .conn
            .query(submission::EVENTS_OF_SQL, args![private_id])?;
        Ok(rows
            .iter()
            .map(|r| r.int(0))
            .collect::<demail_sql::Result<_>>()?)
    }

    /// Deletes the blobs of cases whose newest event is more than `retention_years` before
    /// `now`, recording a `prune` event first (see the `prune` module). `dry_run` only plans.
    pub fn prune(
        &self,
        retention_years: u32,
        now: OffsetDateTime,
        dry_run: bool,
    ) -> Result<PruneOutcome> {
        prune::run(self.blobs(), retention_years, now, dry_run)
    }

    /// The newest event (for anchoring the chain outside the store).
    pub fn head(&self) -> Result<Option<ChainHead>> {
        Ok(chain::head(&self.conn)?.map(|(event_id, hash)| ChainHead { event_id, hash }))
    }

    /// Walks the whole chain in one read snapshot: recomputes every event hash and link,
    /// hashes every referenced blob, and compares the lookup tables with the events.
    /// Tampering is reported in the `ChainReport`; `Err` means the walk itself failed.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        verify::verify(&self.conn, &self.database, &self.blobs)
    }

    /// Backs the whole store up into one ustar file at `out` while other connections keep
    /// writing: an SQLite online backup in one read transaction, then every blob that snapshot
    /// names, with a manifest (see the `backup` module). Written to a temp file beside `out`,
    /// fsynced and renamed, mode 0640 or stricter; an existing `out` is replaced only with
    /// `overwrite`.
    pub fn backup_to(&self, out: &Path, overwrite: bool) -> Result<crate::BackupSummary> {
        let conn = self.conn.sqlite().ok_or_else(|| Error::Invalid {
            field: "database",
            reason: "a PostgreSQL store holds every blob and is backed up with the server's \
                     tools (pg_dump or its base backups); `evidence copy` moves it to SQLite"
                .into(),
        })?;
        crate::backup::backup(conn, &self.blobs, out, overwrite, OffsetDateTime::now_utc())
    }

    /// Restores a backup of [`Store::backup_to`] to `database` and `blobs`, which must not hold
    /// a store. Every member is checked against the manifest and the chain is verified (as
    /// [`Store::verify_chain`] does) in staging files beside the targets before anything is
    /// put in place; on any error nothing is left behind.
    pub fn restore_from(
        backup: &Path,
        database: &Path,
        blobs: &Path,
    ) -> Result<crate::RestoreSummary> {
        crate::backup::restore(backup, database, blobs)
    }

    /// Copies this whole store into `to`, which must be empty (see the `copy` module): the
    /// same events, hashes and head, every blob that is not pruned. Verified on `to` before
    /// it returns.
    pub fn copy_to(&self, to: &Store) -> Result<crate::CopySummary> {
        crate::copy::copy(self, to)
    }

    /// Writes one tar archive with all evidence of `id` (private-id or Message-ID) and the
    /// chain proof; `None` if unknown. See the README inside the archive.
    pub fn export<W: std::io::Write>(
        &self,
        id: &str,
        out: W,
        now: OffsetDateTime,
    ) -> Result<Option<crate::ExportSummary>> {
        crate::export::export(self, id, out, now)
    }

    fn one(&self, sql: &str, p: &[Param<'_>]) -> Result<Option<Submission>> {
        query_one(&self.conn, sql, p)
    }

    fn many(&self, sql: &str, p: &[Param<'_>]) -> Result<Vec<Submission>> {
        query_many(&self.conn, sql, p)
    }

    pub(crate) fn conn(&self) -> &Conn {
        &self.conn
    }
}

/// A submission checked and encoded, ready to go into a transaction.
pub(crate) struct Prepared {
    payload: String,
    time: i64,
}

/// The submission's content blob is stored, with the size the submission names.
pub(crate) fn check_content(blobs: blob::Blobs<'_>, s: &NewSubmission) -> Result<()> {
    let stored = blobs.len(&s.content)?;
    if stored != s.size {
        return Err(Error::Invalid {
            field: "size",
            reason: format!("{} bytes, but blob {} holds {stored}", s.size, s.content),
        });
    }
    Ok(())
}

/// Everything about a submission that needs no database: field rules and the payload encoding.
pub(crate) fn prepare_submission(s: &NewSubmission) -> Result<Prepared> {
    submission::validate(s)?;
    let payload = serde_json::to_string(s).map_err(|e| Error::Invalid {
        field: "submission",
        reason: e.to_string(),
    })?;
    let time = submission::unix_nanos(s.time)?;
    Ok(Prepared { payload, time })
}

/// The existence check, chain append and lookup row of one submission. Must run inside an
/// write transaction (see [`chain::append`]); commits nothing itself.
pub(crate) fn insert_submission(conn: &Conn, s: &NewSubmission, p: &Prepared) -> Result<Recorded> {
    if let Some(existing) = query_one(conn, submission::BY_PRIVATE_ID_SQL, args![&s.private_id])? {
        return Ok(Recorded::AlreadyPresent(existing));
    }
    let event = NewEvent {
        kind: KIND_SUBMISSION,
        private_id: &s.private_id,
        payload: &p.payload,
        blobs: &[s.content],
    };
    let event_id = chain::append(conn, &event)?;
    conn.execute(
        submission::INSERT_SQL,
        args![
            &s.private_id,
            event_id,
            &s.origin_key.0,
            submission::message_id_key(&s.message_id),
            &s.tenant,
            p.time
        ],
    )?;
    Ok(Recorded::Inserted(Submission::from_new(
        s.clone(),
        event_id,
    )))
}

fn query_one(conn: &Conn, sql: &str, p: &[Param<'_>]) -> Result<Option<Submission>> {
    Ok(query_many(conn, sql, p)?.into_iter().next())
}

fn query_many(conn: &Conn, sql: &str, p: &[Param<'_>]) -> Result<Vec<Submission>> {
    conn.query(sql, p)?
        .into_iter()
        .map(|r| submission::decode(r.int(0)?, &r.text(1)?))
        .collect()
}

// The milter moves stores and writers between threads.
const _: () = {
    const fn send<T: Send>() {}
    send::<Store>();
    send::<BlobWriter>();
};
