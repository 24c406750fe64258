//! The signer certificate's validity and qualification on top of [`super::verify`]: path to
//! a trust anchor at the validation time (OpenSSL, shell model), the qcStatements it claims,
//! and what a trusted list says (the crate's [`QualificationSource`]).
//!
//! The shell model only: the crate's chain-model path validation is internal to the CMS
//! verifier; a provider's signing certificate is current when its messages arrive, so the
//! models agree for mail checked on receipt.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509StoreContext};
use serde::Serialize;
use time::OffsetDateTime;

use super::IntegrityReport;
use crate::qc::QcStatements;
use crate::qualify::{
    CertQualification, NoTrustedList, Qualification, QualificationSource, signature_qualification,
};
use crate::report::{Indication, SubIndication};
use crate::revocation::{RevocationChecker, RevocationStatus};

/// Most certificates in a path (leaf, intermediates, anchor).
const MAX_PATH: u32 = 8;

/// What to validate the signer certificate against.
pub struct ValidationContext {
    pub anchors: Vec<X509>,
    /// Intermediate CA certificates that may complete the path (the field carries the leaf
    /// only).
    pub intermediates: Vec<X509>,
    /// The validation time; `None` is now.
    pub at: Option<OffsetDateTime>,
    pub qualification: Box<dyn QualificationSource>,
    /// The only certificates whose signature counts (the provider's seals); `None`: any
    /// signer (generic checking tools). A signature by another certificate is
    /// INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE.
    pub signers: Option<Vec<X509>>,
    /// Revocation of the signer certificate; `None`: not checked.
    pub revocation: Option<Box<dyn RevocationChecker>>,
}

impl ValidationContext {
    /// Trusting `anchors`, now, without a trusted list (qualification N/A).
    pub fn new(anchors: Vec<X509>) -> ValidationContext {
        ValidationContext {
            anchors,
            intermediates: Vec::new(),
            at: None,
            qualification: Box::new(NoTrustedList),
            signers: None,
            revocation: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QualifiedIntegrityReport {
    /// Overall: the integrity check's failure if any, else the certificate's.
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub reason: Option<String>,
    pub integrity: IntegrityReport,
    /// What the certificate's qcStatements claim (proves nothing without a trusted list).
    pub certificate_claim: Option<QcStatements>,
    /// eIDAS qualification of the signature as DSS determines it (`QESig` only with a
    /// trusted list naming the CA as CA/QC).
    #[serde(serialize_with = "as_str")]
    pub qualification: Qualification,
    pub validation_time: String,
}

fn as_str<S: serde::Serializer>(q: &Qualification, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(q.as_str())
}

impl QualifiedIntegrityReport {
    /// A qualified electronic signature that verifies.
    pub fn is_qes(&self) -> bool {
        self.indication == Indication::TotalPassed && self.qualification == Qualification::QeSig
    }
}

/// [`super::verify`], then the signer certificate's path to `ctx.anchors` at `ctx.at` and
/// its qualification.
pub fn verify_with(message: &[u8], ctx: &ValidationContext) -> QualifiedIntegrityReport {
    let integrity = super::verify(message);
    let at = ctx.at.unwrap_or_else(OffsetDateTime::now_utc);
    let mut out = QualifiedIntegrityReport {
        indication: integrity.indication,
        sub_indication: integrity.sub_indication,
        reason: integrity.reason.clone(),
        integrity,
        certificate_claim: None,
        qualification: Qualification::NotApplicable,
        validation_time: crate::format_time(at),
    };
    let Some(der) = out.integrity.signer_certificate.clone() else {
        if out.indication == Indication::TotalPassed {
            // Hash only: integrity without origin is no signature at all.
            out.indication = Indication::Indeterminate;
            out.sub_indication = Some(SubIndication::NoSigningCertificateFound);
            out.reason = Some("the message is only hashed, not signed".to_string());
        }
        return out;
    };
    let Ok(leaf) = X509::from_der(&der) else {
        return out; // verify() read it already; cannot happen, and nothing to add if it does
    };
    out.certificate_claim = crate::cert::Cert::from_der(&der)
        .ok()
        .and_then(|c| c.qc_statements().ok().flatten());
    let (chain, problem) = match path(&leaf, ctx, at) {
        Ok(p) => p,
        Err(e) => (
            Vec::new(),
            Some((SubIndication::CertificateChainGeneralFailure, e)),
        ),
    };
    let problem = problem.or_else(|| signer_constraints(&der, &leaf, &chain, ctx, at));
    if let (Some((sub, reason)), Indication::TotalPassed) = (&problem, out.indication) {
        out.indication = sub.indication();
        out.sub_indication = Some(*sub);
        out.reason = Some(reason.clone());
    }
    let cert_qualification: Option<CertQualification> = if chain.is_empty() {
        None
    } else {
        ctx.qualification.certificate_qualification(&chain, at)
    };
    out.qualification = signature_qualification(out.indication, cert_qualification);
    out
}

type PathResult = (Vec<X509>, Option<(SubIndication, String)>);

/// What the validation policy asks of the signer beyond a valid path: one of the pinned
/// signers, a key usage for signatures, not revoked.
fn signer_constraints(
    der: &[u8],
    leaf: &X509,
    chain: &[X509],
    ctx: &ValidationContext,
    at: OffsetDateTime,
) -> Option<(SubIndication, String)> {
    if let Some(signers) = &ctx.signers
        && !signers.iter().any(|s| s.to_der().is_ok_and(|d| d == der))
    {
        return Some((
            SubIndication::ChainConstraintsFailure,
            "the signer certificate is not one of the pinned provider seals (provider_signers)"
                .into(),
        ));
    }
    match crate::cert::Cert::from_der(der).and_then(|c| c.key_usage()) {
        // digitalSignature (bit 0) or nonRepudiation (bit 1)
        Ok(Some(bits)) if bits & 0b11 == 0 => {
            return Some((
                SubIndication::ChainConstraintsFailure,
                "the signer certificate's key usage allows no signatures".into(),
            ));
        }
        Err(e) => {
            return Some((
                SubIndication::FormatFailure,
                format!("the signer certificate's key usage cannot be read: {e}"),
            ));
        }
        _ => {}
    }
    let (Some(checker), Some(issuer)) = (&ctx.revocation, chain.get(1)) else {
        return None;
    };
    match checker.check(leaf, issuer, at) {
        RevocationStatus::NotChecked | RevocationStatus::Good { .. } => None,
        RevocationStatus::Revoked { source, .. } => Some((
            SubIndication::Revoked,
            format!("the signer certificate is revoked ({source})"),
        )),
        RevocationStatus::Unknown { reason } => Some((
            SubIndication::TryLater,
            format!("revocation status of the signer certificate unknown: {reason}"),
        )),
    }
}

/// The path OpenSSL builds (leaf first) and what is wrong with it, if anything.
fn path(leaf: &X509, ctx: &ValidationContext, at: OffsetDateTime) -> Result<PathResult, String> {
    let ossl = |e: openssl::error::ErrorStack| crate::openssl_reasons(&e);
    let mut store = X509StoreBuilder::new().map_err(ossl)?;
    for a in &ctx.anchors {
        store.add_cert(a.clone()).map_err(ossl)?;
    }
    let mut param = X509VerifyParam::new().map_err(ossl)?;
    // An anchor from a trusted list is trusted whether or not it is self-signed.
    param
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(ossl)?;
    param.set_time(at.unix_timestamp() as _);
    param.set_depth(MAX_PATH as i32);
    store.set_param(&param).map_err(ossl)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(ossl)?;
    for c in &ctx.intermediates {
        untrusted.push(c.clone()).map_err(ossl)?;
    }
    let mut sc = X509StoreContext::new().map_err(ossl)?;
    sc.init(&store, leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        let chain: Vec<X509> = c
            .chain()
            .map(|s| s.iter().map(|x| x.to_owned()).collect())
            .unwrap_or_default();
        let problem = (!ok).then(|| {
            let err = c.error();
            (
                classify(err.as_raw()),
                format!(
                    "signer certificate, depth {}: {}",
                    c.error_depth(),
                    err.error_string()
                ),
            )
        });
        Ok((chain, problem))
    })
    .map_err(ossl)
}

/// OpenSSL verify error -> EN 319 102-1 sub-indication.
fn classify(code: i32) -> SubIndication {
    use openssl_sys as ffi;
    match code {
        ffi::X509_V_ERR_CERT_HAS_EXPIRED => SubIndication::Expired,
        ffi::X509_V_ERR_CERT_NOT_YET_VALID => SubIndication::NotYetValid,
        ffi::X509_V_ERR_CERT_REVOKED => SubIndication::Revoked,
        ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | ffi::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | ffi::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | ffi::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => SubIndication::NoCertificateChainFound,
        _ => SubIndication::CertificateChainGeneralFailure,
    }
}
