//! `Store`: one SQLite connection plus the blob directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, TransactionBehavior, params};
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
pub struct Store {
    conn: Connection,
    database: PathBuf,
    blobs: PathBuf,
}

impl Store {
    /// Creates the database (schema migrations, WAL) and blob dir if missing.
    /// Also removes blob temp files left by a crashed writer.
    pub fn open(database: &Path, blobs: &Path) -> Result<Store> {
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
            conn,
            database: database.to_path_buf(),
            blobs: blobs.to_path_buf(),
        })
    }

    /// Opens an existing store for reading only (no migrations, no temp clean-up): for
    /// readers such as the IMAP proxy that must never write evidence.
    pub fn open_read_only(database: &Path, blobs: &Path) -> Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(database, flags)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
        schema::check_current(&conn, database)?;
        Ok(Store {
            conn,
            database: database.to_path_buf(),
            blobs: blobs.to_path_buf(),
        })
    }

    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.conn.busy_timeout(timeout)?)
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
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        if bytes.len() as u64 <= blob::INLINE_MAX {
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
        // IMMEDIATE: take the write lock before reading, so the existence check, the chain
        // head and the insert see one state even with other writers around.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let recorded = insert_submission(&tx, s, &prepared)?;
        tx.commit()?;
        Ok(recorded)
    }

    /// A previous submission recorded for the same original-message key (milter retries after a
    /// crash/tempfail reuse the private-id), if any; the newest if several.
    pub fn submission_by_origin_key(&self, key: &Digest) -> Result<Option<Submission>> {
        self.one(submission::BY_ORIGIN_KEY_SQL, params![&key.0[..]])
    }

    /// Look up by private-id, else by Message-ID (with or without angle brackets; the newest
    /// submission if several share it).
    pub fn find(&self, id: &str) -> Result<Option<Submission>> {
        let id = id.trim();
        if id.is_empty() {
            return Ok(None);
        }
        if let Some(s) = self.one(submission::BY_PRIVATE_ID_SQL, params![id])? {
            return Ok(Some(s));
        }
        let key = submission::message_id_key(id);
        if key.is_empty() {
            return Ok(None);
        }
        self.one(submission::BY_MESSAGE_ID_SQL, params![key])
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
            Some(t) => self.many(submission::LIST_TENANT_SQL, params![since, limit, t]),
            None => self.many(submission::LIST_SQL, params![since, limit]),
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
        let mut stmt = self.conn.prepare_cached(submission::EVENTS_OF_SQL)?;
        let rows = stmt.query_map(params![private_id], |r| {
            Ok(status::EventIn {
                id: r.get(0)?,
                kind: r.get(1)?,
                payload: r.get(2)?,
                time: r.get(3)?,
            })
        })?;
        status::project(rows.map(|r| r.map_err(Error::from)), now)
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
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
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
        tx.prepare_cached(confirmation::INSERT_SQL)?
            .execute(params![&c.raw.0[..], event_id, private_id])?;
        let stored = self.confirmation_by_raw(&c.raw)?;
        tx.commit()?;
        stored
            .map(ConfirmationRecorded::Inserted)
            .ok_or_else(|| Error::Corrupt(format!("event {event_id}: not readable after insert")))
    }

    fn confirmation_by_raw(&self, raw: &Digest) -> Result<Option<Confirmation>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .prepare_cached(confirmation::BY_RAW_SQL)?
            .query_row(params![&raw.0[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(id, t, p)| confirmation::decode(id, &t, &p))
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
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
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
        tx.prepare_cached(qes::INSERT_SQL)?
            .execute(params![&c.raw.0[..], event_id])?;
        let stored = self.qes_check_by_raw(&c.raw)?;
        tx.commit()?;
        stored
            .map(QesCheckRecorded::Inserted)
            .ok_or_else(|| Error::Corrupt(format!("event {event_id}: not readable after insert")))
    }

    /// The QES check recorded for the message with this raw digest, if any.
    pub fn qes_check_by_raw(&self, raw: &Digest) -> Result<Option<QesCheck>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .prepare_cached(qes::BY_RAW_SQL)?
            .query_row(params![&raw.0[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(id, t, p)| qes::decode(id, &t, &p)).transpose()
    }

    /// The confirmations matched to `private_id`, oldest first (trusted or not).
    pub fn confirmations(&self, private_id: &str) -> Result<Vec<Confirmation>> {
        let mut stmt = self.conn.prepare_cached(confirmation::OF_PRIVATE_ID_SQL)?;
        let rows = stmt.query_map(params![private_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (id, t, p) = r?;
            confirmation::decode(id, &t, &p)
        })
        .collect()
    }

    /// One event as stored, with the exact bytes its hash covers.
    pub fn event(&self, id: i64) -> Result<Option<EventRecord>> {
        let row = self
            .conn
            .prepare_cached(chain::SELECT_ONE)?
            .query_row(params![id], chain::EventRow::from_row)
            .optional()?;
        Ok(row.map(EventRecord::from))
    }

    /// `(id, prev_hash, hash)` of every event from `from` to the head: the links that tie an
    /// exported record to the head.
    pub fn links_from(&self, from: i64) -> Result<Vec<(i64, Digest, Digest)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, prev_hash, hash FROM events WHERE id >= ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![from], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (id, prev, hash) = r?;
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
        let mut stmt = self.conn.prepare_cached(submission::EVENTS_OF_SQL)?;
        let rows = stmt.query_map(params![private_id], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
        crate::backup::backup(
            &self.conn,
            &self.blobs,
            out,
            overwrite,
            OffsetDateTime::now_utc(),
        )
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

    fn one<P: Params>(&self, sql: &str, p: P) -> Result<Option<Submission>> {
        query_one(&self.conn, sql, p)
    }

    fn many<P: Params>(&self, sql: &str, p: P) -> Result<Vec<Submission>> {
        query_many(&self.conn, sql, p)
    }

    pub(crate) fn conn(&self) -> &Connection {
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
/// IMMEDIATE transaction (see [`chain::append`]); commits nothing itself.
pub(crate) fn insert_submission(
    conn: &Connection,
    s: &NewSubmission,
    p: &Prepared,
) -> Result<Recorded> {
    if let Some(existing) = query_one(conn, submission::BY_PRIVATE_ID_SQL, params![s.private_id])? {
        return Ok(Recorded::AlreadyPresent(existing));
    }
    let event = NewEvent {
        kind: KIND_SUBMISSION,
        private_id: &s.private_id,
        payload: &p.payload,
        blobs: &[s.content],
    };
    let event_id = chain::append(conn, &event)?;
    conn.prepare_cached(submission::INSERT_SQL)?
        .execute(params![
            s.private_id,
            event_id,
            &s.origin_key.0[..],
            submission::message_id_key(&s.message_id),
            s.tenant,
            p.time
        ])?;
    Ok(Recorded::Inserted(Submission::from_new(
        s.clone(),
        event_id,
    )))
}

fn query_one<P: Params>(conn: &Connection, sql: &str, p: P) -> Result<Option<Submission>> {
    Ok(query_many(conn, sql, p)?.into_iter().next())
}

fn query_many<P: Params>(conn: &Connection, sql: &str, p: P) -> Result<Vec<Submission>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|r| {
        let (id, payload) = r?;
        submission::decode(id, &payload)
    })
    .collect()
}

// The milter moves stores and writers between threads.
const _: () = {
    const fn send<T: Send>() {}
    send::<Store>();
    send::<BlobWriter>();
};
