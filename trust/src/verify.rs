//! Validation of one CMS SignedData, signer by signer, in the order of EN 319 102-1: format,
//! signing certificate identification, certification path (with revocation), cryptographic
//! verification, then signature acceptance (algorithms, signing time, mail constraints).

use std::borrow::Cow;
use std::cell::RefCell;

use std::ffi::c_int;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::hash::hash;
use openssl::stack::{Stack, StackRef};
use openssl::x509::X509;
use time::{Duration, OffsetDateTime};

use crate::attrs::{self, SignedAttrValues};
use crate::cert::{self, Cert};
use crate::chain::{self, PathRequest};
use crate::cms::{self, SignedData, SignerId, SignerInfo};
use crate::finding::{self, Finding};
use crate::mime::{Content, MailContext};
use crate::qualify::{self, CertQualification, Qualification};
use crate::report::{
    Indication, SignatureKind, SignatureReport, SignedObject, Signer, SubIndication, TimeSource,
};
use crate::revocation::RevocationStatus;
use crate::{Verifier, algo, oid};

/// Clock skew we forgive a signer's claimed signing time.
const FUTURE_SKEW: Duration = Duration::minutes(5);

/// The bytes a signature covers, once located.
enum Signed<'a> {
    Bytes(Cow<'a, [u8]>, bool),
    Missing(Finding),
}

impl Verifier {
    /// Validates every signer of one CMS blob found in a mail or given as a file.
    pub(crate) fn verify_cms(
        &self,
        cms_der: Result<&[u8], &str>,
        content: &Content<'_>,
        signed: &SignedObject,
        mail: Option<&MailContext>,
    ) -> Vec<SignatureReport> {
        let der = match cms_der {
            Ok(d) => d,
            Err(e) => return vec![self.bare(signed, SubIndication::FormatFailure, e)],
        };
        let sd = match cms::parse_signed_data(der) {
            Ok(sd) => sd,
            Err(e) => {
                let msg = format!("malformed CMS SignedData: {e}");
                return vec![self.bare(signed, SubIndication::FormatFailure, &msg)];
            }
        };
        // OpenSSL must accept the structure too, so that no signature is judged on a
        // SignedData that it and we read differently.
        let for_openssl = sd.for_openssl(None).unwrap_or_default();
        let parsed = match CmsContentInfo::from_der(&for_openssl) {
            Ok(ci) => RefCell::new(Some(ci)),
            Err(e) => {
                let msg = format!(
                    "OpenSSL cannot parse the CMS structure: {}",
                    crate::openssl_reasons(&e)
                );
                return vec![self.bare(signed, SubIndication::FormatFailure, &msg)];
            }
        };
        if sd.signers.is_empty() {
            let mut r = self.bare(
                signed,
                SubIndication::SignedDataNotFound,
                "a SignedData without any SignerInfo (certificates only)",
            );
            r.indication = Indication::NoSignatureFound;
            r.sub_indication = None;
            return vec![r];
        }
        let located = locate(&sd, content, signed);
        let mut certs = Vec::new();
        let mut warnings = Vec::new();
        if sd.trailing > 0 {
            warnings.push(format!(
                "{} bytes after the CMS structure were ignored (not signed)",
                sd.trailing
            ));
        }
        for c in &sd.certificates {
            match self.cert_cache.parse(c) {
                Ok(c) => certs.push(c),
                Err(e) => {
                    warnings.push(format!("a certificate in the signature is unreadable: {e}"))
                }
            }
        }
        (0..sd.signers.len())
            .map(|i| {
                let job = Job {
                    parsed: &parsed,
                    detached: matches!(content, Content::Detached(_)),
                    sd: &sd,
                    index: i,
                    certs: &certs,
                    signed: &located,
                    object: signed,
                    mail,
                };
                let mut r = self.verify_signer(&job);
                r.warnings.splice(0..0, warnings.iter().cloned());
                r
            })
            .collect()
    }

    fn bare(&self, signed: &SignedObject, sub: SubIndication, msg: &str) -> SignatureReport {
        let now = self.now();
        let indication = sub.indication();
        SignatureReport {
            indication,
            sub_indication: Some(sub),
            qualification: qualify::signature_qualification(indication, None),
            qualification_note: None,
            certificate_claim: None,
            signer: None,
            signing_time: None,
            validation_time: self.options.at.unwrap_or(now),
            validation_time_source: if self.options.at.is_some() {
                TimeSource::Given
            } else {
                TimeSource::CurrentTime
            },
            model: self.options.model,
            revocation: self.revocation.name().to_string(),
            signed: signed.clone(),
            digest_algorithm: None,
            signature_algorithm: None,
            chain: Vec::new(),
            qc_statements: None,
            errors: vec![msg.to_string()],
            warnings: Vec::new(),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.options.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    fn verify_signer(&self, job: &Job<'_>) -> SignatureReport {
        let signer = &job.sd.signers[job.index];
        let mut findings = Vec::new();
        let mut warnings = Vec::new();
        if let Signed::Missing(f) = job.signed {
            findings.push(f.clone());
        }
        if signer.has_unsigned_attrs {
            warnings.push(
                "unsigned attributes (timestamps, validation data) are present but not \
                 evaluated yet"
                    .to_string(),
            );
        }
        if let Signed::Bytes(_, true) = job.signed {
            warnings.push(
                "the SignedData also carries content of its own; the visible part was verified"
                    .to_string(),
            );
        }
        let values = signed_attr_values(job.sd, signer, &mut findings);
        let signing_time = values.as_ref().and_then(|v| v.signing_time);
        let identified = self.identify(signer, job.certs, values.as_ref());
        let signer_cert = match identified {
            Ok(c) => Some(c),
            Err(f) => {
                findings.push(f);
                None
            }
        };
        let now = self.now();
        let (at, source) = match (self.options.at, signing_time) {
            (Some(t), _) => (t, TimeSource::Given),
            (None, Some(t)) => (t, TimeSource::SigningTime),
            (None, None) => (now, TimeSource::CurrentTime),
        };
        let path = match &signer_cert {
            Some(leaf) => {
                let outcome = chain::validate(&PathRequest {
                    leaf,
                    untrusted: job.certs,
                    anchors: &self.anchors,
                    anchor_certs: &self.anchor_certs,
                    cache: &self.cert_cache,
                    paths: &self.path_cache,
                    model: self.options.model,
                    at,
                    source,
                    now,
                });
                findings.extend(outcome.findings);
                self.revocation_findings(&outcome.path, at, &mut findings, &mut warnings);
                outcome.path
            }
            None => Vec::new(),
        };
        if let Signed::Bytes(content, _) = job.signed {
            let crypto = match &signer_cert {
                Some(c) => self.crypto(job, c, content, values.as_ref()),
                None => digest_mismatch(signer, content, values.as_ref()),
            };
            findings.extend(crypto);
        }
        self.acceptance(
            signer,
            signer_cert.as_ref(),
            &path,
            signing_time,
            &mut findings,
        );
        if let (Some(mail), Some(cert)) = (job.mail, &signer_cert) {
            self.mail_constraints(mail, cert, signing_time, &mut findings, &mut warnings);
        }
        let (indication, sub_indication) = finding::decide(&findings);
        let x509_path: Vec<_> = path.iter().map(|c| c.x509.clone()).collect();
        let confirmed = if path.is_empty() {
            None
        } else {
            self.qualification.certificate_qualification(&x509_path, at)
        };
        let qc = signer_cert.as_ref().and_then(|c| match c.qc_statements() {
            Ok(qc) => qc,
            Err(e) => {
                warnings.push(format!("unreadable qcStatements: {e}"));
                None
            }
        });
        let claim = qc.as_ref().map(|q| {
            qualify::signature_qualification(indication, Some(CertQualification::claimed_by(q)))
        });
        SignatureReport {
            indication,
            sub_indication,
            qualification: qualify::signature_qualification(indication, confirmed),
            qualification_note: confirmed.is_none().then(|| qualification_note(claim)),
            certificate_claim: claim,
            signer: signer_cert.as_ref().map(signer_of),
            signing_time,
            validation_time: at,
            validation_time_source: source,
            model: self.options.model,
            revocation: self.revocation.name().to_string(),
            signed: job.object.clone(),
            digest_algorithm: Some(oid::name(&signer.digest_algorithm.oid)),
            signature_algorithm: Some(oid::name(&signer.signature_algorithm.oid)),
            chain: path.iter().map(Cert::summary).collect(),
            qc_statements: qc,
            errors: findings.into_iter().map(|f| f.message).collect(),
            warnings,
        }
    }

    /// The signer's certificate: the one certificate matching the SignerIdentifier, confirmed
    /// by the ESS signing-certificate(-v2) reference when the signer included one.
    fn identify(
        &self,
        signer: &SignerInfo<'_>,
        certs: &[Cert],
        values: Option<&SignedAttrValues>,
    ) -> Result<Cert, Finding> {
        let mut matching: Vec<&Cert> = Vec::new();
        for c in certs.iter().chain(self.anchor_certs.iter()) {
            if c.matches(&signer.sid) && !matching.iter().any(|m| m.der == c.der) {
                matching.push(c);
            }
        }
        let cert = match matching.as_slice() {
            [one] => *one,
            [] => {
                return Err(Finding::new(
                    SubIndication::NoSigningCertificateFound,
                    format!(
                        "the signer's certificate ({}) is neither in the signature nor an anchor",
                        describe_sid(&signer.sid)
                    ),
                ));
            }
            more => {
                return Err(Finding::new(
                    SubIndication::NoSigningCertificateFound,
                    format!(
                        "{} different certificates match the signer identifier ({})",
                        more.len(),
                        describe_sid(&signer.sid)
                    ),
                ));
            }
        };
        for ess in values.map_or(&[][..], |v| &v.signing_certificate[..]) {
            let hash_ok = cert.digest(&ess.hash_algorithm).as_deref() == Some(&ess.hash[..]);
            let serial_ok = ess.serial.as_ref().is_none_or(|s| *s == cert.serial);
            if !hash_ok || !serial_ok {
                return Err(Finding::new(
                    SubIndication::NoSigningCertificateFound,
                    format!(
                        "the signing-certificate{} attribute references another certificate \
                         than {:?}, which the signer identifier names",
                        if ess.version == 2 { "-v2" } else { "" },
                        cert.display_name()
                    ),
                ));
            }
        }
        Ok(cert.clone())
    }

    fn revocation_findings(
        &self,
        path: &[Cert],
        at: OffsetDateTime,
        findings: &mut Vec<Finding>,
        warnings: &mut Vec<String>,
    ) {
        // Only a path that reached a trust anchor is worth asking about; and a stranger's
        // certificate must not make the gateway contact the URLs it names.
        let anchored = path.last().is_some_and(|last| {
            self.anchor_certs
                .iter()
                .any(|a| a.fingerprint == last.fingerprint)
        });
        if !anchored {
            return;
        }
        for (i, pair) in path.windows(2).enumerate() {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let who = cert.display_name();
            match self.revocation.check(&cert.x509, &issuer.x509, at) {
                RevocationStatus::NotChecked | RevocationStatus::Good { .. } => {}
                RevocationStatus::Unknown { reason } => findings.push(Finding::new(
                    SubIndication::TryLater,
                    format!("revocation status of {who:?} unknown: {reason}"),
                )),
                RevocationStatus::Revoked {
                    time,
                    reason,
                    source,
                } => {
                    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    let msg = format!(
                        "{who:?} revoked at {}{why} according to {source}",
                        crate::format_time(time)
                    );
                    findings.push(if i > 0 {
                        Finding::new(SubIndication::RevokedCaNoPoe, msg)
                    } else if time <= at {
                        Finding::with(Indication::TotalFailed, SubIndication::Revoked, msg)
                    } else {
                        Finding::new(SubIndication::RevokedNoPoe, msg)
                    });
                }
            }
        }
        if self.revocation.name() == "off" && path.len() > 1 {
            warnings.push("revocation not checked (switched off)".to_string());
        }
    }

    /// OpenSSL CMS verification of this one signer against the exact bytes (no
    /// canonicalisation here: the caller prepared them). On failure our own digest
    /// comparison tells a changed content (HASH_FAILURE) from a bad signature value.
    fn crypto(
        &self,
        job: &Job<'_>,
        signer_cert: &Cert,
        content: &[u8],
        values: Option<&SignedAttrValues>,
    ) -> Option<Finding> {
        let reuse = if job.sd.signers.len() == 1 {
            job.parsed.borrow_mut().take()
        } else {
            None
        };
        let result = (|| {
            let mut ci = match reuse {
                Some(ci) => ci,
                None => {
                    let single = job.sd.for_openssl(Some(job.index)).unwrap_or_default();
                    CmsContentInfo::from_der(&single)?
                }
            };
            let mut stack = Stack::new()?;
            stack.push(signer_cert.x509.clone())?;
            let flags =
                CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY | CMSOptions::NOINTERN;
            cms_verify(&mut ci, &stack, job.detached.then_some(content), flags)
        })();
        let err = result.err()?;
        let signer = &job.sd.signers[job.index];
        digest_mismatch(signer, content, values).or_else(|| {
            Some(Finding::new(
                SubIndication::SigCryptoFailure,
                format!(
                    "the signature value does not verify with the key of {:?} ({})",
                    signer_cert.display_name(),
                    crate::openssl_reasons(&err)
                ),
            ))
        })
    }

    /// Signature acceptance: algorithms and key sizes, the claimed signing time, and for
    /// S/MIME the mail it arrived in.
    fn acceptance(
        &self,
        signer: &SignerInfo<'_>,
        signer_cert: Option<&Cert>,
        path: &[Cert],
        signing_time: Option<OffsetDateTime>,
        findings: &mut Vec<Finding>,
    ) {
        let weak = |p: String| Finding::new(SubIndication::CryptoConstraintsFailure, p);
        let digest = &signer.digest_algorithm.oid;
        if let Some(p) = algo::digest_problem(digest) {
            findings.push(weak(p));
        } else if let Some(p) = algo::signature_problem(&signer.signature_algorithm, Some(digest)) {
            findings.push(weak(p));
        }
        if let Some(p) = signer_cert.and_then(algo::key_problem) {
            findings.push(weak(p));
        }
        let anchor = path.len().saturating_sub(1);
        for (i, c) in path.iter().enumerate() {
            if i > 0
                && let Some(p) = algo::key_problem(c)
            {
                findings.push(weak(p));
            }
            let alg = cms::AlgorithmId {
                oid: c.signature_algorithm.clone(),
                params: None,
            };
            let pss_params = c
                .signature_params
                .as_deref()
                .and_then(|p| crate::der::parse_single(p, "parameters").ok());
            let alg = cms::AlgorithmId {
                params: pss_params,
                ..alg
            };
            if i < anchor
                && let Some(p) = algo::signature_problem(&alg, None)
            {
                findings.push(weak(format!("certificate {:?}: {p}", c.display_name())));
            }
        }
        let validation_moment = self.options.at.unwrap_or_else(|| self.now());
        if let Some(st) = signing_time
            && st > validation_moment + FUTURE_SKEW
        {
            findings.push(Finding::new(
                SubIndication::SigConstraintsFailure,
                format!(
                    "the signing time {} lies in the future (validation at {})",
                    crate::format_time(st),
                    crate::format_time(validation_moment)
                ),
            ));
        }
    }

    fn mail_constraints(
        &self,
        mail: &MailContext,
        cert: &Cert,
        signing_time: Option<OffsetDateTime>,
        findings: &mut Vec<Finding>,
        warnings: &mut Vec<String>,
    ) {
        if mail.senders.is_empty() {
            warnings.push("the mail has no From address to compare with the certificate".into());
        }
        // RFC 8550 §3: From or Sender must be an address of the certificate, if it has any.
        let emails = cert.emails();
        let matches = mail
            .senders
            .iter()
            .any(|s| emails.iter().any(|e| e.eq_ignore_ascii_case(s)));
        if !emails.is_empty() && !mail.senders.is_empty() && !matches {
            findings.push(Finding::new(
                SubIndication::SigConstraintsFailure,
                format!(
                    "the mail is from {}, but the signer's certificate is for {} (RFC 8550 §3)",
                    mail.senders.join(", "),
                    emails.join(", ")
                ),
            ));
        }
        // As Thunderbird: a signature made long before or after the mail's Date was likely
        // lifted from another mail.
        if let (Some(tolerance), Some(date), Some(st)) =
            (self.options.date_tolerance, mail.date, signing_time)
            && (st - date).abs() > tolerance
        {
            findings.push(Finding::new(
                SubIndication::SigConstraintsFailure,
                format!(
                    "the signing time {} is more than {} away from the mail's Date {}",
                    crate::format_time(st),
                    tolerance,
                    crate::format_time(date)
                ),
            ));
        }
    }
}

struct Job<'a> {
    /// OpenSSL's parse of `der`, used (once) when there is a single signer.
    parsed: &'a RefCell<Option<CmsContentInfo>>,
    /// The content came from outside the CMS (multipart/signed, `.p7s`, `--content`).
    detached: bool,
    sd: &'a SignedData<'a>,
    index: usize,
    certs: &'a [Cert],
    signed: &'a Signed<'a>,
    object: &'a SignedObject,
    mail: Option<&'a MailContext>,
}

/// `CMS_verify` with no output BIO. The openssl crate always hands OpenSSL a growing memory
/// BIO for the verified content, so every verification copied the whole (often 100 KB)
/// content into a buffer that nobody reads; with a null output OpenSSL discards it.
fn cms_verify(
    ci: &mut CmsContentInfo,
    certs: &StackRef<X509>,
    detached: Option<&[u8]>,
    flags: CMSOptions,
) -> Result<(), ErrorStack> {
    let len = match detached {
        Some(d) => c_int::try_from(d.len()).map_err(|_| ErrorStack::get())?,
        None => 0,
    };
    // SAFETY: the BIO is a read-only view of `detached`, which outlives it, and is freed
    // before returning; `ci` and `certs` are valid objects borrowed for the call.
    unsafe {
        let bio = match detached {
            Some(d) => {
                let b = openssl_sys::BIO_new_mem_buf(d.as_ptr().cast(), len);
                if b.is_null() {
                    return Err(ErrorStack::get());
                }
                b
            }
            None => std::ptr::null_mut(),
        };
        let ok = openssl_sys::CMS_verify(
            ci.as_ptr(),
            certs.as_ptr(),
            std::ptr::null_mut(),
            bio,
            std::ptr::null_mut(),
            flags.bits(),
        );
        if !bio.is_null() {
            openssl_sys::BIO_free_all(bio);
        }
        if ok == 1 {
            Ok(())
        } else {
            Err(ErrorStack::get())
        }
    }
}

/// The signed bytes: detached, or the eContent. The flag says a detached signature also
/// carried content (then the visible part is what counts).
fn locate<'a>(
    sd: &'a SignedData<'a>,
    content: &'a Content<'_>,
    object: &SignedObject,
) -> Signed<'a> {
    match (content, &sd.econtent) {
        (Content::Detached(b), e) => Signed::Bytes(Cow::Borrowed(b), e.is_some()),
        (Content::Embedded, Some(e)) => Signed::Bytes(Cow::Borrowed(e), false),
        (Content::Embedded, None) => Signed::Missing(match object.kind {
            SignatureKind::File | SignatureKind::DetachedAttachment => Finding::new(
                SubIndication::SignedDataNotFound,
                "a detached signature: the signed document is needed (--content FILE)",
            ),
            _ => Finding::new(
                SubIndication::FormatFailure,
                "signed-data without content where the content must be enclosed",
            ),
        }),
        (Content::Missing(why), _) => {
            Signed::Missing(Finding::new(SubIndication::SignedDataNotFound, why.clone()))
        }
    }
}

fn signed_attr_values(
    sd: &SignedData<'_>,
    signer: &SignerInfo<'_>,
    findings: &mut Vec<Finding>,
) -> Option<SignedAttrValues> {
    let attrs = signer.signed_attrs.as_ref()?;
    let values = match attrs::typed(attrs) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding::new(
                SubIndication::FormatFailure,
                format!("signed attributes: {e}"),
            ));
            return None;
        }
    };
    let format = |m: String| Finding::new(SubIndication::FormatFailure, m);
    match &values.content_type {
        None => findings.push(format(
            "signed attributes without contentType (RFC 5652 §5.3)".to_string(),
        )),
        Some(ct) if *ct != sd.econtent_type => findings.push(format(format!(
            "the contentType attribute ({}) differs from the eContentType ({})",
            oid::name(ct),
            oid::name(&sd.econtent_type)
        ))),
        Some(_) => {}
    }
    if values.message_digest.is_none() {
        findings.push(format(
            "signed attributes without messageDigest (RFC 5652 §5.3)".to_string(),
        ));
    }
    Some(values)
}

/// HASH_FAILURE when the signed message digest does not match the content.
fn digest_mismatch(
    signer: &SignerInfo<'_>,
    content: &[u8],
    values: Option<&SignedAttrValues>,
) -> Option<Finding> {
    let expected = values?.message_digest.as_ref()?;
    let md = cert::digest_by_oid(&signer.digest_algorithm.oid)?;
    let actual = hash(md, content).ok()?;
    (*actual != **expected).then(|| {
        Finding::new(
            SubIndication::HashFailure,
            "the signed content was changed: its digest differs from the signed messageDigest",
        )
    })
}

fn describe_sid(sid: &SignerId<'_>) -> String {
    match sid {
        SignerId::IssuerSerial { serial, .. } => format!("serial {}", cert::hex(serial)),
        SignerId::SubjectKeyId(id) if id.is_empty() => "an empty key identifier".to_string(),
        SignerId::SubjectKeyId(id) => format!("key identifier {}", cert::hex(id)),
    }
}

fn signer_of(c: &Cert) -> Signer {
    Signer {
        common_name: c.common_name(),
        email: c.emails().into_iter().next(),
        subject: c.subject_line(),
        issuer: c.issuer_line(),
        serial: cert::hex(&c.serial),
    }
}

fn qualification_note(claim: Option<Qualification>) -> String {
    let base = "no trusted list covers this certificate chain, so the qualification is N/A \
                (as DSS reports it); QESig needs the issuing CA on an EU trusted list";
    match claim {
        Some(q) => format!("{base}; the certificate's qcStatements alone would support {q}"),
        None => format!("{base}; the certificate has no qcStatements"),
    }
}
