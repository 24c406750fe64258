//! Validation reports in the vocabulary of ETSI EN 319 102-1 and the EU DSS validator.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cert::CertSummary;
use crate::qc::QcStatements;
use crate::qualify::Qualification;

/// The main status (EN 319 102-1 §5.1.3), plus DSS's NO_SIGNATURE_FOUND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    TotalPassed,
    TotalFailed,
    Indeterminate,
    NoSignatureFound,
}

/// Why a signature is not TOTAL_PASSED (EN 319 102-1 Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    FormatFailure,
    HashFailure,
    SigCryptoFailure,
    Revoked,
    Expired,
    NotYetValid,
    SigConstraintsFailure,
    ChainConstraintsFailure,
    CertificateChainGeneralFailure,
    CryptoConstraintsFailure,
    NoSigningCertificateFound,
    NoCertificateChainFound,
    RevokedNoPoe,
    RevokedCaNoPoe,
    OutOfBoundsNoPoe,
    OutOfBoundsNotRevoked,
    TryLater,
    SignedDataNotFound,
}

fn screaming<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl fmt::Display for Indication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&screaming(self))
    }
}

impl fmt::Display for SubIndication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&screaming(self))
    }
}

impl SubIndication {
    /// The indication this sub-indication belongs to in EN 319 102-1 (EXPIRED and
    /// NOT_YET_VALID exist under both; callers choose explicitly for those).
    pub fn indication(self) -> Indication {
        use SubIndication::*;
        match self {
            FormatFailure | HashFailure | SigCryptoFailure | Revoked => Indication::TotalFailed,
            _ => Indication::Indeterminate,
        }
    }
}

/// Which validation model decided certificate validity in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValidationModel {
    /// Kettenmodell: each certificate valid when it issued the next one (German QES practice).
    #[default]
    Chain,
    /// PKIX/OpenSSL: every certificate valid at the validation time.
    Shell,
}

impl fmt::Display for ValidationModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidationModel::Chain => "chain",
            ValidationModel::Shell => "shell",
        })
    }
}

/// Where the validation time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// Given by the operator (`--at`).
    Given,
    /// The signer's signingTime attribute: claimed, not proven.
    SigningTime,
    /// No signing time: the current time.
    CurrentTime,
}

impl fmt::Display for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeSource::Given => "given",
            TimeSource::SigningTime => "claimed signing time",
            TimeSource::CurrentTime => "current time",
        })
    }
}

/// The certificate holder as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    pub common_name: Option<String>,
    pub email: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
}

impl Signer {
    /// `CN <email>`, or what there is of it.
    pub fn display(&self) -> String {
        match (&self.common_name, &self.email) {
            (Some(cn), Some(mail)) => format!("{cn} <{mail}>"),
            (Some(cn), None) => cn.clone(),
            (None, Some(mail)) => mail.clone(),
            (None, None) => self.subject.clone(),
        }
    }
}

/// How the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureKind {
    /// multipart/signed with a detached CMS signature (S/MIME clear-signed).
    MultipartSigned,
    /// application/pkcs7-mime signed-data (S/MIME opaque).
    Opaque,
    /// A `.p7s` attachment over a sibling attachment (detached CAdES).
    DetachedAttachment,
    /// A `.p7m` attachment carrying its document (enveloping CAdES).
    EnvelopingAttachment,
    /// A CMS file given directly (`demailctl qes verify FILE`).
    File,
}

/// What the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedObject {
    pub kind: SignatureKind,
    /// MIME section of the signed entity in IMAP numbering (`1`, `2.1`); `/` separates the
    /// levels inside an opaque signature's content. Empty for files.
    pub section: String,
    /// File name of the signed document, or of the signature file.
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

impl SignedObject {
    /// Whether this is the message's own signature: S/MIME (clear-signed or opaque) over the
    /// top-level body, or over the content of such a signature (`1`, `1/1`). A signature on an
    /// attachment, on one part of a multipart, or inside an enclosed message is not: that
    /// document may have been lifted from elsewhere.
    pub fn covers_message(&self) -> bool {
        matches!(
            self.kind,
            SignatureKind::MultipartSigned | SignatureKind::Opaque
        ) && self.section.split('/').all(|s| s == "1")
    }

    /// The short form used in the header field: the file name, else the section.
    pub fn label(&self) -> String {
        self.filename
            .clone()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| self.section.clone())
    }
}

/// The validation result of one signature (one SignerInfo).
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub qualification: Qualification,
    /// Why the qualification is what it is (e.g. no trusted list).
    pub qualification_note: Option<String>,
    /// The qualification the certificate's qcStatements alone would support, were its CA
    /// confirmed by a trusted list. Informational: never a legal statement.
    pub certificate_claim: Option<Qualification>,
    pub signer: Option<Signer>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub validation_time: OffsetDateTime,
    pub validation_time_source: TimeSource,
    pub model: ValidationModel,
    pub revocation: String,
    pub signed: SignedObject,
    pub digest_algorithm: Option<String>,
    pub signature_algorithm: Option<String>,
    /// The certification path, signer first, trust anchor last.
    pub chain: Vec<CertSummary>,
    pub qc_statements: Option<QcStatements>,
    /// Every failed check in validation order; the first one decided the indication.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl SignatureReport {
    /// TOTAL_PASSED with qualification QESig: may replace the written form.
    pub fn is_qes(&self) -> bool {
        self.indication == Indication::TotalPassed && self.qualification == Qualification::QeSig
    }

    /// The `X-QES-Validation` field value (DESIGN.md header vocabulary), on one line.
    pub fn header_value(&self) -> String {
        let sub = self
            .sub_indication
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        let signer = self
            .signer
            .as_ref()
            .map_or_else(|| "unknown".to_string(), Signer::display);
        let time = self
            .signing_time
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "none".to_string());
        format!(
            "indication={}; sub-indication={}; qualification={}; signer={}; signing-time={}; part={}",
            self.indication,
            sub,
            quote_token(&self.qualification.to_string()),
            quoted(&signer),
            time,
            quoted(&self.signed.label()),
        )
    }
}

/// A quoted-string with `"` and `\` escaped and control characters dropped, at most 200
/// characters: values come from certificates and mails, i.e. from strangers.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars().filter(|c| !c.is_control()).take(200) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Qualifications are tokens except the few with spaces or `?` (`Not AdES`, `QES?`).
fn quote_token(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-/".contains(c))
    {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// All signatures found in one mail.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MailReport {
    pub signatures: Vec<SignatureReport>,
    /// Parts seen but not checked (encrypted, beyond the limits), for the operator.
    pub notes: Vec<String>,
}

impl MailReport {
    /// NO_SIGNATURE_FOUND without signatures (certificates-only CMS do not count); else the
    /// worst indication of any signature.
    pub fn indication(&self) -> Indication {
        let all = self
            .signatures
            .iter()
            .map(|s| s.indication)
            .filter(|i| *i != Indication::NoSignatureFound);
        if all.clone().next().is_none() {
            Indication::NoSignatureFound
        } else if all.clone().any(|i| i == Indication::TotalFailed) {
            Indication::TotalFailed
        } else if all.clone().any(|i| i != Indication::TotalPassed) {
            Indication::Indeterminate
        } else {
            Indication::TotalPassed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_etsi_ones() {
        assert_eq!(Indication::TotalPassed.to_string(), "TOTAL_PASSED");
        assert_eq!(
            SubIndication::OutOfBoundsNoPoe.to_string(),
            "OUT_OF_BOUNDS_NO_POE"
        );
        assert_eq!(
            SubIndication::CryptoConstraintsFailure.to_string(),
            "CRYPTO_CONSTRAINTS_FAILURE"
        );
        assert_eq!(
            SubIndication::NoSigningCertificateFound.to_string(),
            "NO_SIGNING_CERTIFICATE_FOUND"
        );
    }

    #[test]
    fn only_the_top_level_signature_covers_the_message() {
        let at = |kind, section: &str| SignedObject {
            kind,
            section: section.into(),
            filename: None,
            content_type: None,
        };
        use SignatureKind::*;
        assert!(at(MultipartSigned, "1").covers_message());
        assert!(at(Opaque, "1").covers_message());
        assert!(at(MultipartSigned, "1/1").covers_message());
        for (kind, section) in [
            (MultipartSigned, "2.1"),
            (MultipartSigned, "1.1"),
            (Opaque, "2"),
            (DetachedAttachment, "1"),
            (EnvelopingAttachment, "1"),
            (EnvelopingAttachment, "2"),
            (File, ""),
        ] {
            assert!(!at(kind, section).covers_message(), "{kind:?} {section}");
        }
    }

    #[test]
    fn quoting_neutralises_hostile_names() {
        assert_eq!(quoted("a\"b\\c\r\nd"), "\"a\\\"b\\\\cd\"");
        assert_eq!(quote_token("QESig"), "QESig");
        assert_eq!(quote_token("Not AdES"), "\"Not AdES\"");
        assert_eq!(quoted(&"x".repeat(500)).len(), 202);
    }
}
