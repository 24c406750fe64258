//! The hash chain: every event carries the hash of its predecessor, and its own hash covers a
//! canonical encoding of all its columns including that `prev_hash`. Changing, removing or
//! reordering a recorded event breaks a link that `verify_chain` finds.

use demail_sql::{Conn, Row, args};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::digest::Hasher;
use crate::{Digest, Error, Result};

/// Domain separation and format version of the encoding below.
const DOMAIN: &[u8] = b"demail-evidence/event/v1\0";

pub(crate) const KIND_SUBMISSION: &str = "submission";
pub(crate) const KIND_CONFIRMATION: &str = "confirmation";
pub(crate) const KIND_PRUNE: &str = "prune";
pub(crate) const KIND_QES_CHECK: &str = "qes-check";

/// The transaction every append runs in. On PostgreSQL the lock is an advisory lock of this
/// number (the store's application id), held by one writer of all nodes at a time.
pub(crate) const WRITE: demail_sql::TxKind = demail_sql::TxKind::Write {
    lock: crate::schema::APPLICATION_ID,
};

/// One `events` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: i64,
    pub time: String,
    pub kind: String,
    pub private_id: String,
    pub payload: String,
    pub blobs: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[cfg(test)]
pub(crate) const SELECT_ALL: &str =
    "SELECT id, time, kind, private_id, payload, blobs, prev_hash, hash FROM events ORDER BY id";
pub(crate) const SELECT_PAGE: &str = "SELECT id, time, kind, private_id, payload, blobs, prev_hash, hash \
     FROM events WHERE id > ?1 ORDER BY id LIMIT ?2";
pub(crate) const SELECT_ONE: &str =
    "SELECT id, time, kind, private_id, payload, blobs, prev_hash, hash FROM events WHERE id = ?1";

impl EventRow {
    pub(crate) fn from_row(mut r: Row) -> demail_sql::Result<EventRow> {
        Ok(EventRow {
            id: r.int(0)?,
            time: r.text(1)?,
            kind: r.text(2)?,
            private_id: r.text(3)?,
            payload: r.text(4)?,
            blobs: r.text(5)?,
            prev_hash: r.take_bytes(6)?,
            hash: r.take_bytes(7)?,
        })
    }

    /// The hash this row should carry, computed from its other columns.
    pub(crate) fn computed_hash(&self) -> Digest {
        let fields = [
            &self.time,
            &self.kind,
            &self.private_id,
            &self.payload,
            &self.blobs,
        ];
        event_hash(self.id, fields.map(String::as_str), &self.prev_hash)
    }

    pub(crate) fn preimage(&self) -> Vec<u8> {
        let fields = [
            &self.time,
            &self.kind,
            &self.private_id,
            &self.payload,
            &self.blobs,
        ];
        preimage(self.id, fields.map(String::as_str), &self.prev_hash)
    }
}

/// SHA-256 of [`preimage`].
pub(crate) fn event_hash(id: i64, fields: [&str; 5], prev_hash: &[u8]) -> Digest {
    let mut h = Hasher::new();
    h.update(&preimage(id, fields, prev_hash));
    h.finish()
}

/// The bytes an event hash covers: domain tag, id (u64 big-endian), each text field as u64
/// big-endian length plus UTF-8 bytes (time, kind, private_id, payload, blobs), then
/// prev_hash, length-prefixed too. Length prefixes make the encoding injective: no two rows
/// share an input. Exported as-is so `sha256sum` alone can recheck a hash.
pub(crate) fn preimage(id: i64, fields: [&str; 5], prev_hash: &[u8]) -> Vec<u8> {
    let mut v =
        Vec::with_capacity(DOMAIN.len() + 64 + fields.iter().map(|f| f.len()).sum::<usize>());
    v.extend_from_slice(DOMAIN);
    v.extend_from_slice(&id.to_be_bytes());
    for f in fields {
        v.extend_from_slice(&(f.len() as u64).to_be_bytes());
        v.extend_from_slice(f.as_bytes());
    }
    v.extend_from_slice(&(prev_hash.len() as u64).to_be_bytes());
    v.extend_from_slice(prev_hash);
    v
}

pub(crate) fn format_blobs(blobs: &[Digest]) -> String {
    blobs.iter().map(Digest::hex).collect::<Vec<_>>().join(" ")
}

/// Parses the `blobs` column; the error names the offending token.
pub(crate) fn parse_blobs(s: &str) -> std::result::Result<Vec<Digest>, String> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<Digest>().map_err(|e| e.to_string()))
        .collect()
}

/// An event about to be appended.
pub(crate) struct NewEvent<'a> {
    pub kind: &'a str,
    pub private_id: &'a str,
    pub payload: &'a str,
    pub blobs: &'a [Digest],
}

/// Appends after the current head. Must run inside a write transaction ([`WRITE`]), which
/// holds the write lock from the head read to the commit, so concurrent writers (on any node)
/// cannot fork the chain.
pub(crate) fn append(conn: &Conn, ev: &NewEvent<'_>) -> Result<i64> {
    let (id, prev) = match head(conn)? {
        None => (1, Digest::ZERO),
        Some((id, hash)) => (id + 1, hash),
    };
    let time = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| Error::Corrupt(format!("system clock: {e}")))?;
    let blobs = format_blobs(ev.blobs);
    let hash = event_hash(
        id,
        [&time, ev.kind, ev.private_id, ev.payload, &blobs],
        &prev.0,
    );
    conn.execute(
        "INSERT INTO events (id, time, kind, private_id, payload, blobs, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
            id,
            &time,
            ev.kind,
            ev.private_id,
            ev.payload,
            &blobs,
            &prev.0,
            &hash.0
        ],
    )?;
    Ok(id)
}

/// The newest event's id and hash.
pub(crate) fn head(conn: &Conn) -> Result<Option<(i64, Digest)>> {
    let row = conn
        .query_opt(
            "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
            args![],
        )?
        .map(|mut r| Ok::<_, demail_sql::Error>((r.int(0)?, r.take_bytes(1)?)))
        .transpose()?;
    match row {
        None => Ok(None),
        Some((id, hash)) => Ok(Some((
            id,
            Digest::from_slice(&hash, &format!("event {id} hash"))?,
        ))),
    }
}

/// One event as stored, for display and export.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EventRecord {
    pub id: i64,
    /// When recorded, RFC 3339 UTC (as hashed).
    pub time: String,
    pub kind: String,
    pub private_id: String,
    pub payload: String,
    pub blobs: String,
    pub prev_hash: String,
    pub hash: String,
    /// The exact bytes whose SHA-256 the hash should be (see `event_hash`).
    #[serde(skip)]
    pub preimage: Vec<u8>,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> EventRecord {
        let preimage = r.preimage();
        EventRecord {
            id: r.id,
            time: r.time,
            kind: r.kind,
            private_id: r.private_id,
            payload: r.payload,
            blobs: r.blobs,
            prev_hash: hex::encode(&r.prev_hash),
            hash: hex::encode(&r.hash),
            preimage,
        }
    }
}
