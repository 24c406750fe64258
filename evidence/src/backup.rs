//! Backup of the whole store into one ustar file while writers keep recording, and restore
//! from it.
//!
//! Consistency: the database is copied with SQLite's online backup API in one step, that is
//! in one read transaction (WAL readers never block the milter), into a snapshot file. Then
//! every blob the snapshot names is copied. Blobs are content-addressed, immutable and written
//! before the event that names them, so the snapshot never names a blob that is not there yet;
//! only a prune may remove one, and a blob missing without a prune event in the snapshot
//! fails the backup.
//!
//! Layout: `demail-backup/MANIFEST.json` first (format, version, head and event count of the
//! snapshot, creation time, size and SHA-256 of every other member), then
//! `demail-backup/evidence.sqlite`, then `demail-backup/blobs/ab/abcdef…`, the store's own
//! blob layout.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use demail_sql::{Conn, args};
use rusqlite::Connection;
use rusqlite::backup::StepResult;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::digest::Hasher;
use crate::ustar::{Ustar, UstarReader};
use crate::{ChainHead, Digest, Error, Result, blob, chain, prune, schema, verify};

/// `format` of the manifest; `version` changes with any incompatible change of the layout.
pub const BACKUP_FORMAT: &str = "demail-evidence-backup";
pub const BACKUP_VERSION: u32 = 1;

const MANIFEST: &str = "demail-backup/MANIFEST.json";
const DATABASE: &str = "demail-backup/evidence.sqlite";
const BLOBS: &str = "demail-backup/blobs/";
/// A manifest lists about 130 bytes per blob; this is millions of blobs.
const MAX_MANIFEST: u64 = 1 << 30;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    schema_version: i64,
    events: u64,
    head: Option<ChainHead>,
    /// Blobs the snapshot names that a prune event removed (not in the backup).
    pruned_blobs: u64,
    /// Every member after the manifest, in archive order.
    members: Vec<ManifestMember>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestMember {
    name: String,
    size: u64,
    sha256: Digest,
}

/// What [`crate::Store::backup_to`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub events: u64,
    pub blobs: u64,
    pub pruned_blobs: u64,
    /// Size of the backup file.
    pub bytes: u64,
    pub head: Option<ChainHead>,
}

/// What [`crate::Store::restore_from`] put in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    pub events: u64,
    pub blobs: u64,
    /// Bytes of database and blobs written.
    pub bytes: u64,
    pub head: Option<ChainHead>,
}

/// Removes the paths it holds when dropped: a failed backup or restore leaves nothing.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = if p.is_dir() {
                fs::remove_dir_all(p)
            } else {
                fs::remove_file(p)
            };
        }
    }
}

/// `.NAME.WHAT-PID` beside `path`, on the same file system (for the final rename).
fn beside(path: &Path, what: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::backup(path, "not a file name"))?;
    Ok(path.with_file_name(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn create_new(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hashing<R: Read>(inner: R) -> Hashing<R> {
    Hashing {
        inner,
        hasher: Hasher::new(),
    }
}

fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = hashing(BufReader::new(file));
    let n = io::copy(&mut h, &mut io::sink()).map_err(|e| Error::io(path, e))?;
    Ok((h.hasher.finish(), n))
}

/// What the snapshot holds, read from the snapshot itself.
struct Snapshot {
    schema_version: i64,
    events: u64,
    head: Option<ChainHead>,
    /// Named blobs, not pruned.
    /// The blob files named by the events (those in the database are counted in `inline`).
    blobs: BTreeSet<Digest>,
    inline: u64,
    /// Named blobs a prune event removed.
    pruned: BTreeSet<Digest>,
}

fn read_snapshot(db: &Conn, path: &Path) -> Result<Snapshot> {
    let conn = db.sqlite().expect("a backup snapshot is an SQLite file");
    let schema_version = schema::check_identity(conn, path)?;
    let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let head = chain::head(db)?.map(|(event_id, hash)| ChainHead { event_id, hash });
    let pruned_map = prune::pruned_blobs(db)?;
    let mut named = BTreeSet::new();
    db.for_each("SELECT id, blobs FROM events ORDER BY id", args![], |r| {
        let (id, list) = (r.int(0)?, r.text(1)?);
        let digests = chain::parse_blobs(&list)
            .map_err(|e| Error::Corrupt(format!("event {id}: blobs column: {e}")))?;
        named.extend(digests);
        Ok::<_, Error>(())
    })?;
    let (pruned, mut blobs): (BTreeSet<Digest>, BTreeSet<Digest>) =
        named.into_iter().partition(|d| pruned_map.contains_key(d));
    // Blobs kept in the database travel inside it; only files become members of their own.
    let mut inline = 0;
    if schema_version >= 4 {
        let mut in_table = conn.prepare("SELECT 1 FROM blobs WHERE digest = ?1")?;
        let mut files = BTreeSet::new();
        for d in blobs {
            if in_table.exists([&d.0[..]])? {
                inline += 1;
            } else {
                files.insert(d);
            }
        }
        blobs = files;
    }
    Ok(Snapshot {
        schema_version,
        events: events as u64,
        head,
        blobs,
        inline,
        pruned,
    })
}

fn blob_member(d: &Digest) -> String {
    let hex = d.hex();
    format!("{BLOBS}{}/{hex}", &hex[..2])
}

/// See [`crate::Store::backup_to`].
pub(crate) fn backup(
    conn: &Connection,
    blob_dir: &Path,
    out: &Path,
    overwrite: bool,
    now: OffsetDateTime,
) -> Result<BackupSummary> {
    if !overwrite && fs::symlink_metadata(out).is_ok() {
        return Err(Error::backup(out, "exists already (--force replaces it)"));
    }
    let tmp = beside(out, "part")?;
    let snap = beside(out, "snapshot")?;
    // The snapshot always goes; the temp file too unless it became `out`.
    let _cleanup = Cleanup(vec![tmp.clone(), snap.clone()]);
    // A stale snapshot of an earlier crashed run of this pid would make Connection::open
    // back up into it: start from nothing.
    let _ = fs::remove_file(&snap);
    drop(create_new(&snap, 0o600)?);

    let mut dst = Connection::open(&snap)?;
    {
        let b = rusqlite::backup::Backup::new(conn, &mut dst)?;
        // -1: all pages in one step, so in one read transaction of the source: a consistent
        // snapshot even while the milter commits. A busy or locked step is retried, for as
        // long as a writer would wait.
        let pause = Duration::from_millis(50);
        let mut tries = crate::DEFAULT_BUSY_TIMEOUT.as_millis() / pause.as_millis();
        loop {
            match b.step(-1)? {
                StepResult::Done => break,
                _ if tries == 0 => {
                    return Err(Error::backup(&snap, "the database stayed busy; try again"));
                }
                _ => {
                    tries -= 1;
                    std::thread::sleep(pause);
                }
            }
        }
    }
    // Self-contained file: no -wal beside it.
    let mode: String = dst.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::backup(&snap, format!("journal_mode stays {mode:?}")));
    }
    let dst = Conn::Sqlite(dst);
    let s = read_snapshot(&dst, &snap)?;
    drop(dst);
    let (db_sha, db_size) = hash_file(&snap)?;

    let mut members = vec![ManifestMember {
        name: DATABASE.into(),
        size: db_size,
        sha256: db_sha,
    }];
    for d in &s.blobs {
        let size = blob::stored_len(blob_dir, d).map_err(|e| match e {
            Error::BlobMissing { digest, path } => Error::backup(
                path,
                format!(
                    "blob {digest} named by the snapshot is missing (removed by a prune that ran \
                     during the backup? run it again; else run `demailctl evidence verify`)"
                ),
            ),
            e => e,
        })?;
        members.push(ManifestMember {
            name: blob_member(d),
            size,
            sha256: *d,
        });
    }
    let manifest = Manifest {
        format: BACKUP_FORMAT.into(),
        version: BACKUP_VERSION,
        created: now,
        schema_version: s.schema_version,
        events: s.events,
        head: s.head,
        pruned_blobs: s.pruned.len() as u64,
        members,
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::backup(out, e.to_string()))?;

    // 0640 at most (the umask may narrow it): evidence is personal data.
    let file = create_new(&tmp, 0o640)?;
    let io_tmp = |e| Error::io(&tmp, e);
    let mtime = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let mut tar = Ustar::new(BufWriter::with_capacity(1 << 16, file), mtime);
    tar.file(MANIFEST, &manifest_json).map_err(io_tmp)?;
    for m in &manifest.members {
        let path = if m.name == DATABASE {
            snap.clone()
        } else {
            blob::blob_path(blob_dir, &m.sha256)
        };
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut h = hashing(f);
        tar.file_from(&m.name, m.size, &mut h)
            .map_err(|e| Error::io(&path, e))?;
        let actual = h.hasher.finish();
        if actual != m.sha256 {
            return Err(Error::BlobMismatch {
                expected: m.sha256,
                actual,
                path,
            });
        }
    }
    let file = tar
        .finish()
        .map_err(io_tmp)?
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(io_tmp)?;
    let bytes = file.metadata().map_err(io_tmp)?.len();
    drop(file);
    if overwrite {
        fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    } else {
        // A hard link fails if `out` appeared meanwhile: never replaces without --force.
        fs::hard_link(&tmp, out).map_err(|e| Error::io(out, e))?;
        let _ = fs::remove_file(&tmp);
    }
    blob::sync_dir(parent(out))?;
    Ok(BackupSummary {
        path: out.to_path_buf(),
        events: s.events,
        blobs: s.blobs.len() as u64 + s.inline,
        pruned_blobs: s.pruned.len() as u64,
        bytes,
        head: s.head,
    })
}

/// A store is there when the database (or its WAL) exists or the blob directory holds
/// anything.
fn refuse_existing(database: &Path, blobs: &Path) -> Result<()> {
    let wal = PathBuf::from(format!("{}-wal", database.display()));
    for p in [database, wal.as_path()] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(Error::backup(
                p,
                "exists already: restore only into an empty place (move the store away first)",
            ));
        }
    }
    match fs::read_dir(blobs).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Error::backup(
            blobs,
            "is not empty: restore only into an empty place (move the store away first)",
        )),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(blobs, e)),
    }
}

/// The manifest's members by name, after checking that every name is one this format writes
/// (and so one that stays inside the staging directories).
fn check_manifest(m: &Manifest, file: &Path) -> Result<HashMap<String, (u64, Digest)>> {
    let refuse = |r: String| Error::backup(file, r);
    if m.format != BACKUP_FORMAT || m.version != BACKUP_VERSION {
        return Err(refuse(format!(
            "manifest: format {:?} version {}, this program reads {BACKUP_FORMAT:?} version {BACKUP_VERSION}",
            m.format, m.version
        )));
    }
    let mut out = HashMap::new();
    let mut database = false;
    for mem in &m.members {
        let ok = if mem.name == DATABASE {
            database = true;
            true
        } else {
            mem.name == blob_member(&mem.sha256)
        };
        if !ok {
            return Err(refuse(format!(
                "manifest: member name {:?} is not {DATABASE} or {BLOBS}XX/<its SHA-256>",
                mem.name
            )));
        }
        if out
            .insert(mem.name.clone(), (mem.size, mem.sha256))
            .is_some()
        {
            return Err(refuse(format!(
                "manifest: member {} listed twice",
                mem.name
            )));
        }
    }
    if !database {
        return Err(refuse(format!("manifest: no {DATABASE}")));
    }
    Ok(out)
}

/// See [`crate::Store::restore_from`].
pub(crate) fn restore(backup_file: &Path, database: &Path, blobs: &Path) -> Result<RestoreSummary> {
    refuse_existing(database, blobs)?;
    for p in [parent(database), parent(blobs)] {
        fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
    }
    let db_stage = beside(database, "restore")?;
    let blobs_stage = beside(blobs, "restore")?;
    let mut cleanup = Cleanup(vec![db_stage.clone(), blobs_stage.clone()]);
    for p in &cleanup.0 {
        let _ = if p.is_dir() {
            fs::remove_dir_all(p)
        } else {
            fs::remove_file(p)
        };
    }
    fs::create_dir(&blobs_stage).map_err(|e| Error::io(&blobs_stage, e))?;
    fs::set_permissions(&blobs_stage, fs::Permissions::from_mode(0o750))
        .map_err(|e| Error::io(&blobs_stage, e))?;
    // Open before the first blob: syncfs reports write-back errors since then.
    let stage_fd = File::open(&blobs_stage).map_err(|e| Error::io(&blobs_stage, e))?;

    let f = File::open(backup_file).map_err(|e| Error::io(backup_file, e))?;
    let mut tar = UstarReader::new(BufReader::with_capacity(1 << 16, f));
    let refuse = |r: String| Error::backup(backup_file, r);
    let tar_err = |e: io::Error| refuse(e.to_string());
    let first = tar.next_member().map_err(tar_err)?;
    let manifest: Manifest = match first {
        Some(m) if m.name == MANIFEST && m.size <= MAX_MANIFEST => {
            let mut bytes = Vec::new();
            tar.read_to_end(&mut bytes).map_err(tar_err)?;
            serde_json::from_slice(&bytes).map_err(|e| refuse(format!("{MANIFEST}: {e}")))?
        }
        _ => {
            return Err(refuse(format!(
                "not a demail evidence backup: {MANIFEST} does not come first"
            )));
        }
    };
    let mut expected = check_manifest(&manifest, backup_file)?;
    let mut bytes = 0u64;
    while let Some(m) = tar.next_member().map_err(tar_err)? {
        let Some((size, sha)) = expected.remove(&m.name) else {
            return Err(refuse(format!(
                "member {}: not in the manifest, or twice in the archive",
                m.name
            )));
        };
        if m.size != size {
            return Err(refuse(format!(
                "member {}: {} bytes, the manifest says {size}",
                m.name, m.size
            )));
        }
        let (dest, mode) = if m.name == DATABASE {
            (db_stage.clone(), 0o640)
        } else {
            let dest = blob::blob_path(&blobs_stage, &sha);
            if let Some(sub) = dest.parent() {
                match fs::create_dir(sub) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(sub, e)),
                }
            }
            (dest, 0o444)
        };
        let mut out = create_new(&dest, 0o600)?;
        let mut h = hashing(&mut tar);
        io::copy(&mut h, &mut out).map_err(|e| refuse(format!("member {}: {e}", m.name)))?;
        let actual = h.hasher.finish();
        if actual != sha {
            return Err(refuse(format!(
                "member {}: content hashes to {actual}, the manifest says {sha} (damaged or altered)",
                m.name
            )));
        }
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&dest, e))?;
        if m.name == DATABASE {
            out.sync_all().map_err(|e| Error::io(&dest, e))?;
        }
        bytes += size;
    }
    if let Some(name) = expected.keys().min() {
        return Err(refuse(format!(
            "member {name} is in the manifest but not in the archive (truncated?)"
        )));
    }

    // The chain, exactly as `evidence verify` walks it, before anything is put in place.
    let report = {
        let conn = Connection::open(&db_stage)?;
        schema::configure(&conn, crate::DEFAULT_BUSY_TIMEOUT)?;
        // The file is not ours until verified: no SQL functions from its schema.
        conn.pragma_update(None, "trusted_schema", false)?;
        schema::check_identity(&conn, &db_stage)?;
        schema::migrate(&conn, &db_stage)?;
        verify::verify(&Conn::Sqlite(conn), &db_stage, &blobs_stage)?
    };
    if let Some(p) = report.problems.first() {
        return Err(refuse(format!(
            "the backed-up chain does not verify: first mismatch: {p}"
        )));
    }
    if report.head != manifest.head || report.events != manifest.events {
        let show = |h: Option<ChainHead>| {
            h.map_or("none".into(), |h| {
                format!("event {} hash {}", h.event_id, h.hash)
            })
        };
        return Err(refuse(format!(
            "the manifest says {} events, head {}; the database holds {} events, head {}",
            manifest.events,
            show(manifest.head),
            report.events,
            show(report.head)
        )));
    }
    // One flush for all blobs and their directories, instead of one per file (thousands).
    // SAFETY: `stage_fd` is an open descriptor for the call's duration.
    if unsafe { libc::syncfs(stage_fd.as_raw_fd()) } != 0 {
        return Err(Error::io(&blobs_stage, io::Error::last_os_error()));
    }

    // Blobs first, the database last: its presence is what makes a store.
    fs::rename(&blobs_stage, blobs).map_err(|e| Error::io(blobs, e))?;
    cleanup.0 = vec![blobs.to_path_buf(), db_stage.clone()];
    fs::rename(&db_stage, database).map_err(|e| Error::io(database, e))?;
    blob::sync_dir(parent(blobs))?;
    blob::sync_dir(parent(database))?;
    cleanup.disarm();
    Ok(RestoreSummary {
        events: report.events,
        blobs: report.blobs,
        bytes,
        head: report.head,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::Store;
    use crate::tests::{record, store};
    use crate::ustar::check_name;

    fn restore_into(dir: &Path, backup: &Path) -> Result<RestoreSummary> {
        Store::restore_from(backup, &dir.join("r/e.sqlite"), &dir.join("r/blobs"))
    }

    /// Nothing of a refused restore is left: no database, no blobs, no staging files.
    fn nothing_restored(dir: &Path) {
        let left: Vec<_> = fs::read_dir(dir.join("r"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// (header offset, name, size) of every member.
    fn members(tar: &[u8]) -> Vec<(usize, String, usize)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|&b| b != 0) {
            let h = &tar[off..off + 512];
            let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8_lossy(&h[..end]).into_owned();
            let size = usize::from_str_radix(
                std::str::from_utf8(&h[124..135])
                    .unwrap()
                    .trim_matches('\0'),
                8,
            )
            .unwrap();
            out.push((off, name, size));
            off += 512 + size.div_ceil(512) * 512;
        }
        out
    }

    /// Rewrites a header's name (with a fresh checksum), as a hostile archive would carry it.
    fn rename_member(tar: &mut [u8], off: usize, name: &str) {
        let h = &mut tar[off..off + 512];
        h[..100].fill(0);
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// The archive again, with the manifest changed by `edit` (the other members as they are).
    fn with_manifest(tar: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let ms = members(tar);
        let mut t = Ustar::new(Vec::new(), 0);
        for (i, (off, name, size)) in ms.iter().enumerate() {
            let data = &tar[off + 512..off + 512 + size];
            if i == 0 {
                let mut v: serde_json::Value = serde_json::from_slice(data).unwrap();
                edit(&mut v);
                t.file(name, &serde_json::to_vec(&v).unwrap()).unwrap();
            } else {
                t.file(name, data).unwrap();
            }
        }
        t.finish().unwrap()
    }

    #[test]
    fn backup_during_writes_restores_to_a_verified_store_with_everything_before_it() {
        let (dir, s) = store();
        for n in 0..20 {
            record(&s, n);
        }
        let db = dir.path().join("e.sqlite");
        let blobs = dir.path().join("blobs");
        let writer = {
            let (db, blobs) = (db.clone(), blobs.clone());
            std::thread::spawn(move || {
                let w = Store::open(&db, &blobs).unwrap();
                for n in 20..220 {
                    record(&w, n);
                }
            })
        };
        let mut last = None;
        for i in 0..5 {
            let before = s.list(None, None, usize::MAX).unwrap().len();
            let out = dir.path().join(format!("b{i}.tar"));
            let sum = s.backup_to(&out, false).unwrap();
            assert!(sum.events as usize >= before);
            assert_eq!(sum.blobs, sum.events, "one content blob per submission");
            assert_eq!(fs::metadata(&out).unwrap().len(), sum.bytes);
            assert_eq!(fs::metadata(&out).unwrap().mode() & 0o7777 & !0o640, 0);
            last = Some((out, sum, before));
        }
        writer.join().unwrap();
        let (out, sum, before) = last.unwrap();
        let r = restore_into(dir.path(), &out).unwrap();
        assert_eq!(
            (r.events, r.blobs, r.head),
            (sum.events, sum.blobs, sum.head)
        );
        let restored =
            Store::open(&dir.path().join("r/e.sqlite"), &dir.path().join("r/blobs")).unwrap();
        let report = restored.verify_chain().unwrap();
        assert!(report.is_intact(), "{:?}", report.problems);
        assert_eq!(report.head, sum.head);
        for n in 0..before as u32 {
            let sub = restored
                .find(&format!("p{n}"))
                .unwrap()
                .expect("recorded before the backup");
            assert_eq!(
                restored.read_blob(&sub.content).unwrap(),
                format!("message {n}").as_bytes()
            );
        }
        // The temp and snapshot files are gone, only the backups remain.
        for e in fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "left behind: {name}");
        }
    }

    #[test]
    fn backup_never_overwrites_without_being_told() {
        let (dir, s) = store();
        record(&s, 1);
        let out = dir.path().join("b.tar");
        fs::write(&out, b"precious").unwrap();
        let e = s.backup_to(&out, false).unwrap_err();
        assert!(e.to_string().contains("exists already (--force"), "{e}");
        assert_eq!(fs::read(&out).unwrap(), b"precious");
        s.backup_to(&out, true).unwrap();
        assert_ne!(fs::read(&out).unwrap(), b"precious");
    }

    #[test]
    fn restore_refuses_a_place_that_holds_a_store() {
        let (dir, s) = store();
        record(&s, 2);
        let out = dir.path().join("b.tar");
        s.backup_to(&out, false).unwrap();
        let e = Store::restore_from(&out, &dir.path().join("e.sqlite"), &dir.path().join("x"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("exists already: restore only into an empty place"),
            "{e}"
        );
        let e = Store::restore_from(
            &out,
            &dir.path().join("new.sqlite"),
            &dir.path().join("blobs"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not empty"), "{e}");
        assert!(!dir.path().join("new.sqlite").exists());
    }

    #[test]
    fn hostile_backups_are_refused_and_nothing_is_restored() {
        let (dir, s) = store();
        for n in 0..3 {
            record(&s, n);
        }
        let out = dir.path().join("b.tar");
        s.backup_to(&out, false).unwrap();
        let good = fs::read(&out).unwrap();
        let ms = members(&good);
        assert_eq!(ms[0].1, MANIFEST);
        assert_eq!(ms[1].1, DATABASE);
        let (blob_off, blob_name, _) = ms[2].clone();
        let bad = dir.path().join("bad.tar");

        let mut cases: Vec<(&str, Vec<u8>, String)> = Vec::new();
        cases.push((
            "truncated",
            good[..good.len() / 2].to_vec(),
            "truncated".into(),
        ));
        cases.push((
            "without its end",
            good[..blob_off].to_vec(),
            "truncated".into(),
        ));
        let mut flipped = good.clone();
        flipped[blob_off + 512] ^= 1;
        cases.push((
            "flipped byte",
            flipped,
            format!("member {blob_name}: content hashes to"),
        ));
        for name in ["demail-backup/../../etc/passwd", "/etc/passwd"] {
            let mut t = good.clone();
            rename_member(&mut t, blob_off, name);
            assert!(check_name(name).is_err());
            cases.push(("unsafe name", t, format!("{name:?} is not a safe relative")));
        }
        let mut t = good.clone();
        rename_member(&mut t, blob_off, "demail-backup/blobs/00/extra");
        cases.push((
            "unlisted member",
            t,
            "demail-backup/blobs/00/extra: not in the manifest".into(),
        ));
        cases.push((
            "manifest lies about the events",
            with_manifest(&good, |v| v["events"] = 2.into()),
            "the manifest says 2 events".into(),
        ));
        cases.push((
            "manifest lies about the head",
            with_manifest(&good, |v| v["head"]["hash"] = Digest::ZERO.hex().into()),
            format!("head event 3 hash {}", Digest::ZERO),
        ));
        cases.push((
            "manifest lies about a blob's hash",
            with_manifest(&good, |v| {
                v["members"][1]["sha256"] = Digest::ZERO.hex().into()
            }),
            "is not demail-backup/evidence.sqlite or demail-backup/blobs/XX/<its SHA-256>".into(),
        ));
        cases.push((
            "manifest lies about the database",
            with_manifest(&good, |v| {
                v["members"][0]["sha256"] = Digest::ZERO.hex().into()
            }),
            format!("member {DATABASE}: content hashes to"),
        ));
        cases.push((
            "manifest omits a blob",
            with_manifest(&good, |v| {
                v["members"].as_array_mut().unwrap().remove(1);
            }),
            "not in the manifest".into(),
        ));
        cases.push((
            "not a backup",
            b"hello".repeat(200),
            "damaged archive".into(),
        ));
        for (what, bytes, expected) in cases {
            fs::write(&bad, &bytes).unwrap();
            let e = restore_into(dir.path(), &bad).expect_err(what).to_string();
            assert!(e.contains(&expected), "{what}: {e}");
            nothing_restored(dir.path());
        }
        // And the good one still restores.
        restore_into(dir.path(), &out).unwrap();
    }
}
