//! Moving a store to the other engine (`demailctl evidence copy`): SQLite to PostgreSQL when a
//! town joins an association's gateway, and back for an archive or a single node.
//!
//! Every event is copied as recorded (id, time, payload and both hashes), so the copy has the
//! same chain and the same head; the projections are copied row by row; every blob an event
//! names is read hash-checked and stored the target's way (PostgreSQL keeps all of them in the
//! database). Blobs a prune event removed stay removed. The source is read in one snapshot, the
//! target written in one transaction that starts only into an empty store. The source's chain
//! is verified before anything is written and the target's before the copy is reported.

use std::collections::HashSet;

use demail_sql::{Param, Value, args};

use crate::{ChainHead, Digest, Error, Result, Store, chain, prune};

/// What [`Store::copy_to`] copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySummary {
    pub events: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blobs the events name that a prune removed (in neither store).
    pub pruned_blobs: u64,
    /// The head of both stores after the copy.
    pub head: Option<ChainHead>,
}

/// Events copied per round trip.
const PAGE: i64 = 500;

/// The projections, with their columns in one order for both engines.
const PROJECTIONS: [(&str, &str); 3] = [
    (
        "submissions",
        "private_id, event_id, origin_key, message_id, tenant, time",
    ),
    ("confirmations", "raw, event_id, private_id"),
    ("qes_checks", "raw, event_id"),
];

pub(crate) fn copy(from: &Store, to: &Store) -> Result<CopySummary> {
    // An altered source is refused before anything is written: the target would otherwise
    // hold the damage, committed, before its own check found it.
    let source = from.verify_chain()?;
    if !source.is_intact() {
        return Err(Error::Corrupt(format!(
            "the source {} does not verify ({}): nothing copied",
            from.database_path().display(),
            source.problems[0]
        )));
    }
    let src = from.conn();
    let snapshot = src.begin(demail_sql::TxKind::Snapshot)?;
    let tx = to.conn().begin(chain::WRITE)?;
    let present = tx
        .query_opt("SELECT count(*) FROM events", args![])?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    if present > 0 {
        return Err(Error::Invalid {
            field: "target",
            reason: format!(
                "{} holds {present} events already: copy only into an empty store",
                to.database_path().display()
            ),
        });
    }
    let pruned = prune::pruned_blobs(&snapshot)?;
    let source_head = chain::head(&snapshot)?.map(|(event_id, hash)| ChainHead { event_id, hash });
    let mut summary = CopySummary {
        events: 0,
        blobs: 0,
        blob_bytes: 0,
        pruned_blobs: 0,
        head: None,
    };
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut after = 0i64;
    loop {
        let rows = snapshot.query(
            "SELECT id, time, kind, private_id, payload, blobs, prev_hash, hash FROM events \
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            args![after, PAGE],
        )?;
        let Some(last) = rows.last() else { break };
        after = last.int(0)?;
        for row in &rows {
            let id = row.int(0)?;
            let list = row.text(5)?;
            let digests = chain::parse_blobs(&list)
                .map_err(|e| Error::Corrupt(format!("event {id}: blobs column: {e}")))?;
            for d in digests {
                if !seen.insert(d) {
                    continue;
                }
                if pruned.contains_key(&d) {
                    summary.pruned_blobs += 1;
                    continue;
                }
                let bytes = from.read_blob(&d)?;
                to.put_blob(&bytes)?;
                summary.blobs += 1;
                summary.blob_bytes += bytes.len() as u64;
            }
            tx.execute(
                "INSERT INTO events (id, time, kind, private_id, payload, blobs, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &params(row)?,
            )?;
            summary.events += 1;
        }
    }
    for (table, columns) in PROJECTIONS {
        let n = columns.split(',').count();
        let placeholders: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            placeholders.join(", ")
        );
        let mut after = -1i64;
        loop {
            let rows = snapshot.query(
                &format!(
                    "SELECT {columns} FROM {table} WHERE event_id > ?1 ORDER BY event_id LIMIT ?2"
                ),
                args![after, PAGE],
            )?;
            let Some(last) = rows.last() else { break };
            after = last.int(event_id_column(columns))?;
            for row in &rows {
                tx.execute(&insert, &params(row)?)?;
            }
        }
    }
    tx.commit()?;
    drop(snapshot);
    let report = to.verify_chain()?;
    if !report.is_intact() {
        return Err(Error::Corrupt(format!(
            "the copy in {} does not verify: {}",
            to.database_path().display(),
            report.problems[0]
        )));
    }
    if report.head != source_head {
        return Err(Error::Corrupt(format!(
            "the copy's head {:?} differs from the source's {:?}",
            report.head, source_head
        )));
    }
    summary.head = report.head;
    Ok(summary)
}

fn event_id_column(columns: &str) -> usize {
    columns
        .split(',')
        .position(|c| c.trim() == "event_id")
        .expect("every projection names its event")
}

/// A row's values as parameters of the same statement on the other engine.
fn params(row: &demail_sql::Row) -> Result<Vec<Param<'_>>> {
    row.0
        .iter()
        .map(|v| match v {
            Value::Int(i) => Ok(Param::Int(*i)),
            Value::Text(t) => Ok(Param::Text(t)),
            Value::Bytes(b) => Ok(Param::Bytes(b)),
            Value::Null => Err(Error::Corrupt("a NULL in an evidence row".into())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::Store;
    use crate::tests::{record, store};

    #[test]
    fn a_copy_has_the_same_events_blobs_and_head() {
        let (dir, from) = store();
        for n in 0..5 {
            record(&from, n);
        }
        let to = Store::open(
            &dir.path().join("copy.sqlite"),
            &dir.path().join("copy-blobs"),
        )
        .unwrap();
        let c = from.copy_to(&to).unwrap();
        assert_eq!(c.events, 5);
        assert_eq!(c.blobs, 5, "one content blob per submission");
        assert_eq!(c.head, from.head().unwrap());
        assert_eq!(to.verify_chain().unwrap().head, from.head().unwrap());
        let (a, b) = (
            from.list(None, None, 10).unwrap(),
            to.list(None, None, 10).unwrap(),
        );
        assert_eq!(a, b, "the projections came along");
        // Into a store that holds anything: refused, and nothing added.
        let err = from.copy_to(&to).unwrap_err();
        assert!(err.to_string().contains("empty store"), "{err}");
        assert_eq!(to.head().unwrap(), from.head().unwrap());
    }

    /// A source changed behind its triggers does not become a verified copy elsewhere.
    #[test]
    fn an_altered_source_is_not_copied_as_verified() {
        let (dir, from) = store();
        for n in 0..3 {
            record(&from, n);
        }
        let raw = Connection::open(dir.path().join("e.sqlite")).unwrap();
        raw.execute_batch(
            "DROP TRIGGER events_no_update; UPDATE events SET payload = replace(payload, 's1', 's9') WHERE id = 2",
        )
        .unwrap();
        let to_db = dir.path().join("copy.sqlite");
        let to = Store::open(&to_db, &dir.path().join("copy-blobs")).unwrap();
        let err = from.copy_to(&to).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(err.to_string().contains("nothing copied"), "{err}");
        assert_eq!(to.head().unwrap(), None, "the target stays empty");
    }
}
