//! QES checks of mail to the poststelle: the verification report of a received message,
//! recorded with the digest of exactly the bytes that were verified. Such events belong to no
//! De-Mail (their private-id column is empty); the raw digest is their idempotency key, so a
//! message that Postfix retries after a tempfail is recorded once.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Digest, Error, Result};

/// One QES check as the milter stores it. Serialised as the event payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewQesCheck {
    /// Blob with the message exactly as received and verified; the idempotency key.
    pub raw: Digest,
    /// Postfix queue id ("" when the MTA did not send one).
    pub queue_id: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The message's Message-ID ("" when it has none).
    pub message_id: String,
    /// The verification report (JSON, one object per signature, as demail-trust writes it).
    pub report: serde_json::Value,
    /// Overall ETSI indication (TOTAL_PASSED, TOTAL_FAILED, INDETERMINATE).
    pub indication: String,
    /// Overall qualification (QESig, AdESig, N/A, ...).
    pub qualification: String,
    /// When the check ran.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// A recorded QES check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QesCheck {
    pub event_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded: OffsetDateTime,
    #[serde(flatten)]
    pub data: NewQesCheck,
}

/// Outcome of [`crate::Store::record_qes_check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QesCheckRecorded {
    Inserted(QesCheck),
    /// The same raw bytes were recorded before: the stored record, nothing written.
    AlreadyPresent(QesCheck),
}

impl QesCheckRecorded {
    pub fn check(&self) -> &QesCheck {
        match self {
            QesCheckRecorded::Inserted(c) | QesCheckRecorded::AlreadyPresent(c) => c,
        }
    }

    pub fn is_inserted(&self) -> bool {
        matches!(self, QesCheckRecorded::Inserted(_))
    }
}

pub(crate) fn validate(c: &NewQesCheck) -> Result<()> {
    let invalid = |field, reason: String| Err(Error::Invalid { field, reason });
    if c.recipients.is_empty() {
        return invalid("recipients", "no recipient".into());
    }
    if let Some(i) = c.recipients.iter().position(|r| r.trim().is_empty()) {
        return invalid("recipients", format!("recipient #{} is empty", i + 1));
    }
    for (field, value) in [
        ("indication", &c.indication),
        ("qualification", &c.qualification),
    ] {
        if value.trim().is_empty() {
            return invalid(field, "empty".into());
        }
    }
    if c.time.format(&Rfc3339).is_err() {
        return invalid(
            "time",
            "not representable in RFC 3339 (year 0..9999, whole-minute offset)".into(),
        );
    }
    Ok(())
}

pub(crate) fn decode(event_id: i64, recorded: &str, payload: &str) -> Result<QesCheck> {
    let data: NewQesCheck = serde_json::from_str(payload)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: qes-check payload: {e}")))?;
    let recorded = OffsetDateTime::parse(recorded, &Rfc3339)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: time {recorded:?}: {e}")))?;
    Ok(QesCheck {
        event_id,
        recorded,
        data,
    })
}

pub(crate) const BY_RAW_SQL: &str = "SELECT e.id, e.time, e.payload FROM qes_checks AS q \
     CROSS JOIN events AS e ON e.id = q.event_id WHERE q.raw = ?1";
pub(crate) const INSERT_SQL: &str = "INSERT INTO qes_checks (raw, event_id) VALUES (?1, ?2)";
pub(crate) const BY_EVENT_SQL: &str = "SELECT raw FROM qes_checks WHERE event_id = ?1";

/// Schema migration 3: the idempotency/lookup projection of QES check events.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE qes_checks (
    raw         BLOB PRIMARY KEY CHECK (length(raw) = 32),
    event_id    INTEGER NOT NULL UNIQUE REFERENCES events (id)
) WITHOUT ROWID;
CREATE TRIGGER qes_checks_no_update BEFORE UPDATE ON qes_checks
    BEGIN SELECT RAISE(ABORT, 'evidence QES checks are append-only'); END;
CREATE TRIGGER qes_checks_no_delete BEFORE DELETE ON qes_checks
    BEGIN SELECT RAISE(ABORT, 'evidence QES checks are append-only'); END;
"#;
