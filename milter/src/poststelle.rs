//! End of message for mail to a poststelle address: verify every signature on the exact bytes
//! received, record the report with the message, and tell the clerk through header fields and
//! one subject tag. Only header fields change, so S/MIME signatures stay intact.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use demail_evidence::NewQesCheck;
use demail_policy::{Config, Revocation, Signature, SignatureOutcome, Signed, Tags};
use demail_trust::revocation::{self, RevocationMode};
use demail_trust::tl::TrustedLists;
use demail_trust::{
    Indication, Qualification, SignatureReport, ValidationModel, Verifier, VerifyOptions,
};
use tempfile::SpooledTempFile;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::error::Error;
use crate::header::{Edit, Field, HeaderPlan, render_received};
use crate::outbound::wire;
use crate::record::Evidence;
use crate::session::{Message, SPOOL_IN_MEMORY};

/// The field we add per signature; incoming ones are renamed, never trusted.
pub const VALIDATION_FIELD: &str = "X-QES-Validation";

/// One verifier per configuration: anchors are read and parsed once, and the verifier's
/// certificate and path caches live across messages.
pub struct Verifiers {
    current: Mutex<Option<(Arc<Config>, Arc<Verifier>)>>,
    /// Slots for verifying messages beyond [`SPOOL_IN_MEMORY`]: one per core, since the work
    /// is CPU-bound anyway.
    large: Arc<Semaphore>,
}

impl Default for Verifiers {
    fn default() -> Verifiers {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Verifiers {
            current: Mutex::default(),
            large: Arc::new(Semaphore::new(cores)),
        }
    }
}

/// The message as received (header section as rendered, then the body), as the verifier and
/// the evidence need it: one contiguous byte string. Up to [`SPOOL_IN_MEMORY`] it is on the
/// heap; beyond, it is copied from the spool into an unlinked temporary file that is mapped
/// read-only, so its bytes live in the page cache (evictable, file-backed), not on the heap.
pub(crate) enum Raw {
    Memory(Vec<u8>),
    Mapped(Mapped),
}

impl Raw {
    fn assemble(head: &[u8], body: &mut SpooledTempFile, body_len: u64) -> Result<Raw, Error> {
        body.seek(SeekFrom::Start(0)).map_err(Error::Spool)?;
        let len = head.len() as u64 + body_len;
        if len <= SPOOL_IN_MEMORY as u64 {
            let mut raw = Vec::with_capacity(len as usize);
            raw.extend_from_slice(head);
            body.read_to_end(&mut raw).map_err(Error::Spool)?;
            return Ok(Raw::Memory(raw));
        }
        let mut file = tempfile::tempfile().map_err(Error::Spool)?;
        file.write_all(head).map_err(Error::Spool)?;
        std::io::copy(body, &mut file).map_err(Error::Spool)?;
        Mapped::new(file).map(Raw::Mapped)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Raw::Memory(v) => v,
            Raw::Mapped(m) => m.bytes(),
        }
    }
}

impl AsRef<[u8]> for Raw {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// A private read-only mapping of a whole file (never empty: it holds at least the header).
pub(crate) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    _file: std::fs::File,
}

// SAFETY: the mapping is read-only and owned by this value alone; the file is an unlinked
// temporary file nobody else can open or write.
unsafe impl Send for Mapped {}

impl Mapped {
    fn new(file: std::fs::File) -> Result<Mapped, Error> {
        let len = file.metadata().map_err(Error::Spool)?.len();
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l > 0)
            .ok_or(Error::State("spooled message has no mappable size"))?;
        // SAFETY: a fresh mapping of `len` bytes of an open file; the pointer is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Spool(std::io::Error::last_os_error()));
        }
        Ok(Mapped {
            ptr,
            len,
            _file: file,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives, and the file
        // behind it is not written any more.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
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
    // Its CA/QC services are anchors too, as on the provider path and in `demailctl qes`: a
    // QES whose CA is named only in the imported list must find its chain.
    let lists =
        TrustedLists::load(&trust.trusted_lists).map_err(|e| Error::Trust(e.to_string()))?;
    anchors.extend(lists.anchors());
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
    // A large message waits for one of a few verification slots: what parsing it costs on the
    // heap (decoded MIME parts) is then bounded by slots x max_message_size, however many
    // connections deliver at once.
    let slot = if head.len() as u64 + body_len > SPOOL_IN_MEMORY as u64 {
        Some(
            Arc::clone(&verifiers.large)
                .acquire_owned()
                .await
                .map_err(|_| Error::State("verification slots closed"))?,
        )
    } else {
        None
    };
    // Verification is CPU work and may read anchor files: off the async runtime.
    let (raw, report) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let _slot = slot;
        let verifier = verifiers.get(&cfg)?;
        let raw = Raw::assemble(&head, &mut body, body_len)?;
        drop(body);
        let report = verifier.verify_mail(raw.bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(body: &[u8]) -> SpooledTempFile {
        let mut s = SpooledTempFile::new(SPOOL_IN_MEMORY);
        // In pieces, as the body callback writes it.
        for chunk in body.chunks(65_535) {
            s.write_all(chunk).unwrap();
        }
        s
    }

    /// The bytes the verifier sees are head + body exactly, on either side of the threshold;
    /// beyond it they are not on the heap.
    #[test]
    fn raw_is_head_and_body_in_memory_or_mapped() {
        let head = b"From: a@example.org\r\nSubject: x\r\n\r\n".to_vec();
        let limit = SPOOL_IN_MEMORY - head.len();
        for (body_len, mapped) in [
            (0, false),
            (1, false),
            (limit, false),
            (limit + 1, true),
            (3 * SPOOL_IN_MEMORY + 7, true),
        ] {
            let body: Vec<u8> = (0..body_len).map(|i| (i % 251) as u8).collect();
            let mut s = spool(&body);
            let raw = Raw::assemble(&head, &mut s, body_len as u64).unwrap();
            assert_eq!(matches!(raw, Raw::Mapped(_)), mapped, "body of {body_len}");
            let bytes = raw.bytes();
            assert_eq!(bytes.len(), head.len() + body_len);
            assert_eq!(&bytes[..head.len()], head.as_slice());
            assert!(bytes[head.len()..] == body[..], "body of {body_len} intact");
            // A raw that moved to another thread (verification, then the evidence) still reads.
            let len = std::thread::spawn(move || raw.bytes().len())
                .join()
                .unwrap();
            assert_eq!(len, head.len() + body_len);
        }
    }
}
