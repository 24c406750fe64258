//! Retention: blobs of cases (all events of one private-id) whose newest event is older than
//! the retention period are deleted. Events are never deleted (that would break the chain);
//! instead a `prune` event lists every removed blob, and verification accepts a blob as absent
//! when a later prune event names it. Event payloads (metadata) therefore stay.

use std::collections::{HashMap, HashSet};

use demail_sql::{Conn, args};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::blob::Blobs;
use crate::chain::{self, KIND_PRUNE, NewEvent};
use crate::{Digest, Error, Result};

/// One removed blob and the (first) event that referenced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedBlob {
    pub digest: Digest,
    pub event_id: i64,
    pub private_id: String,
    pub size: u64,
}

/// The payload of a prune event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneRecord {
    pub retention_years: u32,
    /// Cases whose newest event is before this instant were pruned.
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    pub reason: String,
    pub removed: Vec<PrunedBlob>,
}

/// What [`crate::Store::prune`] did (or, with `dry_run`, would do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneOutcome {
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    /// Expired cases (private-ids; unmatched confirmations count as one case each).
    pub cases: usize,
    pub removed: Vec<PrunedBlob>,
    pub bytes: u64,
    /// The prune event; `None` on a dry run or when nothing was due.
    pub event_id: Option<i64>,
}

/// `now` minus whole calendar years (29 February becomes 28 February).
pub(crate) fn cutoff(now: OffsetDateTime, years: u32) -> Result<OffsetDateTime> {
    let invalid = |reason: String| Error::Invalid {
        field: "retention_years",
        reason,
    };
    if years == 0 {
        return Err(invalid("must be at least 1".into()));
    }
    let year = i32::try_from(years)
        .ok()
        .and_then(|y| now.year().checked_sub(y))
        .ok_or_else(|| invalid(format!("{years} years before {now}")))?;
    now.replace_year(year)
        .or_else(|_| now.replace_day(28).and_then(|t| t.replace_year(year)))
        .map_err(|e| invalid(format!("{years} years before {now}: {e}")))
}

pub(crate) fn decode(event_id: i64, payload: &str) -> Result<PruneRecord> {
    serde_json::from_str(payload)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: prune payload: {e}")))
}

/// Every blob some prune event removed, with the id of that prune event.
pub(crate) fn pruned_blobs(conn: &Conn) -> Result<HashMap<Digest, i64>> {
    let rows = conn.query(
        "SELECT id, payload FROM events WHERE kind = ?1",
        args![KIND_PRUNE],
    )?;
    let mut out = HashMap::new();
    for r in rows {
        let (id, payload) = (r.int(0)?, r.text(1)?);
        // A corrupt prune payload is reported by the walk; here it just prunes nothing.
        if let Ok(rec) = decode(id, &payload) {
            for b in rec.removed {
                out.entry(b.digest).or_insert(id);
            }
        }
    }
    Ok(out)
}

struct Case {
    newest: OffsetDateTime,
    blobs: Vec<(Digest, i64)>,
}

/// Plans and (unless `dry_run`) records the prune event, then deletes the files. The plan is
/// made under the write lock, so no event can be appended between plan and record.
pub(crate) fn run(
    blobs: Blobs<'_>,
    years: u32,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<PruneOutcome> {
    let cutoff = cutoff(now, years)?;
    let conn = blobs.conn;
    let tx = conn.begin(chain::WRITE)?;
    let already = pruned_blobs(&tx)?;
    let mut cases: HashMap<String, Case> = HashMap::new();
    tx.for_each(
        "SELECT id, time, kind, private_id, blobs FROM events ORDER BY id",
        args![],
        |r| {
            let (id, time, kind, pid, blobs) =
                (r.int(0)?, r.text(1)?, r.text(2)?, r.text(3)?, r.text(4)?);
            if kind == KIND_PRUNE {
                return Ok(());
            }
            let t = OffsetDateTime::parse(&time, &Rfc3339)
                .map_err(|e| Error::Corrupt(format!("event {id}: time {time:?}: {e}")))?;
            let digests = chain::parse_blobs(&blobs)
                .map_err(|e| Error::Corrupt(format!("event {id}: blobs column: {e}")))?;
            let key = if pid.is_empty() {
                format!("#{id}")
            } else {
                pid
            };
            let case = cases.entry(key).or_insert(Case {
                newest: t,
                blobs: Vec::new(),
            });
            case.newest = case.newest.max(t);
            case.blobs.extend(digests.into_iter().map(|d| (d, id)));
            Ok::<_, Error>(())
        },
    )?;
    // A blob shared with a live case (same bytes sent again) stays.
    let live: HashSet<Digest> = cases
        .values()
        .filter(|c| c.newest >= cutoff)
        .flat_map(|c| c.blobs.iter().map(|b| b.0))
        .collect();
    let mut keys: Vec<&String> = cases
        .iter()
        .filter(|(_, c)| c.newest < cutoff)
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let mut removed = Vec::new();
    let mut seen = HashSet::new();
    for key in &keys {
        for &(digest, event_id) in &cases[*key].blobs {
            if live.contains(&digest) || already.contains_key(&digest) || !seen.insert(digest) {
                continue;
            }
            let size = match blobs.len(&digest) {
                Ok(size) => size,
                // Missing and not pruned: verification reports it.
                Err(Error::BlobMissing { .. }) => continue,
                Err(e) => return Err(e),
            };
            removed.push(PrunedBlob {
                digest,
                event_id,
                private_id: if key.starts_with('#') {
                    String::new()
                } else {
                    (*key).clone()
                },
                size,
            });
        }
    }
    let bytes = removed.iter().map(|b| b.size).sum();
    let mut outcome = PruneOutcome {
        cutoff,
        cases: keys.len(),
        removed,
        bytes,
        event_id: None,
    };
    if dry_run || outcome.removed.is_empty() {
        return Ok(outcome);
    }
    let record = PruneRecord {
        retention_years: years,
        cutoff,
        reason: format!("retention of {years} years expired (newest event before the cutoff)"),
        removed: outcome.removed.clone(),
    };
    let payload = serde_json::to_string(&record).map_err(|e| Error::Corrupt(e.to_string()))?;
    let id = chain::append(
        &tx,
        &NewEvent {
            kind: KIND_PRUNE,
            private_id: "",
            payload: &payload,
            blobs: &[],
        },
    )?;
    // Rows go with the event that records their removal, atomically; files after the commit.
    for b in &outcome.removed {
        blobs.remove_inline(&b.digest)?;
    }
    tx.commit()?;
    outcome.event_id = Some(id);
    // After the commit: a crash now leaves blobs that are listed as pruned yet present, which
    // verification accepts (and checks).
    for b in &outcome.removed {
        blobs.remove_file(&b.digest)?;
    }
    Ok(outcome)
}
