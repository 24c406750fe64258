//! Outbound De-Mails: the record, its validation, and the lookup projection.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Digest, Error, Result};

/// What the milter records for one outbound De-Mail. Serialised as the event payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubmission {
    pub private_id: String,
    /// Hash identifying the original message across milter retries.
    pub origin_key: Digest,
    pub tenant: String,
    pub account: String,
    /// The original envelope sender.
    pub clerk: String,
    pub sasl_login: Option<String>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub queue_id: String,
    /// Option keywords (dispatch, receipt, retrieve, authoritative, private).
    pub options: Vec<String>,
    /// The blob holding exactly the bytes that left; must be stored before recording.
    pub content: Digest,
    pub size: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// A recorded submission: everything in [`NewSubmission`] plus the id of its event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submission {
    pub event_id: i64,
    pub private_id: String,
    pub origin_key: Digest,
    pub tenant: String,
    pub account: String,
    pub clerk: String,
    pub sasl_login: Option<String>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub queue_id: String,
    pub options: Vec<String>,
    pub content: Digest,
    pub size: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

impl Submission {
    pub(crate) fn from_new(n: NewSubmission, event_id: i64) -> Submission {
        Submission {
            event_id,
            private_id: n.private_id,
            origin_key: n.origin_key,
            tenant: n.tenant,
            account: n.account,
            clerk: n.clerk,
            sasl_login: n.sasl_login,
            recipients: n.recipients,
            subject: n.subject,
            message_id: n.message_id,
            queue_id: n.queue_id,
            options: n.options,
            content: n.content,
            size: n.size,
            time: n.time,
        }
    }
}

/// Outcome of [`crate::Store::record_submission`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    Inserted(Submission),
    /// The private-id was recorded before; this is the stored record (nothing was written).
    AlreadyPresent(Submission),
}

impl Recorded {
    pub fn submission(&self) -> &Submission {
        match self {
            Recorded::Inserted(s) | Recorded::AlreadyPresent(s) => s,
        }
    }

    pub fn into_submission(self) -> Submission {
        match self {
            Recorded::Inserted(s) | Recorded::AlreadyPresent(s) => s,
        }
    }

    pub fn is_inserted(&self) -> bool {
        matches!(self, Recorded::Inserted(_))
    }
}

/// `X-de-mail-private-id` is at most 1024 characters [TR-01201 PVD_IO].
const MAX_PRIVATE_ID: usize = 1024;

pub(crate) fn validate(s: &NewSubmission) -> Result<()> {
    let invalid = |field, reason: &str| {
        Err(Error::Invalid {
            field,
            reason: reason.to_string(),
        })
    };
    if s.private_id.is_empty() {
        return invalid("private_id", "empty");
    }
    if s.private_id.chars().count() > MAX_PRIVATE_ID {
        return invalid("private_id", "longer than 1024 characters");
    }
    if s.private_id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return invalid("private_id", "contains white space or control characters");
    }
    if s.tenant.is_empty() {
        return invalid("tenant", "empty");
    }
    if s.account.is_empty() {
        return invalid("account", "empty");
    }
    if s.recipients.is_empty() {
        return invalid("recipients", "no recipient");
    }
    if let Some(i) = s.recipients.iter().position(|r| r.trim().is_empty()) {
        return Err(Error::Invalid {
            field: "recipients",
            reason: format!("recipient #{} is empty", i + 1),
        });
    }
    unix_nanos(s.time)?;
    if s.time
        .format(&time::format_description::well_known::Rfc3339)
        .is_err()
    {
        return invalid(
            "time",
            "not representable in RFC 3339 (year 0..9999, whole-minute offset)",
        );
    }
    Ok(())
}

/// Index key of a Message-ID: trimmed, without the angle brackets.
pub(crate) fn message_id_key(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(t)
}

/// The `time` index column.
pub(crate) fn unix_nanos(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| Error::Invalid {
        field: "time",
        reason: format!("{t} is outside 1677..2262"),
    })
}

/// Same, clamped: a `since` before 1677 filters nothing, one after 2262 everything.
pub(crate) fn unix_nanos_clamped(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn decode(event_id: i64, payload: &str) -> Result<Submission> {
    let n: NewSubmission = serde_json::from_str(payload)
        .map_err(|e| Error::Corrupt(format!("event {event_id}: submission payload: {e}")))?;
    Ok(Submission::from_new(n, event_id))
}

// The lookups. Each is a SEARCH through an index (see the query-plan test); CROSS JOIN pins
// the join order so the planner cannot start with a scan of `events`.
macro_rules! lookup {
    ($tail:literal) => {
        concat!(
            "SELECT e.id, e.payload FROM submissions AS s CROSS JOIN events AS e ON e.id = s.event_id ",
            $tail
        )
    };
}
pub(crate) const BY_PRIVATE_ID_SQL: &str = lookup!("WHERE s.private_id = ?1");
pub(crate) const BY_MESSAGE_ID_SQL: &str =
    lookup!("WHERE s.message_id = ?1 ORDER BY s.time DESC, s.event_id DESC LIMIT 1");
pub(crate) const BY_ORIGIN_KEY_SQL: &str =
    lookup!("WHERE s.origin_key = ?1 ORDER BY s.time DESC, s.event_id DESC LIMIT 1");
pub(crate) const LIST_SQL: &str =
    lookup!("WHERE s.time >= ?1 ORDER BY s.time DESC, s.event_id DESC LIMIT ?2");
pub(crate) const LIST_TENANT_SQL: &str =
    lookup!("WHERE s.tenant = ?3 AND s.time >= ?1 ORDER BY s.time DESC, s.event_id DESC LIMIT ?2");
pub(crate) const EVENTS_OF_SQL: &str =
    "SELECT id, kind, payload, time FROM events WHERE private_id = ?1 ORDER BY id";
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO submissions (private_id, event_id, origin_key, message_id, tenant, time)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const BY_EVENT_SQL: &str =
    "SELECT private_id, origin_key, message_id, tenant, time FROM submissions WHERE event_id = ?1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_key_strips_brackets_and_space() {
        assert_eq!(message_id_key("<a@b>"), "a@b");
        assert_eq!(message_id_key(" <a@b> "), "a@b");
        assert_eq!(message_id_key("a@b"), "a@b");
        assert_eq!(message_id_key("<a@b"), "<a@b");
    }

    #[test]
    fn clamps_far_times() {
        let far = time::Date::from_calendar_date(9999, time::Month::January, 1)
            .unwrap()
            .midnight()
            .assume_utc();
        assert_eq!(unix_nanos_clamped(far), i64::MAX);
        assert!(unix_nanos(far).is_err());
    }
}
