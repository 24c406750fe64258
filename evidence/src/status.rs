//! Per-recipient status: a projection (fold) of the immutable events of one private-id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::berlin;
use crate::chain::{KIND_CONFIRMATION, KIND_PRUNE, KIND_QES_CHECK, KIND_SUBMISSION};
use crate::confirmation::{self, Confirmation, ConfirmationKind};
use crate::submission::{self, Submission};
use crate::{Error, Result};

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

/// The fold behind both projections: submissions and confirmations of one private-id, oldest
/// first.
#[derive(Default)]
struct Fold {
    out: Vec<Acc>,
    retrieve_requested: bool,
}

impl Fold {
    fn submission(&mut self, s: &Submission) {
        self.retrieve_requested |= s.options.iter().any(|o| o == "retrieve");
        for r in &s.recipients {
            if !self
                .out
                .iter()
                .any(|o| o.st.recipient.eq_ignore_ascii_case(r))
            {
                self.out.push(Acc {
                    st: RecipientStatus {
                        recipient: r.clone(),
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

    fn confirmation(&mut self, c: &Confirmation) {
        if !c.data.trusted {
            return;
        }
        let Some(acc) = self
            .out
            .iter_mut()
            .find(|o| o.st.recipient.eq_ignore_ascii_case(c.data.recipient.trim()))
        else {
            return;
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

    fn finish(self, now: OffsetDateTime) -> Vec<RecipientStatus> {
        let retrieve_requested = self.retrieve_requested;
        self.out
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
            .collect()
    }
}

/// Folds the events of one private-id, oldest first, into per-recipient status at `now`.
/// A recipient named twice in the envelope is listed once; recipients compare
/// case-insensitively. Untrusted confirmations and unknown recipients change nothing.
pub(crate) fn project<I>(events: I, now: OffsetDateTime) -> Result<Vec<RecipientStatus>>
where
    I: IntoIterator<Item = Result<EventIn>>,
{
    let mut fold = Fold::default();
    for ev in events {
        let ev = ev?;
        match ev.kind.as_str() {
            KIND_SUBMISSION => fold.submission(&submission::decode(ev.id, &ev.payload)?),
            KIND_CONFIRMATION => {
                fold.confirmation(&confirmation::decode(ev.id, &ev.time, &ev.payload)?)
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
    Ok(fold.finish(now))
}

/// The same projection as [`crate::Store::recipient_status_at`], over records a reader already
/// holds (say from [`crate::Store::events_after`]): `confirmations` are those matched to
/// `submission`'s private-id, oldest first; untrusted ones and those of other recipients change
/// nothing. No I/O, so a reader can re-evaluate `now` as often as it likes.
pub fn project_status<'a, I>(
    submission: &Submission,
    confirmations: I,
    now: OffsetDateTime,
) -> Vec<RecipientStatus>
where
    I: IntoIterator<Item = &'a Confirmation>,
{
    let mut fold = Fold::default();
    fold.submission(submission);
    for c in confirmations {
        if c.data.private_id.as_deref() == Some(submission.private_id.as_str()) {
            fold.confirmation(c);
        }
    }
    fold.finish(now)
}

/// A confirmation the sender asked for that has not arrived (yet) for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outstanding {
    Dispatch,
    Receipt,
    Retrieve,
}

/// What a recipient still lacks, by the options requested: a retrieval implies the receipt;
/// the Versandbestätigung is its own document. Nothing once failed or deemed served (final).
/// A recipient with anything outstanding is pending.
pub fn outstanding(options: &[String], st: &RecipientStatus) -> Vec<Outstanding> {
    let asked = |k: &str| options.iter().any(|o| o == k);
    let mut out = Vec::new();
    if st.status == Status::Failed || st.deemed_served {
        return out;
    }
    if asked("dispatch") && st.dispatched.is_none() {
        out.push(Outstanding::Dispatch);
    }
    if asked("receipt") && !matches!(st.status, Status::Received | Status::Retrieved) {
        out.push(Outstanding::Receipt);
    }
    if asked("retrieve") && st.status != Status::Retrieved {
        out.push(Outstanding::Retrieve);
    }
    out
}

/// The instant `t` in German civil time (CET/CEST), for dates shown to clerks.
pub fn german_time(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(berlin::offset_at(t))
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
