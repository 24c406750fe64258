//! Revocation checking behind one trait, so OCSP (AIA responder, with timeout) and CRL files
//! (part 2) plug in without touching the validation logic, and tests can inject answers.

use openssl::x509::X509Ref;
use time::OffsetDateTime;

/// What a revocation source knows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Checking is switched off (the operator's choice; reported, never a failure).
    NotChecked,
    /// Not revoked according to `source` (e.g. "OCSP http://ocsp.example").
    Good { source: String },
    Revoked {
        time: OffsetDateTime,
        reason: Option<String>,
        source: String,
    },
    /// No usable answer (responder down, stale CRL): INDETERMINATE/TRY_LATER, never passed.
    Unknown { reason: String },
}

pub trait RevocationChecker: Send + Sync {
    /// Short name for reports: "off", "ocsp", "crl".
    fn name(&self) -> &'static str;

    /// The status of `cert`, issued by `issuer`, for a signature validated at `at`.
    /// Implementations bound their own cost (timeouts, cache) and never panic on bad answers.
    fn check(&self, cert: &X509Ref, issuer: &X509Ref, at: OffsetDateTime) -> RevocationStatus;
}

/// `revocation = "off"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocationCheck;

impl RevocationChecker for NoRevocationCheck {
    fn name(&self) -> &'static str {
        "off"
    }

    fn check(&self, _: &X509Ref, _: &X509Ref, _: OffsetDateTime) -> RevocationStatus {
        RevocationStatus::NotChecked
    }
}
