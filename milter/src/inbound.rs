//! Inbound mail. From the provider service: verify `X-de-mail-integrity` and the provider's
//! qualified certificate, tell the clerk (`X-DeMail-Verified`, the authoritative subject tag),
//! and keep confirmations and notifications as evidence, matched to the sent De-Mail. From
//! anywhere else: rename every field that would forge the provider's or our vocabulary, and
//! count nothing.

pub(crate) mod statement;

use std::sync::Arc;

use demail_evidence::matching::{self, Claims, PRIVATE_ID_FIELDS};
use demail_evidence::{ConfirmationKind, NewConfirmation};
use demail_policy::{Config, DeliverConfirmations};
use demail_trust::Indication;
use demail_trust::integrity::{QualifiedIntegrityReport, verify_with};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{debug, warn};

use crate::error::Error;
use crate::header::{Field, HeaderPlan, render_received, wire};
use crate::message::{Message, TlsClient};
use crate::metrics::{Metrics, Verifier};
use crate::raw::Raw;
use crate::record::Evidence;
use crate::text::decode_subject;
use crate::trust::Snapshots;
use crate::verdict::End;
use crate::vocabulary::{rename, set_subject};
use statement::Statement;

pub const VERIFIED_FIELD: &str = "X-DeMail-Verified";
pub const CONFIRMATION_FIELD: &str = "X-DeMail-Confirmation";

/// Longest quoted value we write into a field (values come from certificates and mails).
const MAX_QUOTED: usize = 200;

/// What the provider's header fields say, read once.
struct Facts {
    kind: Option<ConfirmationKind>,
    authoritative: bool,
    private_ids: Vec<String>,
    provider_message_id: Option<String>,
    subject: String,
}

impl Facts {
    fn read(fields: &[Field]) -> Facts {
        // TR-01201: the topmost instance of a field counts.
        let top = |name: &str| fields.iter().find(|f| f.is(name)).map(Field::text);
        let kind = top("X-de-mail-message-type").and_then(|t| {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            match t.to_ascii_lowercase().as_str() {
                "confirmation of dispatch" => Some(ConfirmationKind::Dispatch),
                "confirmation of receipt" => Some(ConfirmationKind::Receipt),
                "confirmation of retrieve" => Some(ConfirmationKind::Retrieve),
                "notification" => Some(ConfirmationKind::Notification(notification_type(top(
                    "X-de-mail-notification-type",
                )))),
                _ => None,
            }
        });
        let private_ids = PRIVATE_ID_FIELDS
            .iter()
            .filter_map(|n| top(n))
            .filter(|v| !v.is_empty())
            .collect();
        Facts {
            kind,
            // Option values are exactly `yes` / `no` (PVD_IO §3.1).
            authoritative: top("X-de-mail-authoritative").as_deref() == Some("yes"),
            private_ids,
            provider_message_id: top("X-de-mail-message-id").filter(|v| !v.is_empty()),
            subject: fields
                .iter()
                .find(|f| f.is("Subject"))
                .map(|f| decode_subject(&f.value))
                .unwrap_or_default(),
        }
    }
}

/// `X-de-mail-notification-type` as a token (the evidence refuses spaces); `other` if absent.
fn notification_type(value: Option<String>) -> String {
    let t: String = value
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(64)
        .collect();
    if t.is_empty() { "other".into() } else { t }
}

/// What was recorded for a confirmation.
#[derive(Debug)]
struct Recorded {
    kind: ConfirmationKind,
    private_id: Option<String>,
    recipient: String,
}

impl Recorded {
    /// `dispatch|receipt|retrieve|notification; ref=<private-id>; recipient=<addr>;
    /// matched=yes|no`; `ref` and `recipient` are left out when unknown.
    fn header_value(&self) -> String {
        let kind = match &self.kind {
            ConfirmationKind::Dispatch => "dispatch",
            ConfirmationKind::Receipt => "receipt",
            ConfirmationKind::Retrieve => "retrieve",
            ConfirmationKind::Notification(_) => "notification",
        };
        let mut v = kind.to_string();
        if let Some(p) = &self.private_id {
            v.push_str(&format!("; ref={}", token(p)));
        }
        if !self.recipient.is_empty() {
            v.push_str(&format!("; recipient={}", token(&self.recipient)));
        }
        let matched = if self.private_id.is_some() {
            "yes"
        } else {
            "no"
        };
        v.push_str(&format!("; matched={matched}"));
        v
    }
}

/// A value that must stay one token in our fields.
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, ';' | '"' | '\\'))
        .take(MAX_QUOTED * 5)
        .collect()
}

/// A quoted-string, `"` and `\` escaped, control characters dropped, bounded length.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars().filter(|c| !c.is_control()).take(MAX_QUOTED) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `pass|fail|none; signer="..."; qualified=yes|no; reason="..."`: pass only for
/// TOTAL_PASSED, none when the message carries no integrity field; INDETERMINATE (e.g. no
/// path to a trusted anchor, only hashed) is a fail whose reason names the indication.
fn verified_value(r: &QualifiedIntegrityReport) -> String {
    let verdict = match r.indication {
        Indication::TotalPassed => "pass",
        Indication::NoSignatureFound => "none",
        Indication::TotalFailed | Indication::Indeterminate => "fail",
    };
    let mut v = verdict.to_string();
    if let Some(s) = &r.integrity.signer_subject {
        v.push_str(&format!("; signer={}", quoted(s)));
    }
    v.push_str(if r.is_qes() {
        "; qualified=yes"
    } else {
        "; qualified=no"
    });
    let reason = match (r.indication, r.sub_indication, &r.reason) {
        (Indication::TotalPassed, ..) => None,
        (i, Some(sub), Some(text)) => Some(format!("{i}/{sub}: {text}")),
        (i, Some(sub), None) => Some(format!("{i}/{sub}")),
        (_, None, Some(text)) => Some(text.clone()),
        (i, None, None) => Some(i.to_string()),
    };
    if let Some(reason) = reason {
        v.push_str(&format!("; reason={}", quoted(&reason)));
    }
    v
}

/// End of a message on the provider service.
pub async fn finish(
    config: Arc<Config>,
    evidence: Arc<Evidence>,
    trust: Arc<Snapshots>,
    slots: Arc<tokio::sync::Semaphore>,
    metrics: &Metrics,
    msg: Message,
    private_id: &mut Option<String>,
) -> Result<End, Error> {
    let Message {
        queue_id,
        recipients,
        fields,
        mut body,
        body_len,
        received_len,
        tls_client,
        ..
    } = msg;
    let mut plan = HeaderPlan::new(&fields);
    // The provider sets X-de-mail-*; our own vocabulary is never its to set.
    rename(&mut plan, &fields, |f| {
        f.has_prefix("X-DeMail-") || f.has_prefix("X-QES-")
    });
    let limit = config.gateway.max_message_size;
    if received_len > limit {
        // Bounded cost: not read into memory; the clerk is told, nothing is counted.
        warn!(limit, received_len, "provider message too large to verify");
        set_subject(&mut plan, &fields, &config.tags, None);
        let note = format!(
            "none; qualified=no; reason=\"message larger than {limit} bytes: not verified\""
        );
        plan.append(VERIFIED_FIELD, wire(&note));
        return Ok(End::Accept {
            sender: None,
            edits: plan.edits(),
        });
    }

    let facts = Facts::read(&fields);
    let counts =
        matching::decision_field_counts(|name| fields.iter().filter(|f| f.is(name)).count());
    let accounts: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
    let head = render_received(&fields);
    let cfg = Arc::clone(&config);
    let queue_id = queue_id.unwrap_or_default();
    let slot = crate::raw::slot(&slots, head.len() as u64 + body_len).await?;
    // Verification is CPU work, evidence is file and database I/O: off the async runtime.
    let (report, facts, recorded) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let _slot = slot;
        let snapshot = trust.get(&cfg)?;
        // Bounded in memory like poststelle mail: beyond the spool, a mapped temporary file.
        let raw = Raw::assemble(&head, &mut body, body_len)?;
        drop(body);
        let report = verify_with(raw.bytes(), &snapshot.provider.validation);
        let recorded = match &facts.kind {
            Some(kind) => Some(record(
                &evidence,
                raw.bytes(),
                kind.clone(),
                &facts,
                &report,
                &Received {
                    service: &cfg.inbound.provider_service,
                    tls_client: tls_client.as_ref(),
                    queue_id: &queue_id,
                    accounts: &accounts,
                    decision_fields: &counts,
                },
            )?),
            None => None,
        };
        Ok((report, facts, recorded))
    })
    .await??;

    // The tag replaces the written form: only a qualified, verified signature that covers the
    // authoritative field itself earns it.
    let covers_option = report
        .integrity
        .signed_fields
        .iter()
        .any(|n| n.eq_ignore_ascii_case("X-de-mail-authoritative"));
    let tag = config
        .tags
        .for_demail(facts.authoritative, report.is_qes(), covers_option);
    set_subject(&mut plan, &fields, &config.tags, tag);
    plan.append(VERIFIED_FIELD, wire(&verified_value(&report)));
    metrics.verification(Verifier::Provider, report.indication);
    if let Some(r) = &recorded {
        metrics.confirmation(&r.kind, r.private_id.is_some());
    }
    // The De-Mail a confirmation is about, or the private-id an inbound De-Mail carries.
    *private_id = match &recorded {
        Some(r) => r.private_id.clone(),
        None => facts.private_ids.first().cloned(),
    };
    debug!(
        indication = %report.indication,
        qualification = %report.qualification,
        authoritative = tag.is_some(),
        "provider message verified"
    );
    let discard = match &recorded {
        Some(r) => {
            plan.append(CONFIRMATION_FIELD, wire(&r.header_value()));
            config.inbound.deliver_confirmations == DeliverConfirmations::EvidenceOnly
        }
        None => false,
    };
    Ok(if discard {
        End::Discard
    } else {
        End::Accept {
            sender: None,
            edits: plan.edits(),
        }
    })
}

/// Where a message came from, for the evidence.
struct Received<'a> {
    service: &'a str,
    tls_client: Option<&'a TlsClient>,
    queue_id: &'a str,
    /// The De-Mail accounts it was delivered to (RCPT on the provider service).
    accounts: &'a [String],
    /// How often each decision field occurs in the header.
    decision_fields: &'a [(&'static str, usize)],
}

/// Stores the raw message, its XML and PDF as blobs, matches it to the sent De-Mail and
/// records it (all fsynced) with the verification report. Blocking.
fn record(
    evidence: &Evidence,
    raw: &[u8],
    kind: ConfirmationKind,
    facts: &Facts,
    report: &QualifiedIntegrityReport,
    received: &Received<'_>,
) -> Result<Recorded, Error> {
    let parts = statement::find(raw);
    let stated = parts.xml.as_ref().map(|(_, s)| s);
    let claims = claims(facts, stated);
    // Only a qualified signature of a pinned provider seal that verifies (key usage and
    // revocation included) and covers every field the decision reads changes a status; the
    // rest is kept, counting for nothing.
    let xml_private_ids: Vec<&str> = stated
        .map(|s| PRIVATE_ID_FIELDS.iter().flat_map(|n| s.meta(n)).collect())
        .unwrap_or_default();
    let binding = matching::binding_problems(
        &report.integrity.signed_fields,
        received.decision_fields,
        &facts.private_ids,
        &xml_private_ids,
    );
    let trusted = report.is_qes() && binding.is_empty();
    if report.is_qes() && !binding.is_empty() {
        warn!(problems = ?binding, "verified provider message does not bind its decision fields: untrusted");
    }
    let stated_time = stated
        .and_then(|s| s.time.as_deref())
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let verification = serde_json::to_value(report).map_err(|e| Error::Report(e.to_string()))?;
    let (confirmation, found) = evidence.record_confirmation(
        raw,
        parts.xml.as_ref().map(|(b, _)| &b[..]),
        parts.pdf.as_deref(),
        &claims,
        received.accounts,
        |blobs, found, recipient| NewConfirmation {
            kind,
            private_id: found.submission.as_ref().map(|s| s.private_id.clone()),
            recipient,
            provider_message_id: facts.provider_message_id.clone(),
            raw: blobs.raw,
            xml: blobs.xml,
            pdf: blobs.pdf,
            report: json!({
                "verification": verification,
                "trusted": trusted,
                "binding_problems": binding,
                "received": {
                    "service": received.service,
                    "queue_id": received.queue_id,
                    "tls_client_subject": received.tls_client.map(|t| &t.subject),
                    "tls_client_issuer": received.tls_client.and_then(|t| t.issuer.as_ref()),
                },
                "match": {
                    "method": found.method.map(|m| m.as_str()),
                    "claimed_private_ids": claims.private_ids,
                    "hash": found.hash.as_str(),
                },
                "statement": stated.map(|s| json!({
                    "root": s.root.map(|r| r.name()),
                    "sender": s.sender,
                    "time": s.time,
                    "delivery_time": s.delivery_time,
                    "hash": s.hash,
                })),
                "problems": parts.problems,
            }),
            indication: report.indication.to_string(),
            stated_time,
            trusted,
        },
    )?;
    let c = confirmation.confirmation();
    debug!(
        event = c.event_id,
        kind = %c.data.kind.label(),
        private_id = c.data.private_id.as_deref().unwrap_or("-"),
        recipient = %c.data.recipient,
        method = found.method.map_or("none", |m| m.as_str()),
        trusted = c.data.trusted,
        new = confirmation.is_inserted(),
        "confirmation recorded"
    );
    Ok(Recorded {
        kind: c.data.kind.clone(),
        private_id: c.data.private_id.clone(),
        recipient: c.data.recipient.clone(),
    })
}

/// The matching input from the header fields and the XML.
fn claims(facts: &Facts, stated: Option<&Statement>) -> Claims {
    let mut private_ids = facts.private_ids.clone();
    let mut message_ids = Vec::new();
    let mut addresses = Vec::new();
    let mut text_addresses = Vec::new();
    let mut subject = None;
    if let Some(s) = stated {
        for name in PRIVATE_ID_FIELDS {
            for v in s.meta(name) {
                if !v.is_empty() && !private_ids.iter().any(|p| p == v) {
                    private_ids.push(v.to_string());
                }
            }
        }
        message_ids.extend(s.meta("Message-ID").map(str::to_string));
        for name in ["X-de-mail-actual-recipient", "X-de-mail-chosen-recipient"] {
            for v in s.meta(name) {
                for a in matching::addresses(v) {
                    if !addresses.contains(&a) {
                        addresses.push(a);
                    }
                }
            }
        }
        for t in [&s.text, &s.subject].into_iter().flatten() {
            text_addresses.extend(matching::addresses(t));
        }
        subject = s
            .meta("Subject")
            .next()
            .map(|v| decode_subject(format!(" {v}").as_bytes()));
    }
    let subject = subject.or_else(|| {
        let original = strip_confirmation_title(&facts.subject);
        (!original.is_empty()).then(|| original.to_string())
    });
    Claims {
        private_ids,
        message_ids,
        hash: stated.and_then(|s| s.hash.clone()),
        subject,
        addresses,
        text_addresses,
    }
}

/// `*Versandbestätigung* Bescheid` -> `Bescheid` (PVD_FU: the title between asterisks).
fn strip_confirmation_title(subject: &str) -> &str {
    let s = subject.trim();
    if let Some(rest) = s.strip_prefix('*')
        && let Some((_, after)) = rest.split_once('*')
    {
        return after.trim();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_take_the_topmost_field() {
        let fields = vec![
            Field::new("X-de-mail-message-type", " confirmation  of\n dispatch"),
            Field::new("X-de-mail-message-type", " notification"),
            Field::new("X-de-mail-privat-id", " 01X.stadt"),
            Field::new("X-de-mail-authoritative", " Yes"),
            Field::new("Subject", " *Versandbestätigung* Bescheid"),
        ];
        let f = Facts::read(&fields);
        assert_eq!(f.kind, Some(ConfirmationKind::Dispatch));
        assert_eq!(f.private_ids, ["01X.stadt"]);
        assert!(!f.authoritative, "option values are case-sensitive");
        assert_eq!(strip_confirmation_title(&f.subject), "Bescheid");
        let n = Facts::read(&[Field::new("X-de-mail-message-type", " notification")]);
        assert_eq!(n.kind, Some(ConfirmationKind::Notification("other".into())));
    }

    #[test]
    fn confirmation_field_leaves_out_what_is_unknown() {
        let r = Recorded {
            kind: ConfirmationKind::Receipt,
            private_id: Some("01X.stadt".into()),
            recipient: "b@x.de-mail.de".into(),
        };
        assert_eq!(
            r.header_value(),
            "receipt; ref=01X.stadt; recipient=b@x.de-mail.de; matched=yes"
        );
        let u = Recorded {
            kind: ConfirmationKind::Notification("unknown-recipient".into()),
            private_id: None,
            recipient: String::new(),
        };
        assert_eq!(u.header_value(), "notification; matched=no");
    }
}
