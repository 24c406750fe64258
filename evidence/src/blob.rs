//! Content-addressed blobs: up to [`INLINE_MAX`] bytes in the database's `blobs` table, larger
//! ones as files under the blob directory, `ab/abcdef…` (the SHA-256 in hex). Readers look in
//! both places ([`Blobs`]), so stores written before the table existed read as they did.
//!
//! A blob in the table is written in the transaction that records it: one WAL flush for a
//! whole group commit, where a file costs an inode, a directory entry and their flushes per
//! message (the larger part of the milter's cost per De-Mail).
//!
//! Files:
//! A writer streams into a hidden temp file in the blob directory, holding an advisory lock on
//! it; `finish` fsyncs the file, renames it to its address and fsyncs the directory
//! (`finish_deferred` only renames, and leaves the flush to a group commit). A crash
//! therefore leaves at most an unlocked temp file, which `Store::open` removes. The lock keeps a
//! store opened by another process (say `demailctl status`) from deleting a temp file that a
//! live writer is still filling.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use demail_sql::{Conn, args};

use crate::digest::Hasher;
use crate::{Digest, Error, Result};

/// Blobs up to this size go into the database; larger ones (rare: big attachments) into files,
/// streamed with bounded memory.
pub const INLINE_MAX: u64 = 1 << 20;

/// Schema migration 4: the table of blobs kept in the database. Rows are immutable; only a
/// prune (recorded as an event first) deletes them, as it deletes blob files.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE blobs (
    digest      BLOB PRIMARY KEY CHECK (length(digest) = 32),
    bytes       BLOB NOT NULL
);
CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
    BEGIN SELECT RAISE(ABORT, 'evidence blobs are immutable'); END;
"#;

/// Where a store's blobs are: its database connection (the `blobs` table) and its directory.
#[derive(Clone, Copy)]
pub(crate) struct Blobs<'a> {
    pub conn: &'a Conn,
    pub database: &'a Path,
    pub dir: &'a Path,
}

impl Blobs<'_> {
    /// Stores `bytes` in the table (already there: nothing to do). Durable with the
    /// transaction it runs in.
    pub fn put_inline(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO blobs (digest, bytes) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            args![&d.0, bytes],
        )?;
        Ok(())
    }

    fn inline(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_opt("SELECT bytes FROM blobs WHERE digest = ?1", args![&d.0])?
            .map(|mut r| r.take_bytes(0))
            .transpose()?)
    }

    fn inline_len(&self, d: &Digest) -> Result<Option<u64>> {
        let len = self
            .conn
            .query_opt(
                "SELECT length(bytes) FROM blobs WHERE digest = ?1",
                args![&d.0],
            )?
            .map(|r| r.int(0))
            .transpose()?;
        Ok(len.map(|n| n as u64))
    }

    /// Whether the blob is in the table (else it is a file, or missing).
    pub fn is_inline(&self, d: &Digest) -> Result<bool> {
        Ok(self.inline_len(d)?.is_some())
    }

    /// The whole blob, after checking that it hashes to its name.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        match self.inline(d)? {
            Some(bytes) => {
                check(d, Digest::of(&bytes), self.row_name(d))?;
                Ok(bytes)
            }
            None => read(self.dir, d),
        }
    }

    /// The blob if it is in the table, hash-checked; `None` for a file blob (or none).
    pub fn read_inline(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.inline(d)? else {
            return Ok(None);
        };
        check(d, Digest::of(&bytes), self.row_name(d))?;
        Ok(Some(bytes))
    }

    /// Hashes the blob (files in chunks, bounded memory) and returns its length.
    pub fn verify(&self, d: &Digest) -> Result<u64> {
        match self.read_inline(d)? {
            Some(bytes) => Ok(bytes.len() as u64),
            None => verify(self.dir, d),
        }
    }

    /// Length without reading the bytes (cheap existence check); `BlobMissing` when neither
    /// the table nor the directory has it.
    pub fn len(&self, d: &Digest) -> Result<u64> {
        match self.inline_len(d)? {
            Some(n) => Ok(n),
            None => stored_len(self.dir, d),
        }
    }

    /// Removes the blob's row, if it has one (in the caller's transaction).
    pub fn remove_inline(&self, d: &Digest) -> Result<()> {
        self.conn
            .execute("DELETE FROM blobs WHERE digest = ?1", args![&d.0])?;
        Ok(())
    }

    /// Removes the blob's file, if it has one.
    pub fn remove_file(&self, d: &Digest) -> Result<()> {
        let path = blob_path(self.dir, d);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// How a row is named in messages: the database file and the digest.
    fn row_name(&self, d: &Digest) -> PathBuf {
        let mut name = self.database.as_os_str().to_owned();
        name.push(format!("#blobs/{}", d.hex()));
        PathBuf::from(name)
    }
}

/// Names of in-progress blob files start with this; nothing else in the directory does.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
const CHUNK: usize = 64 * 1024;

pub(crate) fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    let hex = d.hex();
    dir.join(&hex[..2]).join(hex)
}

/// Streams bytes into the blob directory while hashing; `finish` fsyncs the file, renames it to
/// its content address (blobs/ab/abcdef...), fsyncs the directory, returns the digest.
///
/// Memory use is one 64 KiB buffer whatever the size. Dropping a writer without `finish`
/// removes its temp file. `BlobWriter` is `Send`.
pub struct BlobWriter {
    dir: PathBuf,
    /// `Some` until renamed; what `Drop` cleans up.
    tmp: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    hasher: Hasher,
    len: u64,
}

impl BlobWriter {
    pub(crate) fn create(dir: &Path) -> Result<BlobWriter> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!(
                "{TMP_PREFIX}{}-{}-{nanos}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let tmp = dir.join(name);
            let file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&tmp, e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                // A cleaner holds it for a moment and will remove it.
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(Error::io(&tmp, e));
                }
            }
            // A cleaner may have locked and unlinked the file between create and lock: then
            // the path no longer names our inode, and we start over with a fresh name.
            if same_inode(&file, &tmp) {
                return Ok(BlobWriter {
                    dir: dir.to_path_buf(),
                    tmp: Some(tmp),
                    out: Some(BufWriter::with_capacity(CHUNK, file)),
                    hasher: Hasher::new(),
                    len: 0,
                });
            }
        }
        Err(Error::io(
            dir,
            io::Error::other("could not create a temp file for a blob"),
        ))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> Result<(Digest, u64)> {
        let (file, tmp, digest) = self.close()?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        let dest = blob_path(&self.dir, &digest);
        let sub = dest.parent().unwrap_or(&self.dir);
        ensure_subdir(&self.dir, sub)?;
        // Replacing an existing blob is harmless: same name, same content, already durable.
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        self.tmp = None;
        sync_dir(sub)?;
        // The lock goes with `file` here, after the rename.
        drop(file);
        Ok((digest, self.len))
    }

    /// Like [`BlobWriter::finish`] but without any fsync: the blob gets its address now and
    /// becomes durable only through [`PendingBlob::sync`], which a group commit runs for many
    /// blobs at once before recording them. Until then a crash may leave a torn file under the
    /// address; nothing refers to it, and a later writer of the same content replaces it.
    pub fn finish_deferred(mut self) -> Result<PendingBlob> {
        let (file, tmp, digest) = self.close()?;
        let dest = blob_path(&self.dir, &digest);
        let sub = dest.parent().unwrap_or(&self.dir);
        ensure_subdir(&self.dir, sub)?;
        // An existing blob may be durable and referenced: renaming an unsynced file over it
        // would put it at risk until the sync. If it is intact, keep it and sync that one.
        let file = match verify(&self.dir, &digest) {
            Ok(len) if len == self.len => {
                drop(file);
                self.tmp = None;
                fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
                File::open(&dest).map_err(|e| Error::io(&dest, e))?
            }
            // Missing, or torn by a crash before its sync: ours takes the address.
            _ => {
                fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
                self.tmp = None;
                file
            }
        };
        Ok(PendingBlob {
            digest,
            len: self.len,
            path: dest,
            file,
        })
    }

    /// Flushes the buffer, marks the file read-only and returns it with its temp path and digest.
    fn close(&mut self) -> Result<(File, PathBuf, Digest)> {
        let (Some(out), Some(tmp)) = (self.out.take(), self.tmp.clone()) else {
            return Err(Error::io(
                &self.dir,
                io::Error::other("blob writer already finished"),
            ));
        };
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        // Blobs are immutable; read-only files make an accidental edit less likely.
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| Error::io(&tmp, e))?;
        let digest = std::mem::replace(&mut self.hasher, Hasher::new()).finish();
        Ok((file, tmp, digest))
    }
}

/// A blob at its address whose bytes and directory entry may not be on disk yet; see
/// [`BlobWriter::finish_deferred`]. Hand it to [`crate::GroupCommitter::submit`].
#[derive(Debug)]
pub struct PendingBlob {
    digest: Digest,
    len: u64,
    path: PathBuf,
    file: File,
}

impl PendingBlob {
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let n = out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // Best effort: what remains is removed by the next `Store::open`.
            let _ = fs::remove_file(tmp);
        }
    }
}

fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn ensure_subdir(dir: &Path, sub: &Path) -> Result<()> {
    match fs::create_dir(sub) {
        // The new directory entry must survive a crash too.
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(sub, e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Removes temp files no live writer holds (left by a crash); returns how many.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Locked: a writer (in this or another process) is still at work.
        if file.try_lock().is_ok() {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    Ok(removed)
}

fn open_blob(dir: &Path, d: &Digest) -> Result<(File, PathBuf)> {
    let path = blob_path(dir, d);
    match File::open(&path) {
        Ok(f) => Ok((f, path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(Error::BlobMissing { digest: *d, path })
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The whole blob, after checking that it hashes to its name.
pub(crate) fn read(dir: &Path, d: &Digest) -> Result<Vec<u8>> {
    let (mut file, path) = open_blob(dir, d)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    check(d, Digest::of(&bytes), path)?;
    Ok(bytes)
}

/// Hashes the blob in chunks (bounded memory); returns its length.
pub(crate) fn verify(dir: &Path, d: &Digest) -> Result<u64> {
    let (mut file, path) = open_blob(dir, d)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    check(d, hasher.finish(), path)?;
    Ok(len)
}

/// Length of a stored blob without reading it (cheap existence check).
pub(crate) fn stored_len(dir: &Path, d: &Digest) -> Result<u64> {
    let path = blob_path(dir, d);
    match fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(_) => Err(Error::BlobMissing { digest: *d, path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(Error::BlobMissing { digest: *d, path })
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn check(expected: &Digest, actual: Digest, path: PathBuf) -> Result<()> {
    if actual == *expected {
        Ok(())
    } else {
        Err(Error::BlobMismatch {
            expected: *expected,
            actual,
            path,
        })
    }
}
