//! End of message for mail to a poststelle address: verify every signature on the exact bytes
//! received, record the report with the message, and tell the clerk through header fields and
//! one subject tag. Only header fields change, so S/MIME signatures stay intact.

use std::sync::Arc;

use demail_evidence::NewQesCheck;
use demail_policy::{Config, Signature, SignatureOutcome, Signed, Tags, decisive_signature};
use demail_trust::{Indication, MailReport, SignatureReport};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::error::Error;
use crate::header::{Field, HeaderPlan, render_received, wire};
use crate::message::Message;
use crate::metrics::{Metrics, Verifier};
use crate::raw::Raw;
use crate::record::Evidence;
use crate::trust::Snapshots;
use crate::verdict::End;

/// The field we add per signature; incoming ones are renamed, never trusted.
pub const VALIDATION_FIELD: &str = "X-QES-Validation";

pub async fn finish(
    config: Arc<Config>,
    trust: Arc<Snapshots>,
    slots: Arc<Semaphore>,
    evidence: Arc<Evidence>,
    metrics: &Metrics,
    msg: Message,
) -> Result<End, Error> {
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
        return Ok(End::Accept {
            sender: None,
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

    let (signatures, seen) = judged(&report);
    let mut plan = HeaderPlan::new(&fields);
    let Some(decisive) = decisive_signature(&seen).map(|i| signatures[i]) else {
        metrics.verification(Verifier::Poststelle, Indication::NoSignatureFound);
        neutralise(&mut plan, &fields, &config.tags, None);
        return Ok(End::Accept {
            sender: None,
            edits: plan.edits(),
        });
    };

    let message_id = fields
        .iter()
        .find(|f| f.is("Message-ID"))
        .map(Field::text)
        .unwrap_or_default();
    metrics.verification(Verifier::Poststelle, decisive.indication);
    let json = serde_json::to_value(&report).map_err(|e| Error::Report(e.to_string()))?;
    let indication = decisive.indication.to_string();
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
    debug!(
        event = recorded.check().event_id,
        indication = %recorded.check().data.indication,
        qualification = %recorded.check().data.qualification,
        signatures = signatures.len(),
        "poststelle mail verified and recorded"
    );

    let tag = config.tags.for_signatures(&seen);
    neutralise(&mut plan, &fields, &config.tags, tag.as_deref());
    for s in &signatures {
        plan.append(VALIDATION_FIELD, wire(&s.header_value()));
    }
    Ok(End::Accept {
        sender: None,
        edits: plan.edits(),
    })
}

/// The signatures that count (a certificates-only CMS does not) and the policy's view of
/// each, index for index: the policy decides which one the record and the tag follow.
fn judged(report: &MailReport) -> (Vec<&SignatureReport>, Vec<Signature>) {
    let signatures: Vec<&SignatureReport> = report
        .signatures
        .iter()
        .filter(|s| s.indication != Indication::NoSignatureFound)
        .collect();
    let seen = signatures.iter().map(|s| signature(s)).collect();
    (signatures, seen)
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
        Indication::TotalPassed if s.is_qes() => SignatureOutcome::PassedQes,
        Indication::TotalPassed => SignatureOutcome::Passed,
    }
}

/// Renames the sender's `X-QES-*` fields to `X-Untrusted-QES-*` (and forged `X-de-mail-*`,
/// `X-DeMail-*` likewise: this is not the provider service), leaves one `Subject`, removes
/// every look-alike of our tags the sender put anywhere in it (a clerk must never see a tag
/// we did not set), and prepends `tag` (an empty tag adds nothing).
fn neutralise(plan: &mut HeaderPlan<'_>, fields: &[Field], tags: &Tags, tag: Option<&str>) {
    crate::vocabulary::rename(plan, fields, crate::vocabulary::is_untrusted);
    crate::vocabulary::set_subject(plan, fields, tags, tag);
}

#[cfg(test)]
mod tests {
    use super::*;
    use demail_trust::{Qualification, SignatureKind, SignedObject, TimeSource, ValidationModel};

    fn report(indication: Indication, qualification: Qualification) -> SignatureReport {
        SignatureReport {
            indication,
            sub_indication: None,
            qualification,
            qualification_note: None,
            certificate_claim: None,
            signer: None,
            signing_time: None,
            validation_time: OffsetDateTime::UNIX_EPOCH,
            validation_time_source: TimeSource::CurrentTime,
            model: ValidationModel::Chain,
            revocation: String::new(),
            signed: SignedObject {
                kind: SignatureKind::MultipartSigned,
                section: "1".into(),
                filename: None,
                content_type: None,
            },
            digest_algorithm: None,
            signature_algorithm: None,
            chain: Vec::new(),
            qc_statements: None,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The milter only maps: each trust result to one outcome, and the recorded indication is
    /// the policy's decisive signature's, which is trust's overall indication for every mix.
    #[test]
    fn the_record_follows_the_policys_decisive_signature() {
        use Indication::*;
        use Qualification::*;
        let kinds = [
            (TotalFailed, QeSig, SignatureOutcome::Failed),
            (
                Indeterminate,
                IndeterminateQeSig,
                SignatureOutcome::Indeterminate,
            ),
            (
                NoSignatureFound,
                NotApplicable,
                SignatureOutcome::Indeterminate,
            ),
            (TotalPassed, QeSig, SignatureOutcome::PassedQes),
            (TotalPassed, AdeSig, SignatureOutcome::Passed),
            (TotalPassed, QeSeal, SignatureOutcome::Passed),
        ];
        for (i, q, want) in kinds {
            assert_eq!(outcome(&report(i, q)), want, "{i} {q}");
        }
        // Every mix of up to three signatures.
        let mut mixes: Vec<Vec<usize>> = vec![vec![]];
        let mut last = mixes.clone();
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|m| (0..kinds.len()).map(move |k| [m.as_slice(), &[k]].concat()))
                .collect();
            mixes.extend(last.iter().cloned());
        }
        assert_eq!(mixes.len(), 1 + 6 + 36 + 216);
        for mix in mixes {
            let mail = MailReport {
                signatures: mix
                    .iter()
                    .map(|&k| report(kinds[k].0, kinds[k].1))
                    .collect(),
                notes: Vec::new(),
            };
            let (signatures, seen) = judged(&mail);
            let recorded =
                decisive_signature(&seen).map_or(NoSignatureFound, |d| signatures[d].indication);
            assert_eq!(recorded, mail.indication(), "{mix:?}");
        }
    }
}
