//! What the virtual folders are made of, kept in memory and brought up to date from the
//! evidence log incrementally (each refresh reads only the events after the last one seen).
//!
//! Only trusted confirmations matched to a known submission enter the catalog: untrusted or
//! unmatched ones are skipped on reading, so no later step can show them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use demail_evidence::{
    Confirmation, ConfirmationKind, Digest, Error as EvidenceError, Event, RecipientStatus, Store,
    Submission, project_status,
};
use time::OffsetDateTime;

use super::Role;
use super::notice::{self, Notice, NoticeKind};

/// Events read per query while catching up.
const BATCH: usize = 2000;

pub(crate) struct Catalog {
    /// The last event id read.
    cursor: i64,
    pub subs: Vec<Sub>,
    by_pid: HashMap<String, u32>,
    /// Trusted, matched confirmations, in event order.
    pub confs: Vec<Conf>,
    /// Blobs removed by retention (prune events).
    pub pruned: HashSet<Digest>,
    /// Grows whenever something a folder shows may have changed.
    pub version: u64,
}

/// The instants around `now` at which a generated folder's content changes by time alone
/// (a recipient becoming deemed served): valid for `lo <= now < hi`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Window {
    pub lo: Option<OffsetDateTime>,
    pub hi: Option<OffsetDateTime>,
}

impl Window {
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        self.lo.is_none_or(|lo| lo <= now) && self.hi.is_none_or(|hi| now < hi)
    }

    fn narrow(&mut self, flips: &[OffsetDateTime], now: OffsetDateTime) {
        for &f in flips {
            if f <= now {
                self.lo = Some(self.lo.map_or(f, |lo| lo.max(f)));
            } else {
                self.hi = Some(self.hi.map_or(f, |hi| hi.min(f)));
            }
        }
    }
}

pub(crate) struct Sub {
    pub s: Submission,
    /// Its trusted confirmations, oldest first (their reports dropped: not needed here).
    confs: Vec<Confirmation>,
    /// The latest event concerning it (submission or trusted confirmation).
    latest: OffsetDateTime,
    derived: Option<Derived>,
}

/// A confirmation as a folder item.
pub(crate) struct Conf {
    pub sub: u32,
    pub role: Role,
    pub raw: Digest,
    pub recorded: OffsetDateTime,
    /// `None`: the blob is gone (pruned, or missing: then `demailctl evidence verify` says so).
    pub size: Option<u64>,
}

/// The generated folders' view of one submission, valid while no confirmation arrives and
/// `now` stays on the same side of every deemed-served instant.
struct Derived {
    n_confs: usize,
    /// Instants at which a recipient becomes deemed served (the deadline's next second).
    flips: Vec<OffsetDateTime>,
    epoch: usize,
    pending: Option<Arc<Notice>>,
    deemed: Option<Arc<Notice>>,
}

fn epoch(flips: &[OffsetDateTime], now: OffsetDateTime) -> usize {
    flips.iter().filter(|f| **f <= now).count()
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog {
            cursor: 0,
            subs: Vec::new(),
            by_pid: HashMap::new(),
            confs: Vec::new(),
            pruned: HashSet::new(),
            version: 0,
        }
    }

    /// Reads the events recorded since the last refresh.
    pub fn refresh(&mut self, store: &Store) -> Result<(), EvidenceError> {
        loop {
            let events = store.events_after(self.cursor, BATCH)?;
            let n = events.len();
            for ev in events {
                let id = ev.event_id();
                self.add(store, ev)?;
                self.cursor = id;
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    fn add(&mut self, store: &Store, ev: Event) -> Result<(), EvidenceError> {
        // Cheap and conservative: any event may change what a folder shows.
        self.version += 1;
        match ev {
            Event::Submission(s) => {
                if self.by_pid.contains_key(&s.private_id) {
                    return Ok(()); // the store records a private-id once
                }
                let idx = u32::try_from(self.subs.len())
                    .map_err(|_| EvidenceError::Corrupt("more than 2^32 submissions".into()))?;
                self.by_pid.insert(s.private_id.clone(), idx);
                self.subs.push(Sub {
                    latest: s.time,
                    s,
                    confs: Vec::new(),
                    derived: None,
                });
            }
            Event::Confirmation(mut c) => {
                if !c.data.trusted {
                    return Ok(());
                }
                let Some(&sub) = c.data.private_id.as_ref().and_then(|p| self.by_pid.get(p)) else {
                    return Ok(());
                };
                let role = match c.data.kind {
                    ConfirmationKind::Dispatch => Role::Dispatch,
                    ConfirmationKind::Receipt => Role::Receipt,
                    ConfirmationKind::Retrieve => Role::Retrieve,
                    ConfirmationKind::Notification(_) => Role::Failed,
                };
                let size = match store.blob_len(&c.data.raw) {
                    Ok(n) => Some(n),
                    Err(EvidenceError::BlobMissing { .. }) => {
                        if !self.pruned.contains(&c.data.raw) {
                            tracing::warn!(
                                event = c.event_id,
                                blob = %c.data.raw,
                                "confirmation blob missing: not shown"
                            );
                        }
                        None
                    }
                    Err(e) => return Err(e),
                };
                c.data.report = serde_json::Value::Null;
                let s = &mut self.subs[sub as usize];
                s.latest = s.latest.max(c.recorded);
                self.confs.push(Conf {
                    sub,
                    role,
                    raw: c.data.raw,
                    recorded: c.recorded,
                    size,
                });
                s.confs.push(c);
            }
            Event::Prune { record, .. } => {
                self.pruned
                    .extend(record.removed.into_iter().map(|b| b.digest));
            }
            Event::QesCheck { .. } => {}
        }
        Ok(())
    }

    /// The notice of `kind` for submission `idx` at `now`, if it belongs in that folder;
    /// narrows `window` to the instants around `now` where that answer holds.
    pub fn notice(
        &mut self,
        idx: u32,
        kind: NoticeKind,
        now: OffsetDateTime,
        window: &mut Window,
    ) -> Option<Arc<Notice>> {
        let sub = &mut self.subs[idx as usize];
        if self.pruned.contains(&sub.s.content) {
            return None;
        }
        let fresh = sub
            .derived
            .as_ref()
            .is_some_and(|d| d.n_confs == sub.confs.len() && d.epoch == epoch(&d.flips, now));
        if !fresh {
            sub.derived = Some(derive(sub, now));
        }
        let d = sub.derived.as_ref()?;
        window.narrow(&d.flips, now);
        match kind {
            NoticeKind::Pending => d.pending.clone(),
            NoticeKind::DeemedServed => d.deemed.clone(),
        }
    }
}

fn derive(sub: &Sub, now: OffsetDateTime) -> Derived {
    let statuses: Vec<RecipientStatus> = project_status(&sub.s, &sub.confs, now);
    let flips: Vec<OffsetDateTime> = statuses
        .iter()
        .filter_map(|st| st.deemed_served_deadline)
        .map(|d| d + time::Duration::seconds(1))
        .collect();
    let pending = statuses
        .iter()
        .any(|st| !notice::missing(&sub.s.options, st).is_empty());
    let deemed = statuses.iter().any(|st| st.deemed_served);
    let make = |kind| Arc::new(notice::render(kind, &sub.s, &statuses, sub.latest));
    Derived {
        n_confs: sub.confs.len(),
        epoch: epoch(&flips, now),
        flips,
        pending: pending.then(|| make(NoticeKind::Pending)),
        deemed: deemed.then(|| make(NoticeKind::DeemedServed)),
    }
}
