//! Confirmations and notifications from the provider (Versand-, Eingangs-, Abholbestätigung,
//! notifications): the record, its validation and the lookup projection.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Digest, Error, Result};

/// What the provider confirms. A notification carries its type (`unknown-recipient`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "notification", rename_all = "kebab-case")]
pub enum ConfirmationKind {
    /// Versandbestätigung.
    Dispatch,
    /// Eingangsbestätigung.
    Receipt,
    /// Abholbestätigung.
    Retrieve,
    Notification(String),
}

impl ConfirmationKind {
    /// Short name for tables and reports (never a file name: it carries provider text).
    pub fn label(&self) -> String {
        match self {
            ConfirmationKind::Dispatch => "dispatch".into(),
            ConfirmationKind::Receipt => "receipt".into(),
            ConfirmationKind::Retrieve => "retrieve".into(),
            ConfirmationKind::Notification(t) => format!("notification:{t}"),
        }
    }
}

/// A confirmation as the milter stores it. Serialised as the event payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewConfirmation {
    pub kind: ConfirmationKind,
    /// The submission it was matched to; `None` = unmatched (kept, counts for nothing).
    pub private_id: Option<String>,
    /// The recipient it concerns.
    pub recipient: String,
    pub provider_message_id: Option<String>,
    /// Blob with the exact bytes that arrived; the idempotency key.
    pub raw: Digest,
    pub xml: Option<Digest>,
    pub pdf: Option<Digest>,
    /// Verification report (JSON, as produced by demail-trust).
    pub report: serde_json::Value,
    /// ETSI indication of the report (TOTAL_PASSED, ...).
    pub indication: String,
    /// The time the confirmation states (dispatch/receipt/retrieval time).
    #[serde(with = "time::serde::rfc3339::option")]
    pub stated_time: Option<OffsetDateTime>,
    /// Verified and received on the provider service; only trusted ones change status.
    pub trusted: bool,
}

/// A recorded confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    pub event_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded: OffsetDateTime,
    #[serde(flatten)]
    pub data: NewConfirmation,
}

impl Confirmation {
    /// Raw, XML and PDF blob digests, in that order.
    pub fn blobs(&self) -> Vec<Digest> {
        blobs_of(&self.data)
    }
}

/// Outcome of [`crate::Store::record_confirmation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmationRecorded {
    Inserted(Confirmation),
    /// Same raw bytes recorded before: the stored record, nothing written.
    AlreadyPresent(Confirmation),
}

impl ConfirmationRecorded {
    pub fn confirmation(&self) -> &Confirmation {
        match self {
            ConfirmationRecorded::Inserted(c) | ConfirmationRecorded::AlreadyPresent(c) => c,
        }
    }

    pub fn is_inserted(&self) -> bool {
        matches!(self, ConfirmationRecorded::Inserted(_))
    }
}

pub(crate) fn blobs_of(c: &NewConfirmation) -> Vec<Digest> {
    let mut v = vec![c.raw];
    v.extend(c.xml);
    v.extend(c.pdf);
    v
}

pub(crate) fn validate(c: &NewConfirmation) -> Result<()> {
    let invalid = |field, reason: String| Err(Error::Invalid { field, reason });
    if let ConfirmationKind::Notification(t) = &c.kind
        && (t.is_empty() || t.chars().any(|ch| ch.is_control() || ch.is_whitespace()))
    {
        return invalid(
            "kind",
            format!("notification type {t:?} is empty or has spaces"),
        );
    }
    if let Some(p) = &c.private_id
        && (p.is_empty() || p.chars().any(|ch| ch.is_control() || ch.is_whitespace()))
    {
        return invalid("private_id", format!("{p:?} is empty or has spaces"));
    }
    if c.indication.trim().is_empty() {
        return invalid("indication", "empty".into());
    }
    Ok(())
}

pub(crate) fn decode(event_id: i64, recorded: &str, payload: &str) -> Result<Confirmation> {
    let data: NewConfirmation = serde_json::from_str(payload)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: confirmation payload: {e}")))?;
    let recorded = OffsetDateTime::parse(recorded, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: time {recorded:?}: {e}")))?;
    Ok(Confirmation {
        event_id,
        recorded,
        data,
    })
}

pub(crate) const BY_RAW_SQL: &str = "SELECT e.id, e.time, e.payload FROM confirmations AS c \
     CROSS JOIN events AS e ON e.id = c.event_id WHERE c.raw = ?1";
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO confirmations (raw, event_id, private_id) VALUES (?1, ?2, ?3)";
pub(crate) const BY_EVENT_SQL: &str =
    "SELECT raw, private_id FROM confirmations WHERE event_id = ?1";
pub(crate) const OF_PRIVATE_ID_SQL: &str = "SELECT id, time, payload FROM events \
     WHERE private_id = ?1 AND kind = 'confirmation' ORDER BY id";

/// Schema migration 2: the idempotency/lookup projection of confirmation events.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE confirmations (
    raw         BLOB PRIMARY KEY CHECK (length(raw) = 32),
    event_id    INTEGER NOT NULL UNIQUE REFERENCES events (id),
    private_id  TEXT NOT NULL               -- '' when unmatched
) WITHOUT ROWID;
CREATE TRIGGER confirmations_no_update BEFORE UPDATE ON confirmations
    BEGIN SELECT RAISE(ABORT, 'evidence confirmations are append-only'); END;
CREATE TRIGGER confirmations_no_delete BEFORE DELETE ON confirmations
    BEGIN SELECT RAISE(ABORT, 'evidence confirmations are append-only'); END;
"#;
