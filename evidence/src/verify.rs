//! `verify_chain`: walks every event in order, recomputes the links, checks each referenced
//! blob against its digest and the lookup projection against the payloads.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use demail_sql::{Conn, TxKind, args};
use serde::Serialize;

use crate::blob::Blobs;
use crate::chain::{
    self, EventRow, KIND_CONFIRMATION, KIND_PRUNE, KIND_QES_CHECK, KIND_SUBMISSION,
};
use crate::confirmation::{self, Confirmation};
use crate::prune;
use crate::qes::{self, QesCheck};
use crate::submission::{self, Submission};
use crate::{Digest, Error, Result};

/// More problems than this are counted, not listed.
const MAX_LISTED: usize = 1000;

/// Result of [`crate::Store::verify_chain`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Events walked.
    pub events: u64,
    /// Distinct blobs hashed.
    pub blobs: u64,
    /// Distinct blobs absent because a prune event removed them (not problems).
    pub pruned_blobs: u64,
    /// The last event. Dropping events from the end leaves a valid chain, so keep this hash
    /// somewhere else (a log, a printout) to detect truncation later.
    pub head: Option<ChainHead>,
    /// In event order: the first is the first event where the evidence was changed.
    pub problems: Vec<Problem>,
    /// Problems found beyond the listed ones.
    pub problems_omitted: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChainHead {
    pub event_id: i64,
    pub hash: Digest,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }

    /// The first event that does not check out.
    pub fn first_bad_event(&self) -> Option<i64> {
        self.problems.iter().find_map(Problem::event_id)
    }

    fn push(&mut self, p: Problem) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        } else {
            self.problems_omitted += 1;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// Event ids `from..=to` are absent.
    MissingEvents { from: i64, to: i64 },
    /// The event's prev_hash is not the hash of the event before it.
    PrevHash {
        event_id: i64,
        expected: Digest,
        found: Digest,
    },
    /// The event's columns do not hash to its stored hash: the row was altered.
    Hash {
        event_id: i64,
        stored: Digest,
        computed: Digest,
    },
    /// The row's hash column itself is not 32 bytes, or its payload cannot be read.
    Malformed { event_id: i64, reason: String },
    BlobMissing {
        event_id: i64,
        digest: Digest,
        path: PathBuf,
    },
    BlobMismatch {
        event_id: i64,
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    BlobUnreadable {
        event_id: i64,
        digest: Digest,
        reason: String,
    },
    /// The lookup tables disagree with the events.
    Projection {
        event_id: Option<i64>,
        reason: String,
    },
}

impl Problem {
    pub fn event_id(&self) -> Option<i64> {
        match self {
            Problem::MissingEvents { from, .. } => Some(*from),
            Problem::PrevHash { event_id, .. }
            | Problem::Hash { event_id, .. }
            | Problem::Malformed { event_id, .. }
            | Problem::BlobMissing { event_id, .. }
            | Problem::BlobMismatch { event_id, .. }
            | Problem::BlobUnreadable { event_id, .. } => Some(*event_id),
            Problem::Projection { event_id, .. } => *event_id,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingEvents { from, to } if from == to => write!(f, "event {from}: missing"),
            Problem::MissingEvents { from, to } => write!(f, "events {from}..{to}: missing"),
            Problem::PrevHash {
                event_id,
                expected,
                found,
            } => write!(
                f,
                "event {event_id}: prev_hash {found} is not the hash of the event before ({expected})"
            ),
            Problem::Hash {
                event_id,
                stored,
                computed,
            } => write!(
                f,
                "event {event_id}: content hashes to {computed}, stored hash is {stored} (altered)"
            ),
            Problem::Malformed { event_id, reason } => write!(f, "event {event_id}: {reason}"),
            Problem::BlobMissing {
                event_id,
                digest,
                path,
            } => {
                write!(
                    f,
                    "event {event_id}: blob {digest} missing ({})",
                    path.display()
                )
            }
            Problem::BlobMismatch {
                event_id,
                digest,
                actual,
                path,
            } => write!(
                f,
                "event {event_id}: blob {} hashes to {actual}, not {digest} (altered)",
                path.display()
            ),
            Problem::BlobUnreadable {
                event_id,
                digest,
                reason,
            } => {
                write!(f, "event {event_id}: blob {digest}: {reason}")
            }
            Problem::Projection {
                event_id: Some(id),
                reason,
            } => write!(f, "event {id}: lookup table: {reason}"),
            Problem::Projection {
                event_id: None,
                reason,
            } => write!(f, "lookup table: {reason}"),
        }
    }
}

/// Events read per query: the walk's memory stays bounded on either engine.
const PAGE: i64 = 1000;

pub(crate) fn verify(conn: &Conn, database: &Path, dir: &Path) -> Result<ChainReport> {
    // One read transaction: a consistent snapshot while writers keep appending.
    let tx = conn.begin(TxKind::Snapshot)?;
    let tx: &Conn = &tx;
    let mut report = ChainReport {
        events: 0,
        blobs: 0,
        pruned_blobs: 0,
        head: None,
        problems: Vec::new(),
        problems_omitted: 0,
    };
    let mut checked_blobs = HashSet::new();
    let pruned = prune::pruned_blobs(tx)?;
    let mut ctx = Ctx {
        conn: tx,
        blobs: Blobs {
            conn: tx,
            database,
            dir,
        },
        checked: &mut checked_blobs,
        pruned: &pruned,
        pruned_seen: HashSet::new(),
    };
    let mut submissions = 0u64;
    let mut confirmations = 0u64;
    let mut qes_checks = 0u64;
    let mut prev: Option<(i64, Vec<u8>)> = None;
    let mut after = i64::MIN;
    loop {
        let page = tx.query(chain::SELECT_PAGE, args![after, PAGE])?;
        let Some(last) = page.last() else { break };
        after = last.int(0)?;
        for r in page {
            let ev = EventRow::from_row(r)?;
            report.events += 1;
            check_link(&mut report, &ev, prev.as_ref());
            match ev.kind.as_str() {
                KIND_SUBMISSION => submissions += 1,
                KIND_CONFIRMATION => confirmations += 1,
                KIND_QES_CHECK => qes_checks += 1,
                _ => {}
            }
            for p in check_payload(&mut ctx, &ev)? {
                report.push(p);
            }
            report.blobs = (ctx.checked.len() - ctx.pruned_seen.len()) as u64;
            report.pruned_blobs = ctx.pruned_seen.len() as u64;
            if let Ok(hash) = Digest::from_slice(&ev.hash, "hash") {
                report.head = Some(ChainHead {
                    event_id: ev.id,
                    hash,
                });
            }
            prev = Some((ev.id, ev.hash));
        }
    }
    let count = |table: &str| -> Result<i64> {
        let sql = format!("SELECT count(*) FROM {table}");
        Ok(tx.query_opt(&sql, args![])?.map_or(Ok(0), |r| r.int(0))?)
    };
    let rows_in_table = count("submissions")?;
    if rows_in_table as u64 != submissions {
        report.push(Problem::Projection {
            event_id: None,
            reason: format!("{rows_in_table} submission rows for {submissions} submission events"),
        });
    }
    let rows_in_table = count("confirmations")?;
    if rows_in_table as u64 != confirmations {
        report.push(Problem::Projection {
            event_id: None,
            reason: format!(
                "{rows_in_table} confirmation rows for {confirmations} confirmation events"
            ),
        });
    }
    let rows_in_table = count("qes_checks")?;
    if rows_in_table as u64 != qes_checks {
        report.push(Problem::Projection {
            event_id: None,
            reason: format!("{rows_in_table} QES check rows for {qes_checks} QES check events"),
        });
    }
    Ok(report)
}

fn check_link(report: &mut ChainReport, ev: &EventRow, prev: Option<&(i64, Vec<u8>)>) {
    let (expected_id, expected_prev) = match prev {
        None => (1, Digest::ZERO.0.to_vec()),
        Some((id, hash)) => (id + 1, hash.clone()),
    };
    if ev.id != expected_id {
        report.push(Problem::MissingEvents {
            from: expected_id,
            to: ev.id - 1,
        });
    }
    if ev.prev_hash != expected_prev {
        report.push(Problem::PrevHash {
            event_id: ev.id,
            expected: lossy_digest(&expected_prev),
            found: lossy_digest(&ev.prev_hash),
        });
    }
    let computed = ev.computed_hash();
    if ev.hash.len() != 32 {
        let reason = format!("stored hash is {} bytes, not 32", ev.hash.len());
        report.push(Problem::Malformed {
            event_id: ev.id,
            reason,
        });
    } else if ev.hash != computed.0 {
        report.push(Problem::Hash {
            event_id: ev.id,
            stored: lossy_digest(&ev.hash),
            computed,
        });
    }
}

/// For the report only: a value of the wrong length is zero-padded or cut to 32 bytes.
fn lossy_digest(bytes: &[u8]) -> Digest {
    let mut d = [0u8; 32];
    let n = bytes.len().min(32);
    d[..n].copy_from_slice(&bytes[..n]);
    Digest(d)
}

struct Ctx<'a> {
    conn: &'a Conn,
    blobs: Blobs<'a>,
    checked: &'a mut HashSet<Digest>,
    /// Blob -> the prune event that removed it.
    pruned: &'a std::collections::HashMap<Digest, i64>,
    pruned_seen: HashSet<Digest>,
}

fn check_payload(ctx: &mut Ctx<'_>, ev: &EventRow) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let malformed = |reason: String| Problem::Malformed {
        event_id: ev.id,
        reason,
    };
    let digests = match chain::parse_blobs(&ev.blobs) {
        Ok(d) => d,
        Err(e) => return Ok(vec![malformed(format!("blobs column: {e}"))]),
    };
    for d in &digests {
        if ctx.checked.insert(*d) {
            match check_blob(ctx.blobs, ev.id, d) {
                // Missing is fine once a later prune event recorded its removal.
                Some(Problem::BlobMissing { .. })
                    if ctx.pruned.get(d).is_some_and(|&p| p > ev.id) =>
                {
                    ctx.pruned_seen.insert(*d);
                }
                p => problems.extend(p),
            }
        }
    }
    let (payload_id, listed, projection) = match ev.kind.as_str() {
        KIND_SUBMISSION => match submission::decode(ev.id, &ev.payload) {
            Ok(s) => {
                let proj = check_projection(ctx.conn, &s)?;
                (s.private_id, vec![s.content], proj)
            }
            Err(e) => {
                problems.push(malformed(e.to_string()));
                return Ok(problems);
            }
        },
        KIND_CONFIRMATION => match confirmation::decode(ev.id, &ev.time, &ev.payload) {
            Ok(c) => {
                let proj = check_confirmation_projection(ctx.conn, &c)?;
                (
                    c.data.private_id.clone().unwrap_or_default(),
                    c.blobs(),
                    proj,
                )
            }
            Err(e) => {
                problems.push(malformed(e.to_string()));
                return Ok(problems);
            }
        },
        KIND_QES_CHECK => match qes::decode(ev.id, &ev.time, &ev.payload) {
            Ok(c) => {
                let proj = check_qes_projection(ctx.conn, &c)?;
                (String::new(), vec![c.data.raw], proj)
            }
            Err(e) => {
                problems.push(malformed(e.to_string()));
                return Ok(problems);
            }
        },
        KIND_PRUNE => match prune::decode(ev.id, &ev.payload) {
            Ok(p) => {
                if let Some(b) = p.removed.iter().find(|r| r.event_id >= ev.id) {
                    problems.push(malformed(format!(
                        "prunes blob {} of event {}, which is not older",
                        b.digest, b.event_id
                    )));
                }
                (String::new(), Vec::new(), None)
            }
            Err(e) => {
                problems.push(malformed(e.to_string()));
                return Ok(problems);
            }
        },
        other => {
            problems.push(malformed(format!("unknown kind {other:?}")));
            return Ok(problems);
        }
    };
    if payload_id != ev.private_id {
        problems.push(malformed(format!(
            "payload private-id {payload_id:?} differs from the column {:?}",
            ev.private_id
        )));
    }
    if let Some(d) = listed.iter().find(|d| !digests.contains(d)) {
        problems.push(malformed(format!(
            "blob {d} not listed in the blobs column"
        )));
    }
    if let Some(reason) = projection {
        problems.push(Problem::Projection {
            event_id: Some(ev.id),
            reason,
        });
    }
    Ok(problems)
}

/// The confirmations row of this event, compared with its payload.
fn check_confirmation_projection(conn: &Conn, c: &Confirmation) -> Result<Option<String>> {
    let row = conn
        .query_opt(confirmation::BY_EVENT_SQL, args![c.event_id])?
        .map(|mut r| Ok::<_, demail_sql::Error>((r.take_bytes(0)?, r.text(1)?)))
        .transpose()?;
    let Some((raw, private_id)) = row else {
        return Ok(Some("no confirmations row".into()));
    };
    let mut diffs = Vec::new();
    if raw != c.data.raw.0 {
        diffs.push("raw");
    }
    if private_id != c.data.private_id.clone().unwrap_or_default() {
        diffs.push("private_id");
    }
    Ok((!diffs.is_empty()).then(|| format!("confirmations row differs in {}", diffs.join(", "))))
}

/// The qes_checks row of this event, compared with its payload.
fn check_qes_projection(conn: &Conn, c: &QesCheck) -> Result<Option<String>> {
    let raw = conn
        .query_opt(qes::BY_EVENT_SQL, args![c.event_id])?
        .map(|mut r| r.take_bytes(0))
        .transpose()?;
    Ok(match raw {
        None => Some("no qes_checks row".into()),
        Some(raw) if raw != c.data.raw.0 => Some("qes_checks row differs in raw".into()),
        Some(_) => None,
    })
}

fn check_blob(blobs: Blobs<'_>, event_id: i64, digest: &Digest) -> Option<Problem> {
    match blobs.verify(digest) {
        Ok(_) => None,
        Err(Error::BlobMissing { path, .. }) => Some(Problem::BlobMissing {
            event_id,
            digest: *digest,
            path,
        }),
        Err(Error::BlobMismatch { actual, path, .. }) => Some(Problem::BlobMismatch {
            event_id,
            digest: *digest,
            actual,
            path,
        }),
        Err(e) => Some(Problem::BlobUnreadable {
            event_id,
            digest: *digest,
            reason: e.to_string(),
        }),
    }
}

/// The submissions row of this event, compared with its payload.
fn check_projection(conn: &Conn, s: &Submission) -> Result<Option<String>> {
    let row = conn
        .query_opt(submission::BY_EVENT_SQL, args![s.event_id])?
        .map(|mut r| {
            Ok::<_, demail_sql::Error>((
                r.text(0)?,
                r.take_bytes(1)?,
                r.text(2)?,
                r.text(3)?,
                r.int(4)?,
            ))
        })
        .transpose()?;
    let Some((private_id, origin_key, message_id, tenant, time)) = row else {
        return Ok(Some("no submissions row".into()));
    };
    let mut diffs = Vec::new();
    if private_id != s.private_id {
        diffs.push("private_id");
    }
    if origin_key != s.origin_key.0 {
        diffs.push("origin_key");
    }
    if message_id != submission::message_id_key(&s.message_id) {
        diffs.push("message_id");
    }
    if tenant != s.tenant {
        diffs.push("tenant");
    }
    if Some(time) != submission::unix_nanos(s.time).ok() {
        diffs.push("time");
    }
    Ok((!diffs.is_empty()).then(|| format!("submissions row differs in {}", diffs.join(", "))))
}
