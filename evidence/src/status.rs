//! Per-recipient status: a projection (fold) of the immutable events of one private-id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chain::KIND_SUBMISSION;
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    pub recipient: String,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// Folds the events of one private-id, oldest first, into per-recipient status. A recipient
/// named twice in the envelope is listed once.
pub(crate) fn project<I>(events: I) -> Result<Vec<RecipientStatus>>
where
    I: IntoIterator<Item = Result<(i64, String, String)>>,
{
    let mut out: Vec<RecipientStatus> = Vec::new();
    for ev in events {
        let (id, kind, payload) = ev?;
        match kind.as_str() {
            KIND_SUBMISSION => {
                let s = submission::decode(id, &payload)?;
                for r in s.recipients {
                    if !out.iter().any(|o| o.recipient == r) {
                        out.push(RecipientStatus {
                            recipient: r,
                            status: Status::Submitted,
                            since: s.time,
                        });
                    }
                }
            }
            other => {
                return Err(Error::Corrupt(format!(
                    "event {id}: unknown kind {other:?}"
                )));
            }
        }
    }
    Ok(out)
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
    fn unknown_event_kind_is_corruption_naming_the_event() {
        let err = project([Ok((7, "teleported".to_string(), "{}".to_string()))]).unwrap_err();
        assert!(err.to_string().contains("event 7"), "{err}");
    }
}
