//! What the milter answers: per stage a verdict, at end of message one result.

use demail_policy::Refusal;

use crate::header::Edit;
use crate::text::smtp_text;

/// The answer to one milter stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// No more callbacks for this message (or, at connect, this connection), no changes.
    Accept,
    Reject(Reply),
    Tempfail,
    /// Accept the message but do not deliver it (evidence-only confirmations).
    Discard,
    /// Body stage: no more body chunks for this message (SMFIP_SKIP negotiated).
    Skip,
}

/// A permanent SMTP refusal: `code xcode text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: &'static str,
    pub xcode: String,
    pub text: String,
}

impl Reply {
    /// `code` for a policy refusal; a transient status class (4.x.x) gets 451 instead, since
    /// Postfix insists that reply code and enhanced status code agree.
    pub fn refusal(code: &'static str, refusal: &Refusal) -> Reply {
        let code = if refusal.status.starts_with('4') {
            "451"
        } else {
            code
        };
        Reply {
            code,
            xcode: refusal.status.to_string(),
            text: smtp_text(&refusal.to_string()),
        }
    }

    /// `552 5.3.4`: the message exceeds `[gateway] max_message_size`.
    pub fn too_large(limit: u64) -> Reply {
        let mib = limit as f64 / (1024.0 * 1024.0);
        Reply {
            code: "552",
            xcode: "5.3.4".into(),
            text: smtp_text(&format!(
                "Die Nachricht ist zu groß: eine De-Mail darf höchstens {limit} Bytes \
                 ({mib:.1} MiB) haben / Message too large: a De-Mail may have at most \
                 {limit} bytes ({mib:.1} MiB)"
            )),
        }
    }
}

/// What end of message ends in, on every path.
#[derive(Debug)]
pub enum End {
    Reject(Reply),
    /// Apply these changes (and, for an outbound De-Mail, the account as envelope sender),
    /// then accept. Any evidence is already stored.
    Accept {
        sender: Option<String>,
        edits: Vec<Edit>,
    },
    /// Stored as evidence, not delivered (evidence-only confirmations).
    Discard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_follow_the_status_class() {
        let r = Refusal {
            status: "5.7.1",
            german: "Nicht erlaubt".into(),
            english: "Not allowed".into(),
        };
        let reply = Reply::refusal("550", &r);
        assert_eq!((reply.code, reply.xcode.as_str()), ("550", "5.7.1"));
        assert_eq!(reply.text, "Nicht erlaubt / Not allowed");
        let t = Refusal {
            status: "4.7.0",
            ..r
        };
        assert_eq!(Reply::refusal("550", &t).code, "451");
    }

    #[test]
    fn too_large_text() {
        let r = Reply::too_large(20 * 1024 * 1024);
        assert_eq!((r.code, r.xcode.as_str()), ("552", "5.3.4"));
        assert!(r.text.contains("20971520 Bytes (20.0 MiB)"), "{}", r.text);
        assert!(r.text.is_ascii());
    }
}
