//! The evidence store, seen from the milter: opened on first use (so a store that is briefly
//! unavailable tempfails De-Mail only, while ordinary mail keeps flowing), used off the async
//! runtime because SQLite and fsync block.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use demail_evidence::matching::{self, Claims, Found};
use demail_evidence::{
    Barrier, ConfirmationRecorded, Digest, GroupCommitter, Location, NewConfirmation, NewQesCheck,
    NewSubmission, QesCheckRecorded, Recorded, Store, Submission,
};
use demail_policy::EvidenceSettings;
use tempfile::SpooledTempFile;

use crate::error::Error;
use crate::metrics::{Metrics, Record};

pub struct Evidence {
    database: Location,
    blobs: PathBuf,
    /// Idle connections. A `Store` is one SQLite connection (`Send`, not `Sync`): each task
    /// takes its own, so messages are recorded in parallel and SQLite serialises the writes.
    idle: Mutex<Vec<Store>>,
    /// Submissions go through one group committer: concurrent messages share the fsyncs.
    committer: Mutex<Option<Arc<GroupCommitter>>>,
    metrics: Arc<Metrics>,
}

/// Idle connections kept open beyond this are closed.
const MAX_IDLE: usize = 8;

/// What a stored message became.
pub struct Stored {
    pub recorded: Recorded,
    pub content: Digest,
    pub size: u64,
}

/// The digests of a confirmation's stored parts.
pub struct ConfirmationBlobs {
    pub raw: Digest,
    pub xml: Option<Digest>,
    pub pdf: Option<Digest>,
}

impl Evidence {
    pub fn new(settings: &EvidenceSettings, metrics: Arc<Metrics>) -> Evidence {
        Evidence {
            database: settings.database.clone(),
            blobs: settings.blobs.clone(),
            idle: Mutex::new(Vec::new()),
            committer: Mutex::new(None),
            metrics,
        }
    }

    /// Runs a durable write, timed for `demail_evidence_write_seconds`.
    fn timed<R>(&self, record: Record, f: impl FnOnce() -> R) -> R {
        let start = std::time::Instant::now();
        let r = f();
        self.metrics.evidence_write(record, start.elapsed());
        r
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Evidence {
            database: self.database.describe(),
            blobs: self.blobs.clone(),
            message: e.to_string(),
        }
    }

    /// Runs `f` with a store connection, opening one if none is idle. Blocking.
    fn with_store<R>(&self, f: impl FnOnce(&Store) -> Result<R, Error>) -> Result<R, Error> {
        // A panic elsewhere while holding the lock cannot leave the list inconsistent.
        let lock = || self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let taken = lock().pop();
        let store = match taken {
            Some(s) => s,
            None => Store::open_at(&self.database, &self.blobs).map_err(|e| self.error(e))?,
        };
        let result = f(&store);
        let mut idle = lock();
        if idle.len() < MAX_IDLE {
            idle.push(store);
        }
        result
    }

    /// The submission recorded earlier for a message with this origin key, if any. Blocking.
    pub fn lookup(&self, origin_key: Digest) -> Result<Option<Submission>, Error> {
        self.with_store(|s| {
            s.submission_by_origin_key(&origin_key)
                .map_err(|e| self.error(e))
        })
    }

    /// Writes `head` + the spooled body as a blob, then records the submission with that
    /// blob's digest and size through the group committer (both durable on return). `build`
    /// completes the record from the digest. The spool stays the caller's, for a possible
    /// second attempt. Blocking.
    pub fn store(
        &self,
        head: &[u8],
        body: &mut SpooledTempFile,
        build: impl FnOnce(Digest, u64) -> NewSubmission,
    ) -> Result<Stored, Error> {
        self.timed(Record::Submission, || {
            self.store_blocking(head, body, build)
        })
    }

    /// Stores `raw` (the message as received and verified) as a blob, fsynced, then records
    /// the QES check that `build` makes from the blob's digest (fsynced).
    pub async fn record_qes(
        self: &Arc<Self>,
        raw: impl AsRef<[u8]> + Send + 'static,
        build: impl FnOnce(Digest) -> NewQesCheck + Send + 'static,
    ) -> Result<QesCheckRecorded, Error> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            this.timed(Record::QesCheck, || {
                this.with_store(|store| {
                    let digest = store.put_blob(raw.as_ref()).map_err(|e| this.error(e))?;
                    store
                        .record_qes_check(&build(digest))
                        .map_err(|e| this.error(e))
                })
            })
        })
        .await?
    }

    /// Stores a confirmation's raw message, XML and PDF as blobs (fsynced), matches it to the
    /// sent De-Mail among the submissions of `accounts` (the accounts it was delivered to),
    /// and records what `build` makes of the blobs, the match and the recipient the
    /// confirmation is about (fsynced), on one connection. Blocking.
    pub fn record_confirmation(
        &self,
        raw: &[u8],
        xml: Option<&[u8]>,
        pdf: Option<&[u8]>,
        claims: &Claims,
        accounts: &[String],
        build: impl FnOnce(ConfirmationBlobs, &Found, String) -> NewConfirmation,
    ) -> Result<(ConfirmationRecorded, Found), Error> {
        self.timed(Record::Confirmation, || {
            self.with_store(|store| {
                let steps = || -> Result<_, demail_evidence::Error> {
                    let blobs = ConfirmationBlobs {
                        raw: store.put_blob(raw)?,
                        xml: xml.map(|b| store.put_blob(b)).transpose()?,
                        pdf: pdf.map(|b| store.put_blob(b)).transpose()?,
                    };
                    let found = matching::find(store, claims, accounts)?;
                    let recipient = matching::recipient(found.submission.as_ref(), claims);
                    let recorded = store.record_confirmation(&build(blobs, &found, recipient))?;
                    Ok((recorded, found))
                };
                steps().map_err(|e| self.error(e))
            })
        })
    }

    /// The running committer, started on first use (or again if its thread died). Blocking.
    fn committer(&self) -> Result<Arc<GroupCommitter>, Error> {
        let mut slot = self.committer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().filter(|c| c.is_running()) {
            return Ok(Arc::clone(c));
        }
        let c = GroupCommitter::open_at(&self.database, &self.blobs, Barrier::default())
            .map_err(|e| self.error(e))?;
        let c = Arc::new(c);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    fn store_blocking(
        &self,
        head: &[u8],
        body: &mut SpooledTempFile,
        build: impl FnOnce(Digest, u64) -> NewSubmission,
    ) -> Result<Stored, Error> {
        let committer = self.committer()?;
        body.seek(SeekFrom::Start(0)).map_err(Error::Spool)?;
        let body_len = body.seek(SeekFrom::End(0)).map_err(Error::Spool)?;
        body.seek(SeekFrom::Start(0)).map_err(Error::Spool)?;
        let size = head.len() as u64 + body_len;
        if size <= demail_evidence::INLINE_MAX {
            // The common case: the bytes go into the batch's transaction, no file at all.
            let mut bytes = Vec::with_capacity(size as usize);
            bytes.extend_from_slice(head);
            body.read_to_end(&mut bytes).map_err(Error::Spool)?;
            let content = Digest::of(&bytes);
            let recorded = committer
                .submit_inline(build(content, size), bytes)
                .map_err(|e| self.error(e))?;
            return Ok(Stored {
                recorded,
                content,
                size,
            });
        }
        let mut writer = committer.blob_writer().map_err(|e| self.error(e))?;
        writer.write_all(head).map_err(Error::Blob)?;
        copy(body, &mut writer)?;
        // The blob is not flushed yet: the committer flushes it, with those of the messages
        // recorded alongside, before the commit that names it; `submit` returns after both.
        let pending = writer.finish_deferred().map_err(|e| self.error(e))?;
        let (content, size) = (pending.digest(), pending.len());
        let recorded = committer
            .submit(build(content, size), pending)
            .map_err(|e| self.error(e))?;
        Ok(Stored {
            recorded,
            content,
            size,
        })
    }
}

/// `io::copy`, keeping read (spool) and write (blob) errors apart in the log.
fn copy(from: &mut impl Read, to: &mut impl Write) -> Result<(), Error> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Spool(e)),
        };
        to.write_all(&buf[..n]).map_err(Error::Blob)?;
    }
}
