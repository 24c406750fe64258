//! Group commit: many threads record submissions, one writer thread makes them durable in
//! batches. Per message, the expensive part of recording is not the work but the flushes (blob
//! file, its directory, the SQLite commit); a batch shares one blob barrier and one commit.
//!
//! The writer takes whatever is queued when it finishes the previous batch, so an idle store
//! adds no latency and a busy one batches by itself. Order within a batch is queue order, so
//! contested private-ids resolve as they would one at a time.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use demail_sql::Location;

use crate::blob::{self, PendingBlob};
use crate::store::{self, Prepared};
use crate::{BlobWriter, Digest, Error, NewSubmission, Recorded, Result, Store};

/// Upper bound of one batch, so one commit's latency stays bounded under a flood.
const MAX_BATCH: usize = 256;

/// How a batch's blobs are made durable before the commit that names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Barrier {
    /// `syncfs(2)` on the blob directory's file system: one call for the whole batch (and
    /// whatever else is dirty there). Cheapest for a dedicated evidence file system.
    #[default]
    SyncFs,
    /// Start write-back of every blob, then `fdatasync` each and `fsync` each directory:
    /// flushes nothing but the batch, at one flush per file.
    EachFile,
}

struct Job {
    submission: NewSubmission,
    content: Content,
    reply: mpsc::SyncSender<Result<Recorded>>,
}

/// A submission's content as handed to the committer.
enum Content {
    /// Written to a file, to be flushed before the commit.
    File(PendingBlob),
    /// At most [`crate::INLINE_MAX`] bytes, stored in the database with the record.
    Inline(Vec<u8>),
}

impl Content {
    fn file(&self) -> Option<&PendingBlob> {
        match self {
            Content::File(b) => Some(b),
            Content::Inline(_) => None,
        }
    }
}

/// Records submissions from many threads through one writer thread (see the module docs).
/// `Sync`: share it behind an `Arc`. Dropping it lets the writer finish the queue and stop.
///
/// Guarantees are those of [`Store::record_submission`]: when [`GroupCommitter::submit`]
/// returns `Ok`, blob and record are durable; a crash leaves each submission recorded
/// completely or not at all; a known private-id yields `AlreadyPresent`.
pub struct GroupCommitter {
    blobs: PathBuf,
    queue: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl GroupCommitter {
    /// Opens the store (creating it if missing, see [`Store::open`]) and starts the writer.
    pub fn open(database: &Path, blobs: &Path) -> Result<GroupCommitter> {
        GroupCommitter::open_with(database, blobs, Barrier::default())
    }

    pub fn open_with(database: &Path, blobs: &Path, barrier: Barrier) -> Result<GroupCommitter> {
        GroupCommitter::open_at(&Location::Sqlite(database.to_path_buf()), blobs, barrier)
    }

    /// [`GroupCommitter::open_with`] for either engine (see [`Store::open_at`]).
    pub fn open_at(location: &Location, blobs: &Path, barrier: Barrier) -> Result<GroupCommitter> {
        let store = Store::open_at(location, blobs)?;
        // Kept open for the writer's lifetime: syncfs reports write-back errors since the
        // descriptor was opened, so a fresh one per batch could miss some.
        let dir = File::open(blobs).map_err(|e| Error::io(blobs, e))?;
        let (queue, jobs) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("evidence-commit".into())
            .spawn(move || run(&store, &dir, barrier, &jobs))
            .map_err(|e| Error::io(blobs, e))?;
        Ok(GroupCommitter {
            blobs: blobs.to_path_buf(),
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// A writer into the blob directory; finish it with [`BlobWriter::finish_deferred`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(&self.blobs)
    }

    /// Records `s`, whose content is `blob`, in the next batch; blocks until that batch is
    /// durable. Errors concern this submission alone, or the whole batch if its commit failed.
    pub fn submit(&self, s: NewSubmission, blob: PendingBlob) -> Result<Recorded> {
        same_content(&s, blob.digest(), blob.len())?;
        self.enqueue(s, Content::File(blob))
    }

    /// Like [`GroupCommitter::submit`], for content of at most [`crate::INLINE_MAX`] bytes
    /// that goes into the database in the batch's transaction: no file, no extra flush.
    pub fn submit_inline(&self, s: NewSubmission, bytes: Vec<u8>) -> Result<Recorded> {
        if bytes.len() as u64 > crate::INLINE_MAX {
            return Err(Error::Invalid {
                field: "content",
                reason: format!(
                    "{} bytes is over the {} kept in the database; write a blob file",
                    bytes.len(),
                    crate::INLINE_MAX
                ),
            });
        }
        same_content(&s, Digest::of(&bytes), bytes.len() as u64)?;
        self.enqueue(s, Content::Inline(bytes))
    }

    fn enqueue(&self, s: NewSubmission, content: Content) -> Result<Recorded> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            submission: s,
            content,
            reply,
        };
        let queue = self.queue.as_ref().ok_or(Error::CommitterStopped)?;
        queue.send(job).map_err(|_| Error::CommitterStopped)?;
        answer.recv().map_err(|_| Error::CommitterStopped)?
    }

    /// False once the writer thread has ended (it only does on a panic while this lives):
    /// then every `submit` fails, and the owner should open a new committer.
    pub fn is_running(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| !w.is_finished())
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the jobs already sent.
        drop(self.queue.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// The content handed in is the one the submission names.
fn same_content(s: &NewSubmission, digest: Digest, len: u64) -> Result<()> {
    if s.content == digest && s.size == len {
        return Ok(());
    }
    Err(Error::Invalid {
        field: "content",
        reason: format!(
            "submission names blob {} of {} bytes, the content handed in is {digest} of {len}",
            s.content, s.size
        ),
    })
}

fn run(store: &Store, dir: &File, barrier: Barrier, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit(store, dir, barrier, &batch);
        for (job, result) in batch.into_iter().zip(results) {
            // A waiter that went away (its thread died) needs no answer.
            let _ = job.reply.send(result);
        }
    }
}

/// One batch: checks, blob barrier, one transaction with a savepoint per submission.
/// Returns one result per job, in order.
fn commit(store: &Store, dir: &File, barrier: Barrier, batch: &[Job]) -> Vec<Result<Recorded>> {
    let mut prepared: Vec<Result<Prepared>> = batch
        .iter()
        .map(|j| {
            if j.content.file().is_some() {
                store::check_content(store.blobs(), &j.submission)?;
            }
            store::prepare_submission(&j.submission)
        })
        .collect();
    // On PostgreSQL the files are only a spool: their bytes go into the transaction.
    let postgres = store.is_postgres();
    if !postgres {
        sync_blobs(store.blob_dir(), dir, barrier, batch, &mut prepared);
    }

    let conn = store.conn();
    let tx = match conn.begin(crate::chain::WRITE) {
        Ok(tx) => tx,
        Err(e) => return fail_all(prepared, &e.into()),
    };
    let mut results = Vec::with_capacity(batch.len());
    for (job, p) in batch.iter().zip(prepared) {
        let result = p.and_then(|p| {
            conn.batch("SAVEPOINT one")?;
            let d = &job.submission.content;
            let inserted = match &job.content {
                Content::Inline(bytes) => store.blobs().put_inline(d, bytes),
                Content::File(_) if postgres => {
                    let path = blob::blob_path(store.blob_dir(), d);
                    std::fs::read(&path)
                        .map_err(|e| Error::io(&path, e))
                        .and_then(|bytes| store.blobs().put_inline(d, &bytes))
                }
                Content::File(_) => Ok(()),
            }
            .and_then(|()| store::insert_submission(conn, &job.submission, &p));
            match inserted {
                Ok(r) => {
                    conn.batch("RELEASE one")?;
                    Ok(r)
                }
                Err(e) => {
                    // Undo this submission's half, keep the others'.
                    conn.batch("ROLLBACK TO one; RELEASE one")?;
                    Err(e)
                }
            }
        });
        // Some errors (disk full, I/O) make SQLite drop the whole transaction; carrying on
        // would run the rest outside one, so nothing of this batch can count as recorded.
        if !conn.in_transaction() {
            let why = match &result {
                Err(e) => e.to_string(),
                Ok(_) => "transaction ended early".to_string(),
            };
            return batch
                .iter()
                .map(|_| Err(Error::GroupCommit(why.clone())))
                .collect();
        }
        results.push(result);
    }
    if let Err(e) = tx.commit() {
        return fail_all(results, &e.into());
    }
    if postgres {
        // The database holds the bytes now; a file left by a crash here is only a duplicate.
        for job in batch {
            if job.content.file().is_some() {
                let _ = store.blobs().remove_file(&job.submission.content);
            }
        }
    }
    results
}

/// Every result that was still `Ok` becomes the batch's error.
fn fail_all<T>(results: Vec<Result<T>>, e: &Error) -> Vec<Result<Recorded>> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(_) => Err(Error::GroupCommit(e.to_string())),
            Err(own) => Err(own),
        })
        .collect()
}

/// Makes the blobs of the still-valid jobs durable; a failure is marked on the jobs it
/// concerns (all of them if the barrier is one call for the file system).
fn sync_blobs(
    root: &Path,
    dir: &File,
    barrier: Barrier,
    batch: &[Job],
    prepared: &mut [Result<Prepared>],
) {
    let live = || {
        batch
            .iter()
            .zip(prepared.iter())
            .filter(|(_, p)| p.is_ok())
            .filter_map(|(j, _)| j.content.file())
    };
    if live().next().is_none() {
        return;
    }
    match barrier {
        Barrier::SyncFs => {
            // SAFETY: `dir` is an open descriptor for the call's duration.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                let e = std::io::Error::last_os_error();
                for p in prepared.iter_mut().filter(|p| p.is_ok()) {
                    *p = Err(Error::io(
                        root,
                        std::io::Error::new(e.kind(), e.to_string()),
                    ));
                }
            }
        }
        Barrier::EachFile => {
            for blob in live() {
                // Only a hint that lets the file system write all blobs in one go; the
                // fdatasync below is what counts, so its result is ignored here.
                // SAFETY: the descriptor is open; offsets 0, 0 mean the whole file.
                unsafe {
                    libc::sync_file_range(
                        blob.file().as_raw_fd(),
                        0,
                        0,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
            }
            let mut dirs = BTreeSet::new();
            for (job, p) in batch.iter().zip(prepared.iter_mut()) {
                let Some(blob) = job.content.file().filter(|_| p.is_ok()) else {
                    continue;
                };
                let path = blob.path();
                if let Err(e) = blob.file().sync_data() {
                    *p = Err(Error::io(path, e));
                } else if let Some(parent) = path.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
            for d in dirs {
                if let Err(e) = crate::blob::sync_dir(&d) {
                    let msg = e.to_string();
                    for (job, p) in batch.iter().zip(prepared.iter_mut()) {
                        let parent = job.content.file().and_then(|b| b.path().parent());
                        if p.is_ok() && parent == Some(d.as_path()) {
                            *p = Err(Error::GroupCommit(msg.clone()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::{Digest, Error};

    fn open() -> (tempfile::TempDir, Store, File) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        let store = Store::open(&dir.path().join("e.sqlite"), &blobs).unwrap();
        let fd = File::open(&blobs).unwrap();
        (dir, store, fd)
    }

    fn pending(store: &Store, body: &str) -> PendingBlob {
        let mut w = store.blob_writer().unwrap();
        w.write_all(body.as_bytes()).unwrap();
        w.finish_deferred().unwrap()
    }

    /// A job for `private_id` with its own content, and the receiver of its answer.
    fn job(store: &Store, private_id: &str) -> (Job, mpsc::Receiver<Result<Recorded>>) {
        let body = format!("message of {private_id}");
        let blob = pending(store, &body);
        let submission = NewSubmission {
            private_id: private_id.into(),
            origin_key: Digest::of(body.as_bytes()),
            tenant: "t".into(),
            account: "a@t.de-mail.de".into(),
            clerk: "c@t.example".into(),
            sasl_login: None,
            recipients: vec!["r@x.de-mail.de".into()],
            subject: "s".into(),
            message_id: format!("<{private_id}@t.example>"),
            queue_id: "Q".into(),
            options: vec![],
            content: blob.digest(),
            size: blob.len(),
            time: time::macros::datetime!(2026-11-02 9:00 UTC),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            submission,
            content: Content::File(blob),
            reply,
        };
        (job, answer)
    }

    #[test]
    fn each_submission_of_a_batch_gets_its_own_answer() {
        for barrier in [Barrier::SyncFs, Barrier::EachFile] {
            let (_dir, store, fd) = open();
            // Fails the lookup-row insert of "boom" after its event row went in: the savepoint
            // must take that event back out, or the chain would hold a record-less event.
            store
                .conn()
                .batch(
                    "CREATE TEMP TRIGGER boom BEFORE INSERT ON submissions
                     WHEN NEW.private_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
                )
                .unwrap();
            let (a, _) = job(&store, "a");
            let (mut bad, _) = job(&store, "bad");
            bad.submission.tenant.clear();
            let (boom, _) = job(&store, "boom");
            let (again, _) = job(&store, "a");
            let (b, _) = job(&store, "b");
            let batch = [a, bad, boom, again, b];

            let r = commit(&store, &fd, barrier, &batch);
            assert_eq!(r.len(), 5);
            let a = r[0].as_ref().unwrap();
            assert!(a.is_inserted(), "{barrier:?}");
            assert_eq!(a.submission().event_id, 1);
            assert!(matches!(
                r[1],
                Err(Error::Invalid {
                    field: "tenant",
                    ..
                })
            ));
            assert!(
                matches!(&r[2], Err(Error::Database(e)) if e.to_string().contains("boom refused"))
            );
            // The same private-id later in the batch sees the earlier one, as it would serially.
            let again = r[3].as_ref().unwrap();
            assert!(!again.is_inserted());
            assert_eq!(again.submission(), a.submission());
            let b = r[4].as_ref().unwrap();
            assert!(b.is_inserted());
            assert_eq!(b.submission().event_id, 2, "no gap where boom was undone");

            let report = store.verify_chain().unwrap();
            assert!(report.is_intact(), "{:?}", report.problems);
            assert_eq!(report.events, 2);
            assert!(store.find("boom").unwrap().is_none());
            assert!(store.find("bad").unwrap().is_none());
            assert_eq!(store.find("b").unwrap().unwrap().event_id, 2);
        }
    }

    #[test]
    fn a_failed_commit_fails_every_submission_of_the_batch() {
        let (dir, store, fd) = open();
        let (a, _) = job(&store, "a");
        let (b, _) = job(&store, "b");
        // Another connection holds the write lock past the busy timeout.
        let other = Store::open(&dir.path().join("e.sqlite"), store.blob_dir()).unwrap();
        other.conn().batch("BEGIN IMMEDIATE").unwrap();
        store
            .set_busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let r = commit(&store, &fd, Barrier::SyncFs, &[a, b]);
        assert!(
            r.iter().all(|r| matches!(r, Err(Error::GroupCommit(_)))),
            "{r:?}"
        );
        other.conn().batch("ROLLBACK").unwrap();
        assert_eq!(store.verify_chain().unwrap().events, 0);
    }

    #[test]
    fn submit_refuses_a_submission_that_names_another_blob() {
        let dir = tempfile::tempdir().unwrap();
        let c = GroupCommitter::open(&dir.path().join("e.sqlite"), &dir.path().join("b")).unwrap();
        let mut w = c.blob_writer().unwrap();
        w.write_all(b"one").unwrap();
        let blob = w.finish_deferred().unwrap();
        let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("b")).unwrap();
        let (mut j, _) = job(&store, "x");
        j.submission.size += 1;
        let err = c.submit(j.submission, blob).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "content",
                    ..
                }
            ),
            "{err}"
        );
        assert!(c.is_running());
    }

    #[test]
    fn deferred_finish_keeps_an_intact_blob_and_replaces_a_torn_one() {
        let (_dir, store, _fd) = open();
        let first = pending(&store, "same bytes");
        let path = store.blob_path(&first.digest());
        let inode = std::fs::metadata(&path).unwrap().ino();
        drop(first);
        // A second writer of the same content must not replace the (maybe durable) original.
        let second = pending(&store, "same bytes");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(second.path(), path);

        // As a crash before the barrier may leave it: the address holds other bytes.
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, "torn").unwrap();
        let third = pending(&store, "same bytes");
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(store.read_blob(&third.digest()).unwrap(), b"same bytes");
        let temps = std::fs::read_dir(store.blob_dir())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(crate::blob::TMP_PREFIX)
            })
            .count();
        assert_eq!(temps, 0, "no temp file left behind");
    }
}
