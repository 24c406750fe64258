//! Per-recipient status: a projection (fold) of the immutable events of one private-id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::berlin;
use crate::chain::{KIND_CONFIRMATION, KIND_PRUNE, KIND_QES_CHECK, KIND_SUBMISSION};
use crate::confirmation::{self, ConfirmationKind};
use crate::{Error, Result, submission};

/// Where an outbound De-Mail stands for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Submitted,
    Dispatched,
    Received,
    Retrieved,
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Submitted,
        Status::Dispatched,
        Status::Received,
        Status::Retrieved,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Dispatched => "dispatched",
            Status::Received => "received",
            Status::Retrieved => "retrieved",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Status> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Invalid {
                field: "status",
                reason: format!(
                    "{s:?} is none of submitted, dispatched, received, retrieved, failed"
                ),
            })
    }
}

impl Status {
    /// Strength of the evidence: a status only ever moves to a higher rank, so confirmations
    /// arriving out of order cannot move it back. A failure notification beats a dispatch,
    /// but proof of receipt or retrieval beats a (contradicting) failure.
    fn rank(self) -> u8 {
        match self {
            Status::Submitted => 0,
            Status::Dispatched => 1,
            Status::Failed => 2,
            Status::Received => 3,
            Status::Retrieved => 4,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    pub recipient: String,
    pub status: Status,
    /// When the current status was reached (the time the confirmation states, else when it
    /// was recorded).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The Versandbestätigung's time, if a trusted one arrived.
    #[serde(with = "time::serde::rfc3339::option")]
    pub dispatched: Option<OffsetDateTime>,
    /// Deemed served (VwZG §5a (4)) at the end of this instant: the last second of the third
    /// German calendar day after dispatch. Only when an Abholbestätigung was requested and a
    /// dispatch is confirmed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deemed_served_deadline: Option<OffsetDateTime>,
    /// Derived from `now`: the deadline passed without a retrieval before it (and no failure).
    pub deemed_served: bool,
}

/// The instant after which a De-Mail dispatched at `dispatched` is deemed served: end of the
/// third day after the dispatch date, German calendar (see `berlin` for the DST rule).
/// Returns the last whole second of that day, in German local time.
pub fn deemed_served_deadline(dispatched: OffsetDateTime) -> OffsetDateTime {
    let next = day_after_deadline(dispatched);
    let last = next - time::Duration::seconds(1);
    last.to_offset(berlin::offset_at(last))
}

fn day_after_deadline(dispatched: OffsetDateTime) -> OffsetDateTime {
    let d = berlin::local_date(dispatched);
    let d4 = d.checked_add(time::Duration::days(4)).unwrap_or(d);
    berlin::start_of_day(d4)
}

/// One event of a private-id as the projection needs it.
pub(crate) struct EventIn {
    pub id: i64,
    pub kind: String,
    pub time: String,
    pub payload: String,
}

struct Acc {
    st: RecipientStatus,
    retrieved: Option<OffsetDateTime>,
}

/// Folds the events of one private-id, oldest first, into per-recipient status at `now`.
/// A recipient named twice in the envelope is listed once; recipients compare
/// case-insensitively. Untrusted confirmations and unknown recipients change nothing.
pub(crate) fn project<I>(events: I, now: OffsetDateTime) -> Result<Vec<RecipientStatus>>
where
    I: IntoIterator<Item = Result<EventIn>>,
{
    let mut out: Vec<Acc> = Vec::new();
    let mut retrieve_requested = false;
    for ev in events {
        let ev = ev?;
        match ev.kind.as_str() {
            KIND_SUBMISSION => {
                let s = submission::decode(ev.id, &ev.payload)?;
                retrieve_requested |= s.options.iter().any(|o| o == "retrieve");
                for r in s.recipients {
                    if !out.iter().any(|o| o.st.recipient.eq_ignore_ascii_case(&r)) {
                        out.push(Acc {
                            st: RecipientStatus {
                                recipient: r,
                                status: Status::Submitted,
                                since: s.time,
                                dispatched: None,
                                deemed_served_deadline: None,
                                deemed_served: false,
                            },
                            retrieved: None,
                        });
                    }
                }
            }
            KIND_CONFIRMATION => {
                let c = confirmation::decode(ev.id, &ev.time, &ev.payload)?;
                if !c.data.trusted {
                    continue;
                }
                let Some(acc) = out
                    .iter_mut()
                    .find(|o| o.st.recipient.eq_ignore_ascii_case(c.data.recipient.trim()))
                else {
                    continue;
                };
                let at = c.data.stated_time.unwrap_or(c.recorded);
                let to = match &c.data.kind {
                    ConfirmationKind::Dispatch => {
                        acc.st.dispatched.get_or_insert(at);
                        Status::Dispatched
                    }
                    ConfirmationKind::Receipt => Status::Received,
                    ConfirmationKind::Retrieve => {
                        acc.retrieved.get_or_insert(at);
                        Status::Retrieved
                    }
                    ConfirmationKind::Notification(_) => Status::Failed,
                };
                if to.rank() > acc.st.status.rank() {
                    acc.st.status = to;
                    acc.st.since = at;
                }
            }
            // Not about a De-Mail (empty private-id): no recipient status to change.
            KIND_PRUNE | KIND_QES_CHECK => {}
            other => {
                return Err(Error::Corrupt(format!(
                    "event {}: unknown kind {other:?}",
                    ev.id
                )));
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|mut a| {
            if retrieve_requested && let Some(d) = a.st.dispatched {
                let after = day_after_deadline(d);
                a.st.deemed_served_deadline = Some(deemed_served_deadline(d));
                a.st.deemed_served = now >= after
                    && a.st.status != Status::Failed
                    && a.retrieved.is_none_or(|r| r >= after);
            }
            a.st
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_agree_with_serde() {
        for st in Status::ALL {
            assert_eq!(st.to_string().parse::<Status>().unwrap(), st);
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{st}\""));
        }
        assert!("Submitted".parse::<Status>().is_err());
    }

    #[test]
    fn deadline_is_end_of_third_german_day() {
        use time::macros::datetime;
        // Dispatched Monday 23:30 Berlin (winter) = 22:30 UTC: day 3 is Thursday.
        let d = deemed_served_deadline(datetime!(2026-11-02 22:30 UTC));
        assert_eq!(d, datetime!(2026-11-05 23:59:59 +1));
        assert_eq!(d.offset().whole_hours(), 1);
        // 22:30 UTC in summer is already the next German day.
        let d = deemed_served_deadline(datetime!(2026-07-01 22:30 UTC));
        assert_eq!(d, datetime!(2026-07-05 23:59:59 +2));
        // Across the October switch: dispatched in CEST, deadline in CET.
        let d = deemed_served_deadline(datetime!(2026-10-23 10:00 UTC));
        assert_eq!(d, datetime!(2026-10-26 23:59:59 +1));
        assert_eq!(d.offset().whole_hours(), 1);
    }

    #[test]
    fn unknown_event_kind_is_corruption_naming_the_event() {
        let ev = EventIn {
            id: 7,
            kind: "teleported".into(),
            time: "2026-11-02T09:00:00Z".into(),
            payload: "{}".into(),
        };
        let err = project([Ok(ev)], OffsetDateTime::UNIX_EPOCH).unwrap_err();
        assert!(err.to_string().contains("event 7"), "{err}");
    }
}
