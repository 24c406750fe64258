//! Signature and certificate checks of demail-gateway: qualified electronic signatures (QES)
//! on mail to the poststelle, reported as ETSI EN 319 102-1 and the EU DSS validator do.
//!
//! [`Verifier::verify_mail`] finds every S/MIME signature and signed attachment in a raw mail
//! and validates each; [`Verifier::verify_file`] does the same for a CMS file (`.p7s`, `.p7m`)
//! or a mail file. OpenSSL does the cryptography and path building; CMS attributes and
//! qcStatements are read by our own small DER reader.
//!
//! The qualification comes from EU trusted lists ([`tl::TrustedLists`], a
//! [`QualificationSource`]; without one it is `N/A`, as in DSS). Revocation is checked by a
//! [`RevocationChecker`] ([`revocation::from_settings`]: OCSP, CRL files, or off). The only
//! network I/O is the OCSP request to the responder named in a certificate's AIA, and only for
//! a path that ends at a configured anchor, bounded by the configured timeout.
//! [`integrity`] verifies the provider's `X-de-mail-integrity` signature (TR-01201).

mod algo;
mod attrs;
mod cert;
mod chain;
mod cms;
pub mod der;
mod finding;
/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[doc(hidden)]
pub mod fuzzing;
pub mod integrity;
mod mime;
mod oid;
pub mod pins;
pub mod qc;
mod qualify;
mod report;
pub mod revocation;
pub mod setup;
pub mod tl;
mod transfer;
mod verify;

use openssl::x509::X509;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub use cert::CertSummary;
pub use qc::{QcStatements, QcType};
pub use qualify::{
    CertQualification, CertType, NoTrustedList, Qualification, QualificationSource,
    signature_qualification,
};
pub use report::{
    Indication, MailReport, SignatureKind, SignatureReport, SignedObject, Signer, SubIndication,
    TimeSource, ValidationModel,
};
pub use revocation::{NoRevocationCheck, RevocationChecker, RevocationStatus};

use cert::Cert;
use mime::Content;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A trust anchor file or certificate that cannot be used.
    #[error("trust anchor {source_name}: {reason}")]
    Anchor { source_name: String, reason: String },
    /// Input that is neither a mail nor a CMS signature, or options that do not fit it.
    #[error("{0}")]
    Input(String),
}

/// How to validate.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub model: ValidationModel,
    /// Validate at this time instead of the claimed signing time (`--at`); the operator vouches
    /// for it, so it also counts as proof that the signature existed then.
    pub at: Option<OffsetDateTime>,
    /// The current time; `None` reads the clock (tests pin it).
    pub now: Option<OffsetDateTime>,
    /// S/MIME only: the largest distance between signingTime and the mail's Date
    /// (Thunderbird uses one hour); `None` switches the check off.
    pub date_tolerance: Option<Duration>,
    /// At most this many signatures are checked per mail (bounded cost for hostile mail).
    pub max_signatures: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            model: ValidationModel::Chain,
            at: None,
            now: None,
            date_tolerance: Some(Duration::hours(1)),
            max_signatures: 16,
        }
    }
}

/// Validates signatures against a set of trust anchors. Cheap to share: it holds no state
/// per message.
pub struct Verifier {
    anchors: Vec<X509>,
    anchor_certs: Vec<Cert>,
    cert_cache: cert::CertCache,
    path_cache: chain::PathCache,
    options: VerifyOptions,
    revocation: Box<dyn RevocationChecker>,
    qualification: Box<dyn QualificationSource>,
}

impl Verifier {
    /// A verifier trusting `anchors`, with revocation checking off and no trusted list.
    pub fn new(anchors: Vec<X509>, options: VerifyOptions) -> Result<Verifier, TrustError> {
        let anchor_certs = anchors
            .iter()
            .map(|a| {
                Cert::from_x509(a).map_err(|e| TrustError::Anchor {
                    source_name: format!("{:?}", a.subject_name()),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            anchors,
            anchor_certs,
            cert_cache: cert::CertCache::new(1024),
            path_cache: chain::PathCache::new(1024),
            options,
            revocation: Box::new(NoRevocationCheck),
            qualification: Box::new(NoTrustedList),
        })
    }

    pub fn with_revocation(mut self, checker: Box<dyn RevocationChecker>) -> Verifier {
        self.revocation = checker;
        self
    }

    pub fn with_qualification(mut self, source: Box<dyn QualificationSource>) -> Verifier {
        self.qualification = source;
        self
    }

    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    /// Every signature in a raw RFC 5322 message (as received, CRLF or LF line ends).
    pub fn verify_mail(&self, raw: &[u8]) -> MailReport {
        let scan = mime::scan(raw, self.options.max_signatures);
        let mut signatures = Vec::new();
        for f in &scan.found {
            let cms = f.cms.as_deref().map_err(String::as_str);
            signatures.extend(self.verify_cms(cms, &f.content, &f.signed, f.mail.as_ref()));
        }
        MailReport {
            signatures,
            notes: scan.notes,
        }
    }

    /// A file given by name: a mail, or a CMS signature (DER, PEM or bare base64; `.p7s`,
    /// `.p7m`), with `content` for a detached one. A file that is not a mail is taken as CMS,
    /// so a damaged signature file gets a FORMAT_FAILURE report rather than an error.
    pub fn verify_file(
        &self,
        data: &[u8],
        name: &str,
        content: Option<(&[u8], &str)>,
    ) -> Result<MailReport, TrustError> {
        let cms = match pem_or_base64(data) {
            Some(decoded) => decoded,
            None if looks_like_mail(data) => {
                if content.is_some() {
                    return Err(TrustError::Input(format!(
                        "{name} is a mail, so --content does not apply"
                    )));
                }
                return Ok(self.verify_mail(data));
            }
            None => Ok(data.to_vec()),
        };
        let (content, filename) = match content {
            Some((bytes, doc_name)) => (Content::Detached(bytes.into()), doc_name),
            None => (Content::Embedded, name),
        };
        let signed = SignedObject {
            kind: SignatureKind::File,
            section: String::new(),
            filename: Some(filename.to_string()),
            content_type: None,
        };
        let cms = cms.as_deref().map_err(String::as_str);
        Ok(MailReport {
            signatures: self.verify_cms(cms, &content, &signed, None),
            notes: Vec::new(),
        })
    }
}

/// A mail starts with a header field (`Name: value`) and holds no NUL bytes.
fn looks_like_mail(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let name_len = first_line
        .iter()
        .take_while(|b| b.is_ascii_graphic() && **b != b':')
        .count();
    name_len > 0 && first_line.get(name_len) == Some(&b':') && !head.contains(&0)
}

/// PEM (`-----BEGIN PKCS7-----`, `CMS`, ...) or bare base64 text: `Some` with the decoded
/// DER (or why it cannot be decoded); `None` for anything else.
fn pem_or_base64(data: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let text = std::str::from_utf8(data).ok()?;
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix("-----BEGIN") {
        let body = rest.find('\n').and_then(|start| {
            rest[start..]
                .find("-----END")
                .map(|end| &rest[start..start + end])
        });
        return Some(
            body.and_then(|b| transfer::base64(b.as_bytes()))
                .ok_or_else(|| "malformed PEM".to_string()),
        );
    }
    let der = transfer::base64(text.as_bytes())?;
    (der.first() == Some(&0x30)).then_some(Ok(der))
}

/// Loads every certificate of a PEM file (or one DER certificate) as trust anchors.
pub fn load_anchors(data: &[u8], source_name: &str) -> Result<Vec<X509>, TrustError> {
    let err = |reason: String| TrustError::Anchor {
        source_name: source_name.to_string(),
        reason,
    };
    let certs = if data.first() == Some(&0x30) {
        vec![X509::from_der(data).map_err(|e| err(e.to_string()))?]
    } else {
        X509::stack_from_pem(data).map_err(|e| err(e.to_string()))?
    };
    if certs.is_empty() {
        return Err(err("no certificate in it".to_string()));
    }
    Ok(certs)
}

/// The certificates inside a CMS signature (to take a root from a signature as anchor, as
/// tests and careful operators do after checking its fingerprint).
pub fn certificates_in_cms(der: &[u8]) -> Result<Vec<X509>, TrustError> {
    let sd = cms::parse_signed_data(der).map_err(|e| TrustError::Input(e.to_string()))?;
    sd.certificates
        .iter()
        .map(|c| X509::from_der(c).map_err(|e| TrustError::Input(e.to_string())))
        .collect()
}

pub(crate) fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// OpenSSL's error reasons without file names and codes ("bad signature; verification
/// failure"): what a report reader can act on.
pub(crate) fn openssl_reasons(e: &openssl::error::ErrorStack) -> String {
    let mut out: Vec<&str> = Vec::new();
    for r in e.errors() {
        let text = r.reason().unwrap_or("unknown error");
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The milter shares one verifier between connections.
    #[test]
    fn verifier_is_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Verifier>();
        shareable::<MailReport>();
    }

    #[test]
    fn mail_or_cms_detection() {
        assert!(looks_like_mail(b"From: a@b\r\n\r\nx"));
        assert!(looks_like_mail(b"Received: from x\nFrom: a@b\n\nx"));
        assert!(!looks_like_mail(b"\x30\x82\x01\x00"));
        assert!(!looks_like_mail(b"C\x83\x04\x17: x\0"));
        assert!(!looks_like_mail(b"no colon here\r\n"));
        assert_eq!(
            pem_or_base64(b"-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n"),
            Some(Ok(vec![0x30, 0x00]))
        );
        assert!(matches!(
            pem_or_base64(b"-----BEGIN CMS-----\n*\n-----END CMS-----\n"),
            Some(Err(_))
        ));
        assert_eq!(pem_or_base64(b"MAA=\r\n"), Some(Ok(vec![0x30, 0x00])));
        assert_eq!(pem_or_base64(b"From: x\r\n"), None);
    }
}
