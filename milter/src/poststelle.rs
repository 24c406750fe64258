//! End of message for mail to a poststelle address: verify every signature on the exact bytes
//! received, record the report with the message, and tell the clerk through header fields and
//! one subject tag. Only header fields change, so S/MIME signatures stay intact.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use demail_evidence::NewQesCheck;
use demail_policy::{Config, Revocation, Signature, SignatureOutcome, Signed, Tags};
use demail_trust::revocation::{self, RevocationMode};
use demail_trust::tl::TrustedLists;
use demail_trust::{
    Indication, Qualification, SignatureReport, ValidationModel, Verifier, VerifyOptions,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::error::Error;
use crate::header::{Edit, Field, HeaderPlan, render_received};
use crate::outbound::wire;
use crate::record::Evidence;
use crate::session::Message;

/// The field we add per signature; incoming ones are renamed, never trusted.
pub const VALIDATION_FIELD: &str = "X-QES-Validation";

/// One verifier per configuration: anchors are read and parsed once, and the verifier's
/// certificate and path caches live across messages.
#[derive(Default)]
pub struct Verifiers {
    current: Mutex<Option<(Arc<Config>, Arc<Verifier>)>>,
}

impl Verifiers {
    /// The verifier for `config`, built on first use after a (re)load. Blocking (file I/O).
    pub fn get(&self, config: &Arc<Config>) -> Result<Arc<Verifier>, Error> {
        let lock = || self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, v)) = lock().as_ref()
            && Arc::ptr_eq(c, config)
        {
            return Ok(Arc::clone(v));
        }
        // Built outside the lock: two messages racing after a reload may both build, which
        // costs time once but never blocks the others behind file I/O.
        let verifier = Arc::new(build(config)?);
        *lock() = Some((Arc::clone(config), Arc::clone(&verifier)));
        Ok(verifier)
    }
}

/// A verifier from `[trust]`: the anchors, the validation model, revocation and the imported
/// trusted lists.
fn build(config: &Config) -> Result<Verifier, Error> {
    let trust = &config.trust;
    let mut anchors = Vec::new();
    for path in &trust.anchors {
        let data =
            std::fs::read(path).map_err(|e| Error::Trust(format!("{}: {e}", path.display())))?;
        let certs = demail_trust::load_anchors(&data, &path.display().to_string())
            .map_err(|e| Error::Trust(e.to_string()))?;
        anchors.extend(certs);
    }
    let options = VerifyOptions {
        model: match trust.validation_model {
            demail_policy::ValidationModel::Chain => ValidationModel::Chain,
            demail_policy::ValidationModel::Shell => ValidationModel::Shell,
        },
        ..VerifyOptions::default()
    };
    let revocation = revocation::from_settings(
        match trust.revocation {
            Revocation::Ocsp => RevocationMode::Ocsp,
            Revocation::Crl => RevocationMode::Crl,
            Revocation::Off => RevocationMode::Off,
        },
        trust.ocsp_timeout,
        // The configuration contract names no CRL files yet.
        &[],
    );
    // What `demailctl tl import` stored (verified then); none stored gives no qualification.
    let lists =
        TrustedLists::load(&trust.trusted_lists).map_err(|e| Error::Trust(e.to_string()))?;
    Ok(Verifier::new(anchors, options)
        .map_err(|e| Error::Trust(e.to_string()))?
        .with_revocation(revocation)
        .with_qualification(Box::new(lists)))
}

/// What the clerk is told at end of message.
#[derive(Debug)]
pub struct Annotation {
    pub edits: Vec<Edit>,
}

pub async fn finish(
    config: Arc<Config>,
    verifiers: Arc<Verifiers>,
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
    // Verification is CPU work and may read anchor files: off the async runtime.
    let (raw, report) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let verifier = verifiers.get(&cfg)?;
        let mut raw = Vec::with_capacity(head.len() + body_len as usize);
        raw.extend_from_slice(&head);
        body.seek(SeekFrom::Start(0)).map_err(Error::Spool)?;
        body.read_to_end(&mut raw).map_err(Error::Spool)?;
        let report = verifier.verify_mail(&raw);
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
