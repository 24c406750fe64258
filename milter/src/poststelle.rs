//! End of message for mail to a poststelle address: verify every signature on the exact bytes
//! received, record the report with the message, and tell the clerk through header fields and
//! one subject tag. Only header fields change, so S/MIME signatures stay intact.

use std::sync::Arc;

use demail_evidence::NewQesCheck;
use demail_policy::{Config, Signature, SignatureOutcome, Signed, Tags};
use demail_trust::{Indication, Qualification, SignatureReport};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::error::Error;
use crate::header::{Edit, Field, HeaderPlan, render_received};
use crate::outbound::wire;
use crate::raw::Raw;
use crate::record::Evidence;
use crate::session::Message;
use crate::trust::Snapshots;

/// The field we add per signature; incoming ones are renamed, never trusted.
pub const VALIDATION_FIELD: &str = "X-QES-Validation";

/// What the clerk is told at end of message.
#[derive(Debug)]
pub struct Annotation {
    pub edits: Vec<Edit>,
}

pub async fn finish(
    config: Arc<Config>,
    trust: Arc<Snapshots>,
    slots: Arc<Semaphore>,
    evidence: Arc<Evidence>,
    msg: Message,
) -> Result<Annotation, Error> {
    let Message {
        queue_id,
        recipients,
        fields,
        mut body,
        body_len,
        received_len,
        ..
    } = msg;
    let limit = config.gateway.max_message_size;
    if received_len > limit {
        // Bounded cost: a message this large is not read into memory for verification. The
        // clerk is told so; forged fields are still neutralised.
        warn!(limit, received_len, "poststelle mail too large to verify");
        let mut plan = HeaderPlan::new(&fields);
        neutralise(&mut plan, &fields, &config.tags, None);
        let note = format!("indication=NOT_CHECKED; reason=\"message larger than {limit} bytes\"");
        plan.append(VALIDATION_FIELD, wire(&note));
        return Ok(Annotation {
            edits: plan.edits(),
        });
    }

    let head = render_received(&fields);
    let cfg = Arc::clone(&config);
    let slot = crate::raw::slot(&slots, head.len() as u64 + body_len).await?;
    // Verification is CPU work and may read anchor files: off the async runtime.
    let (raw, report) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let _slot = slot;
        let snapshot = trust.get(&cfg)?;
        let raw = Raw::assemble(&head, &mut body, body_len)?;
        drop(body);
        let report = snapshot.verifier.verify_mail(raw.bytes());
        Ok((raw, report))
    })
    .await??;

    let signatures: Vec<&SignatureReport> = report
        .signatures
        .iter()
        .filter(|s| s.indication != Indication::NoSignatureFound)
        .collect();
    let mut plan = HeaderPlan::new(&fields);
    if signatures.is_empty() {
        neutralise(&mut plan, &fields, &config.tags, None);
        return Ok(Annotation {
            edits: plan.edits(),
        });
    }

    let decisive = decisive(&signatures);
    let message_id = fields
        .iter()
        .find(|f| f.is("Message-ID"))
        .map(Field::text)
        .unwrap_or_default();
    let json = serde_json::to_value(&report).map_err(|e| Error::Report(e.to_string()))?;
    let indication = report.indication().to_string();
    let qualification = decisive.qualification.to_string();
    let queue_id = queue_id.unwrap_or_default();
    let build = move |raw| NewQesCheck {
        raw,
        queue_id,
        recipients: recipients.into_iter().map(|r| r.address).collect(),
        message_id,
        report: json,
        indication,
        qualification,
        time: OffsetDateTime::now_utc(),
    };
    let recorded = evidence.record_qes(raw, build).await?;
    info!(
        event = recorded.check().event_id,
        indication = %recorded.check().data.indication,
        qualification = %recorded.check().data.qualification,
        signatures = signatures.len(),
        "poststelle mail verified and recorded"
    );

    let seen: Vec<Signature> = signatures.iter().map(|s| signature(s)).collect();
    let tag = config.tags.for_signatures(&seen);
    neutralise(&mut plan, &fields, &config.tags, tag.as_deref());
    for s in &signatures {
        plan.append(VALIDATION_FIELD, wire(&s.header_value()));
    }
    Ok(Annotation {
        edits: plan.edits(),
    })
}

/// The signature whose result the summary reports: a failed one first, then an
/// indeterminate one, then a QES, then any.
fn decisive<'a>(signatures: &[&'a SignatureReport]) -> &'a SignatureReport {
    let rank = |s: &SignatureReport| match s.indication {
        Indication::TotalFailed => 0,
        Indication::Indeterminate | Indication::NoSignatureFound => 1,
        Indication::TotalPassed if s.qualification == Qualification::QeSig => 2,
        Indication::TotalPassed => 3,
    };
    let mut best = signatures[0];
    for s in signatures {
        if rank(s) < rank(best) {
            best = s;
        }
    }
    best
}

/// The policy's view of one signature (the tag rules live in `demail_policy`): its result,
/// and whether it is the message's own or one on an attachment, by whom.
fn signature(s: &SignatureReport) -> Signature {
    let signed = if s.signed.covers_message() {
        Signed::Message
    } else {
        let signer = s.signer.as_ref().map_or_else(String::new, |x| {
            x.common_name.clone().unwrap_or_else(|| x.display())
        });
        Signed::Attachment { signer }
    };
    Signature {
        outcome: outcome(s),
        signed,
    }
}

fn outcome(s: &SignatureReport) -> SignatureOutcome {
    match s.indication {
        Indication::TotalFailed => SignatureOutcome::Failed,
        Indication::Indeterminate | Indication::NoSignatureFound => SignatureOutcome::Indeterminate,
        Indication::TotalPassed if s.qualification == Qualification::QeSig => {
            SignatureOutcome::PassedQes
        }
        Indication::TotalPassed => SignatureOutcome::Passed,
    }
}

/// Renames the sender's `X-QES-*` fields to `X-Untrusted-QES-*` (and forged `X-de-mail-*`,
/// `X-DeMail-*` likewise: this is not the provider service), leaves one `Subject`, removes
/// every look-alike of our tags the sender put anywhere in it (a clerk must never see a tag
/// we did not set), and prepends `tag` (an empty tag adds nothing).
fn neutralise(plan: &mut HeaderPlan<'_>, fields: &[Field], tags: &Tags, tag: Option<&str>) {
    crate::inbound::rename(plan, fields, crate::inbound::is_untrusted);
    crate::inbound::set_subject(plan, fields, tags, tag);
}
