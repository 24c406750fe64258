//! The virtual folders' contents: which evidence a login sees, as IMAP mailboxes with stable
//! UIDs, flags and a persisted, only increasing HIGHESTMODSEQ. Reads the evidence store (never
//! writes it); keeps its own state (UIDVALIDITY, UID map, per-login `\Seen`/`\Flagged`) in the
//! `[imap_proxy] state` SQLite file.
//!
//! Blocking (SQLite, blob files): sessions call it from `spawn_blocking`.
//!
//! Who sees what is `demail_policy::Config::login_sees`, asked once per (login, submission).
//! Folder contents:
//! - Dispatch, Receipt, Retrieve, Failed: the trusted confirmations (notifications for Failed)
//!   matched to a De-Mail the login sees, as received (the raw blob, unchanged).
//! - Pending: the De-Mails the login sees for which a recipient lacks a requested confirmation
//!   (not failed, not deemed served); DeemedServed: those with a recipient deemed served at
//!   `now`. Both as a generated notice (see `notice`) with the original attached.
//!
//! Item keys are content digests (the raw blob's for confirmations, the generated message's for
//! notices): a notice whose status changes is a new message with a new UID, and the old one
//! leaves. A UID is assigned once, in evidence order at first sight, and never again: an item
//! that leaves and comes back gets a new one. Per-login UID spaces, so one login learns nothing
//! of another's counts. HIGHESTMODSEQ grows with every arrival, departure and flag change.
//!
//! Retention: an item whose blob was pruned (a `prune` event names it) leaves its folder, like
//! an expunged message; `content` of it answers `None`. A blob missing without a prune event is
//! not shown either (logged); `content` then fails with the evidence error.
//!
//! One proxy process per state file: the UID maps are cached in memory.

mod catalog;
mod notice;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use demail_evidence::{Digest, Store};
use time::OffsetDateTime;

use catalog::{Catalog, Window};
use notice::{Notice, NoticeKind};
use state::{EntryRow, FolderRow, State};

/// Which virtual folder (`[imap_proxy.folders]`): the role, not its configured name, keys the
/// state, so renaming a folder keeps its UIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Versandbestätigungen (provider messages as received).
    Dispatch,
    /// Eingangsbestätigungen.
    Receipt,
    /// Abholbestätigungen.
    Retrieve,
    /// Fehlermeldungen (notifications).
    Failed,
    /// Sent De-Mails a requested confirmation is still missing for (generated notice + original).
    Pending,
    /// Sent De-Mails deemed served (generated notice + original).
    DeemedServed,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Dispatch,
        Role::Receipt,
        Role::Retrieve,
        Role::Failed,
        Role::Pending,
        Role::DeemedServed,
    ];

    /// Stable key in the state file.
    pub fn key(self) -> &'static str {
        match self {
            Role::Dispatch => "dispatch",
            Role::Receipt => "receipt",
            Role::Retrieve => "retrieve",
            Role::Failed => "failed",
            Role::Pending => "pending",
            Role::DeemedServed => "deemed-served",
        }
    }
}

/// Per-login flags the proxy keeps (PERMANENTFLAGS `\Seen \Flagged`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub seen: bool,
    pub flagged: bool,
}

/// One message of a virtual folder as one login sees it.
#[derive(Clone, Debug)]
pub struct Item {
    pub uid: u32,
    pub internal_date: OffsetDateTime,
    /// Length of the message bytes (RFC822.SIZE).
    pub size: u64,
    pub flags: Flags,
    /// MODSEQ of the last change of this item's flags (or of its arrival).
    pub modseq: u64,
}

/// A folder as one login sees it at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub role: Role,
    pub uid_validity: u32,
    /// Above every UID ever assigned in this folder for this login.
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// Ascending by UID.
    pub items: Vec<Item>,
}

/// A STORE on one item: `Some(v)` sets the flag to `v`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlagChange {
    pub seen: Option<bool>,
    pub flagged: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("evidence store: {0}")]
    Evidence(#[from] demail_evidence::Error),
    #[error("proxy state {path}: {source}")]
    State {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Shared by every session of one proxy process.
pub struct Mailboxes {
    inner: Mutex<Inner>,
}

struct Inner {
    config: Arc<demail_policy::Config>,
    /// `None` until the milter has created the evidence database (a new installation).
    store: Option<Store>,
    catalog: Catalog,
    state: State,
    views: HashMap<String, View>,
    folders: HashMap<(String, Role), Folder>,
    cache: Cache,
}

/// What one login sees of the catalog, extended as the catalog grows.
#[derive(Default)]
struct View {
    subs_seen: usize,
    visible: Vec<u32>,
    visible_bits: Vec<bool>,
    confs_seen: usize,
    /// Confirmation indices per confirmation role (Dispatch, Receipt, Retrieve, Failed).
    by_role: [Vec<u32>; 4],
}

/// Where an item's bytes come from.
#[derive(Clone)]
enum Source {
    Blob(Digest),
    Notice(Arc<Notice>),
}

/// A blob as found under the lock: read already (from the database), or a file to read after.
enum Place {
    Read(Vec<u8>),
    File(std::path::PathBuf),
}

struct Entry {
    uid: u32,
    modseq: u64,
    flags: Flags,
    gone: Option<u64>,
    /// The snapshot that last listed it.
    mark: u64,
}

impl Entry {
    fn row(&self, key: Digest) -> EntryRow {
        EntryRow {
            key,
            uid: self.uid,
            modseq: self.modseq,
            seen: self.flags.seen,
            flagged: self.flags.flagged,
            gone: self.gone,
        }
    }
}

/// One (login, role) folder: counters and UID map as persisted, plus the last two snapshots'
/// sources (a session may fetch what its snapshot listed while another session's newer one
/// no longer does).
struct Folder {
    row: FolderRow,
    by_key: HashMap<Digest, Entry>,
    by_uid: HashMap<u32, Digest>,
    present: usize,
    generation: u64,
    current: Vec<(u32, Source)>,
    previous: Vec<(u32, Source)>,
    snapshotted: bool,
    /// The last snapshot, reused while its stamp (see `Inner::snapshot`) is the same and `now`
    /// stays in the window (flag changes are applied to it in place).
    cached: Option<((u64, u64), Window, Snapshot)>,
}

impl Folder {
    fn source(&self, uid: u32) -> Option<Source> {
        [&self.current, &self.previous].into_iter().find_map(|v| {
            v.binary_search_by_key(&uid, |(u, _)| *u)
                .ok()
                .map(|i| v[i].1.clone())
        })
    }
}

/// Recently served bytes (Thunderbird fetches a message in 64 KiB chunks, each a `content`
/// call), bounded in total size; the oldest entry goes first.
struct Cache {
    map: HashMap<Digest, Arc<Vec<u8>>>,
    order: VecDeque<Digest>,
    bytes: usize,
}

const CACHE_BYTES: usize = 64 << 20;

impl Cache {
    fn get(&self, k: &Digest) -> Option<Arc<Vec<u8>>> {
        self.map.get(k).cloned()
    }

    fn put(&mut self, k: Digest, v: Arc<Vec<u8>>) {
        if v.len() > CACHE_BYTES / 4 || self.map.contains_key(&k) {
            return;
        }
        self.bytes += v.len();
        self.map.insert(k, v);
        self.order.push_back(k);
        while self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.bytes -= v.len();
            }
        }
    }
}

/// The confirmation roles' slot in `View::by_role`; `None` for the generated folders.
fn conf_slot(role: Role) -> Option<usize> {
    match role {
        Role::Dispatch => Some(0),
        Role::Receipt => Some(1),
        Role::Retrieve => Some(2),
        Role::Failed => Some(3),
        Role::Pending | Role::DeemedServed => None,
    }
}

impl Mailboxes {
    /// Opens the evidence store read-only and the state file (created if missing).
    pub fn open(
        config: Arc<demail_policy::Config>,
        state: &std::path::Path,
    ) -> Result<Mailboxes, MailboxError> {
        let store = open_store(&config)?;
        let state = State::open(state)?;
        let mut catalog = Catalog::new();
        if let Some(store) = &store {
            catalog.refresh(store)?;
        }
        Ok(Mailboxes {
            inner: Mutex::new(Inner {
                config,
                store,
                catalog,
                state,
                views: HashMap::new(),
                folders: HashMap::new(),
                cache: Cache {
                    map: HashMap::new(),
                    order: VecDeque::new(),
                    bytes: 0,
                },
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            // A panic may have left a folder half updated in memory: reload from the state
            // file, which every change reaches in one transaction.
            let mut inner = poisoned.into_inner();
            inner.folders.clear();
            inner.views.clear();
            inner
        })
    }

    /// The folder as `login` sees it now: new evidence gets the next UIDs, items that left
    /// (a pending De-Mail that got its confirmation) are gone.
    /// Takes a reloaded configuration: who sees what is decided anew from the next snapshot
    /// on; UIDs, flags and the catalog stay (one model per state file, so no second one races
    /// for UIDs). The evidence store stays the one opened at start.
    pub fn reconfigure(&self, config: Arc<demail_policy::Config>) {
        let mut inner = self.lock();
        inner.config = config;
        inner.views.clear();
        for folder in inner.folders.values_mut() {
            folder.cached = None;
        }
    }

    pub fn snapshot(&self, login: &str, role: Role) -> Result<Snapshot, MailboxError> {
        self.snapshot_at(login, role, OffsetDateTime::now_utc())
    }

    /// [`Mailboxes::snapshot`] with the deemed-served rule evaluated at `now`.
    pub fn snapshot_at(
        &self,
        login: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<Snapshot, MailboxError> {
        let mut inner = self.lock();
        inner.refresh()?;
        inner.snapshot(&demail_policy::login_key(login), role, now)
    }

    /// The exact bytes of one item (`None`: no such UID for this login).
    pub fn content(
        &self,
        login: &str,
        role: Role,
        uid: u32,
    ) -> Result<Option<Arc<Vec<u8>>>, MailboxError> {
        let login = demail_policy::login_key(login);
        let (source, place) = {
            let mut inner = self.lock();
            let Some(source) = inner.source(&login, role, uid)? else {
                return Ok(None);
            };
            let key = match &source {
                Source::Blob(d) => *d,
                Source::Notice(n) => n.key,
            };
            if let Some(bytes) = inner.cache.get(&key) {
                return Ok(Some(bytes));
            }
            let blob = match &source {
                Source::Blob(d) => *d,
                Source::Notice(n) => n.original,
            };
            let Some(store) = inner.store.as_ref() else {
                return Ok(None);
            };
            // A blob in the database is small (at most INLINE_MAX): read under the lock.
            match store.read_inline_blob(&blob)? {
                Some(bytes) => (source, Place::Read(bytes)),
                None => (source, Place::File(store.blob_path(&blob))),
            }
        };
        // Read outside the lock: a large blob must not hold up the other sessions.
        let (key, blob) = match &source {
            Source::Blob(d) => (*d, *d),
            Source::Notice(n) => (n.key, n.original),
        };
        let bytes = match place {
            // Hash-checked by the store.
            Place::Read(bytes) => bytes,
            Place::File(path) => match std::fs::read(&path) {
                Ok(bytes) => {
                    let actual = Digest::of(&bytes);
                    if actual != blob {
                        return Err(demail_evidence::Error::BlobMismatch {
                            expected: blob,
                            actual,
                            path,
                        }
                        .into());
                    }
                    bytes
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut inner = self.lock();
                    inner.refresh()?;
                    if inner.catalog.pruned.contains(&blob) {
                        return Ok(None);
                    }
                    return Err(demail_evidence::Error::BlobMissing { digest: blob, path }.into());
                }
                Err(e) => {
                    return Err(demail_evidence::Error::Io { path, source: e }.into());
                }
            },
        };
        let bytes = Arc::new(match &source {
            Source::Blob(_) => bytes,
            Source::Notice(n) => n.assemble(&bytes),
        });
        self.lock().cache.put(key, Arc::clone(&bytes));
        Ok(Some(bytes))
    }

    /// Applies a flag change; returns the item's new flags and MODSEQ (`None`: no such UID).
    pub fn store_flags(
        &self,
        login: &str,
        role: Role,
        uid: u32,
        change: FlagChange,
    ) -> Result<Option<(Flags, u64)>, MailboxError> {
        let login = demail_policy::login_key(login);
        let mut inner = self.lock();
        if inner.source(&login, role, uid)?.is_none() {
            return Ok(None);
        }
        let Inner { folders, state, .. } = &mut *inner;
        let Some(folder) = folders.get_mut(&(login.clone(), role)) else {
            return Ok(None);
        };
        let Some(&key) = folder.by_uid.get(&uid) else {
            return Ok(None);
        };
        let Some(entry) = folder.by_key.get(&key).filter(|e| e.gone.is_none()) else {
            return Ok(None);
        };
        let flags = Flags {
            seen: change.seen.unwrap_or(entry.flags.seen),
            flagged: change.flagged.unwrap_or(entry.flags.flagged),
        };
        if flags == entry.flags {
            return Ok(Some((flags, entry.modseq)));
        }
        let modseq = next_modseq(folder.row.highest_modseq)?;
        let mut row = entry.row(key);
        row.seen = flags.seen;
        row.flagged = flags.flagged;
        row.modseq = modseq;
        let counters = FolderRow {
            highest_modseq: modseq,
            ..folder.row
        };
        state.save(&login, role, &counters, &[row])?;
        folder.row = counters;
        if let Some(e) = folder.by_key.get_mut(&key) {
            e.flags = flags;
            e.modseq = modseq;
        }
        if let Some((_, _, snap)) = &mut folder.cached {
            snap.highest_modseq = modseq;
            if let Ok(i) = snap.items.binary_search_by_key(&uid, |it| it.uid) {
                snap.items[i].flags = flags;
                snap.items[i].modseq = modseq;
            }
        }
        Ok(Some((flags, modseq)))
    }
}

/// The evidence store, read-only; `None` while its database does not exist yet (the milter
/// creates it with the first record), so the proxy can start first and show empty folders.
fn open_store(config: &demail_policy::Config) -> Result<Option<Store>, MailboxError> {
    if config.evidence.database.is_missing() {
        return Ok(None);
    }
    Ok(Some(Store::open_read_only_at(
        &config.evidence.database,
        &config.evidence.blobs,
    )?))
}

fn next_modseq(m: u64) -> Result<u64, MailboxError> {
    m.checked_add(1)
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| MailboxError::Other("HIGHESTMODSEQ exhausted".into()))
}

impl Inner {
    fn refresh(&mut self) -> Result<(), MailboxError> {
        if self.store.is_none() {
            self.store = open_store(&self.config)?;
        }
        match &self.store {
            Some(store) => Ok(self.catalog.refresh(store)?),
            None => Ok(()),
        }
    }

    /// The source of `uid` as the last snapshots listed it; takes a snapshot first if this
    /// process has none of the folder yet.
    fn source(
        &mut self,
        login: &str,
        role: Role,
        uid: u32,
    ) -> Result<Option<Source>, MailboxError> {
        let taken = self
            .folders
            .get(&(login.to_string(), role))
            .is_some_and(|f| f.snapshotted);
        if !taken {
            self.refresh()?;
            self.snapshot(login, role, OffsetDateTime::now_utc())?;
        }
        Ok(self
            .folders
            .get(&(login.to_string(), role))
            .and_then(|f| f.source(uid)))
    }

    fn view(&mut self, login: &str) -> &View {
        let Inner {
            views,
            catalog,
            config,
            ..
        } = self;
        let view = views.entry(login.to_string()).or_default();
        for (i, sub) in catalog.subs.iter().enumerate().skip(view.subs_seen) {
            let s = &sub.s;
            let sees = config.login_sees(login, &s.account, &s.clerk, s.sasl_login.as_deref());
            view.visible_bits.push(sees);
            if sees {
                view.visible.push(i as u32);
            }
        }
        view.subs_seen = catalog.subs.len();
        for (j, c) in catalog.confs.iter().enumerate().skip(view.confs_seen) {
            if view.visible_bits[c.sub as usize]
                && let Some(slot) = conf_slot(c.role)
            {
                view.by_role[slot].push(j as u32);
            }
        }
        view.confs_seen = catalog.confs.len();
        view
    }

    fn folder(&mut self, login: &str, role: Role) -> Result<&mut Folder, MailboxError> {
        let k = (login.to_string(), role);
        if !self.folders.contains_key(&k) {
            // RFC 9051 2.3.1.1: a recreated state must give a greater UIDVALIDITY, so the
            // time in seconds (never 0).
            let uid_validity = u32::try_from(OffsetDateTime::now_utc().unix_timestamp())
                .unwrap_or(u32::MAX)
                .max(1);
            let (row, rows) = self.state.load(login, role, uid_validity)?;
            let mut by_key = HashMap::with_capacity(rows.len());
            let mut by_uid = HashMap::with_capacity(rows.len());
            for r in rows {
                by_uid.insert(r.uid, r.key);
                by_key.insert(
                    r.key,
                    Entry {
                        uid: r.uid,
                        modseq: r.modseq,
                        flags: Flags {
                            seen: r.seen,
                            flagged: r.flagged,
                        },
                        gone: r.gone,
                        mark: 0,
                    },
                );
            }
            let present = by_key.values().filter(|e| e.gone.is_none()).count();
            self.folders.insert(
                k.clone(),
                Folder {
                    row,
                    by_key,
                    by_uid,
                    present,
                    generation: 0,
                    current: Vec::new(),
                    previous: Vec::new(),
                    snapshotted: false,
                    cached: None,
                },
            );
        }
        Ok(self.folders.get_mut(&k).expect("inserted above"))
    }

    /// The members of the folder in evidence order: (key, source, internal date, size).
    fn members(
        &mut self,
        login: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> (Vec<(Digest, Source, OffsetDateTime, u64)>, Window) {
        self.view(login);
        let mut window = Window::default();
        let view = &self.views[login];
        let catalog = &mut self.catalog;
        let members = match conf_slot(role) {
            Some(slot) => view.by_role[slot]
                .iter()
                .filter_map(|&j| {
                    let c = &catalog.confs[j as usize];
                    let size = c.size.filter(|_| !catalog.pruned.contains(&c.raw))?;
                    Some((c.raw, Source::Blob(c.raw), c.recorded, size))
                })
                .collect(),
            None => {
                let kind = if role == Role::Pending {
                    NoticeKind::Pending
                } else {
                    NoticeKind::DeemedServed
                };
                view.visible
                    .iter()
                    .filter_map(|&i| {
                        let n = catalog.notice(i, kind, now, &mut window)?;
                        Some((n.key, n.date, n.size(), Source::Notice(n)))
                    })
                    .map(|(k, d, sz, src)| (k, src, d, sz))
                    .collect()
            }
        };
        (members, window)
    }

    fn snapshot(
        &mut self,
        login: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<Snapshot, MailboxError> {
        // What the folder shows can only have changed if this stamp did: for a confirmation
        // folder, its list in the login's view or the pruned set (so other logins' traffic
        // leaves it cached); for a generated folder, anything in the catalog.
        let stamp = match conf_slot(role) {
            Some(slot) => {
                let listed = self.view(login).by_role[slot].len() as u64;
                (listed, self.catalog.pruned.len() as u64)
            }
            None => (u64::MAX, self.catalog.version),
        };
        let folder = self.folder(login, role)?;
        if let Some((v, window, snap)) = &folder.cached
            && *v == stamp
            && window.contains(now)
        {
            return Ok(snap.clone());
        }
        let (members, window) = self.members(login, role, now);
        let Inner { folders, state, .. } = self;
        let folder = folders
            .get_mut(&(login.to_string(), role))
            .expect("loaded above");
        folder.generation += 1;
        let generation = folder.generation;
        // Which members are new (never seen, or back after leaving: a new UID either way).
        let mut fresh: Vec<usize> = Vec::new();
        let mut listed = Vec::with_capacity(members.len());
        let mut kept = 0usize;
        let mut fresh_keys = std::collections::HashSet::new();
        for (i, (key, ..)) in members.iter().enumerate() {
            match folder.by_key.get_mut(key) {
                Some(e) if e.mark == generation => {} // listed twice: once is enough
                Some(e) if e.gone.is_none() => {
                    e.mark = generation;
                    kept += 1;
                    listed.push(i);
                }
                _ => {
                    if fresh_keys.insert(*key) {
                        fresh.push(i);
                        listed.push(i);
                    }
                }
            }
        }
        let departed = folder.present.saturating_sub(kept);
        if !fresh.is_empty() || departed > 0 {
            let modseq = next_modseq(folder.row.highest_modseq)?;
            let mut uid_next = folder.row.uid_next;
            let mut rows = Vec::with_capacity(fresh.len() + departed);
            for &i in &fresh {
                let uid = uid_next;
                uid_next = uid_next
                    .checked_add(1)
                    .ok_or_else(|| MailboxError::Other("UIDs of the folder exhausted".into()))?;
                rows.push(EntryRow {
                    key: members[i].0,
                    uid,
                    modseq,
                    seen: false,
                    flagged: false,
                    gone: None,
                });
            }
            if departed > 0 {
                for (key, e) in &folder.by_key {
                    if e.gone.is_none() && e.mark != generation {
                        rows.push(EntryRow {
                            gone: Some(modseq),
                            ..e.row(*key)
                        });
                    }
                }
            }
            let counters = FolderRow {
                uid_validity: folder.row.uid_validity,
                uid_next,
                highest_modseq: modseq,
            };
            state.save(login, role, &counters, &rows)?;
            folder.row = counters;
            for r in rows {
                match r.gone {
                    Some(_) => {
                        if let Some(e) = folder.by_key.get_mut(&r.key) {
                            e.gone = r.gone;
                        }
                    }
                    None => {
                        if let Some(old) = folder.by_key.get(&r.key) {
                            folder.by_uid.remove(&old.uid);
                        }
                        folder.by_uid.insert(r.uid, r.key);
                        folder.by_key.insert(
                            r.key,
                            Entry {
                                uid: r.uid,
                                modseq: r.modseq,
                                flags: Flags::default(),
                                gone: None,
                                mark: generation,
                            },
                        );
                    }
                }
            }
            folder.present = kept + fresh.len();
        }
        let mut items = Vec::with_capacity(listed.len());
        let mut sources = Vec::with_capacity(listed.len());
        for i in listed {
            let (key, source, date, size) = &members[i];
            let e = &folder.by_key[key];
            items.push(Item {
                uid: e.uid,
                internal_date: *date,
                size: *size,
                flags: e.flags,
                modseq: e.modseq,
            });
            sources.push((e.uid, source.clone()));
        }
        items.sort_unstable_by_key(|it| it.uid);
        sources.sort_unstable_by_key(|(u, _)| *u);
        folder.previous = std::mem::replace(&mut folder.current, sources);
        folder.snapshotted = true;
        let snap = Snapshot {
            role,
            uid_validity: folder.row.uid_validity,
            uid_next: folder.row.uid_next,
            highest_modseq: folder.row.highest_modseq,
            items,
        };
        folder.cached = Some((stamp, window, snap.clone()));
        Ok(snap)
    }
}

// Sessions share one `Mailboxes` across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Mailboxes>();
};
