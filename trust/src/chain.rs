//! Certification path building (OpenSSL) and validity in time under the shell or the chain
//! model.
//!
//! OpenSSL builds and checks the path first with time checks off (structure, signatures, CA
//! flags); validity in time is then judged per model:
//! - shell (PKIX): OpenSSL again, at the validation time, so every certificate must be valid
//!   then;
//! - chain (Kettenmodell, German QES practice): the signer's certificate valid at the
//!   validation time, and every issuer valid when it issued the certificate below it.
//!
//! A claimed signingTime is no proof of existence: when it is the validation time and a
//! certificate the model relies on has expired by now, the result is OUT_OF_BOUNDS_NO_POE,
//! as DSS reports it. An operator who can vouch for the time passes it explicitly (`--at`).

use std::collections::HashMap;
use std::sync::Mutex;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Ref, X509StoreContext, X509VerifyResult};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cert::{Cert, CertCache};
use crate::finding::Finding;
use crate::report::{Indication, SubIndication, TimeSource, ValidationModel};

/// Longest path we build (leaf + intermediates + anchor); real QES paths have 3.
const MAX_PATH: i32 = 8;

/// The path (signer first, anchor last) and what is wrong with it.
pub struct PathOutcome {
    pub path: Vec<Cert>,
    pub findings: Vec<Finding>,
}

pub struct PathRequest<'a> {
    pub leaf: &'a Cert,
    pub untrusted: &'a [Cert],
    pub anchors: &'a [X509],
    /// The anchors parsed, and a cache for other certificates OpenSSL puts in the path.
    pub anchor_certs: &'a [Cert],
    pub cache: &'a CertCache,
    pub paths: &'a PathCache,
    pub model: ValidationModel,
    pub at: OffsetDateTime,
    pub source: TimeSource,
    pub now: OffsetDateTime,
}

pub fn validate(req: &PathRequest<'_>) -> PathOutcome {
    let key: Vec<[u8; 32]> = std::iter::once(req.leaf)
        .chain(req.untrusted)
        .map(|c| c.fingerprint)
        .collect();
    let structural = match req.paths.get(&key) {
        Some(s) => s,
        None => match structural(req) {
            Ok(s) => {
                req.paths.insert(key, s.clone());
                s
            }
            Err(f) => {
                return PathOutcome {
                    path: vec![req.leaf.clone()],
                    findings: vec![f],
                };
            }
        },
    };
    let Structural {
        path,
        error,
        mut findings,
    } = structural;
    if let Some((code, depth)) = error {
        findings.push(structural_finding(code, depth, &path));
        return PathOutcome { path, findings };
    }
    key_usage(req.leaf, &mut findings);
    match req.model {
        ValidationModel::Chain => chain_model(req, &path, &mut findings),
        ValidationModel::Shell => shell_model(req, &path, &mut findings),
    }
    no_proof_of_existence(req, &path, &mut findings);
    PathOutcome { path, findings }
}

/// What OpenSSL says about a path regardless of time: the same for every signature of a
/// signer, so it is cached.
#[derive(Clone)]
pub struct Structural {
    path: Vec<Cert>,
    error: Option<(X509VerifyResult, u32)>,
    findings: Vec<Finding>,
}

/// Path results by (signer, offered intermediates) for one set of anchors. Bounded: a full
/// cache starts over.
pub struct PathCache {
    map: Mutex<HashMap<Vec<[u8; 32]>, Structural>>,
    capacity: usize,
}

impl PathCache {
    pub fn new(capacity: usize) -> PathCache {
        PathCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, key: &[[u8; 32]]) -> Option<Structural> {
        self.map.lock().ok()?.get(key).cloned()
    }

    fn insert(&self, key: Vec<[u8; 32]>, value: Structural) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(key, value);
        }
    }
}

fn structural(req: &PathRequest<'_>) -> Result<Structural, Finding> {
    let mut findings = Vec::new();
    let built = match openssl_verify(req, None) {
        Ok(b) => b,
        Err(e) => {
            findings.push(Finding::new(
                SubIndication::CertificateChainGeneralFailure,
                format!(
                    "path building failed inside OpenSSL: {}",
                    crate::openssl_reasons(&e)
                ),
            ));
            return Err(findings.remove(0));
        }
    };
    let mut path = Vec::with_capacity(built.chain.len());
    for x in &built.chain {
        // OpenSSL returns the very objects we gave it: reuse their parsed form.
        let known = std::iter::once(req.leaf)
            .chain(req.untrusted)
            .chain(req.anchor_certs)
            .find(|c| same_object(&c.x509, x));
        let parsed = match known {
            Some(c) => Ok(c.clone()),
            None => x
                .to_der()
                .map_err(|e| crate::der::DerError::new(0, crate::openssl_reasons(&e)))
                .and_then(|der| req.cache.parse(&der)),
        };
        match parsed {
            Ok(c) => path.push(c),
            Err(e) => findings.push(Finding::new(
                SubIndication::CertificateChainGeneralFailure,
                format!("certificate in the path unreadable: {e}"),
            )),
        }
    }
    if path.is_empty() {
        path.push(req.leaf.clone());
    }
    Ok(Structural {
        path,
        error: built.error,
        findings,
    })
}

struct Built {
    chain: Vec<X509>,
    /// OpenSSL's verify error and the depth it occurred at.
    error: Option<(X509VerifyResult, u32)>,
}

/// One OpenSSL path validation; `at` = None switches time checks off.
fn openssl_verify(
    req: &PathRequest<'_>,
    at: Option<OffsetDateTime>,
) -> Result<Built, openssl::error::ErrorStack> {
    let mut param = X509VerifyParam::new()?;
    // Anchors are trust anchors whether self-signed or not (a CA taken from a trusted list).
    let mut flags = X509VerifyFlags::PARTIAL_CHAIN;
    match at {
        Some(t) => param.set_time(t.unix_timestamp() as _),
        None => flags |= X509VerifyFlags::NO_CHECK_TIME,
    }
    param.set_flags(flags)?;
    param.set_depth(MAX_PATH);
    // Algorithm strength is our policy (algo.rs), reported as CRYPTO_CONSTRAINTS_FAILURE.
    param.set_auth_level(0);
    let mut builder = X509StoreBuilder::new()?;
    for a in req.anchors {
        builder.add_cert(a.clone())?;
    }
    builder.set_param(&param)?;
    let store = builder.build();
    let mut untrusted = Stack::new()?;
    for c in req.untrusted {
        untrusted.push(c.x509.clone())?;
    }
    let mut ctx = X509StoreContext::new()?;
    ctx.init(&store, &req.leaf.x509, &untrusted, |c| {
        let ok = c.verify_cert()?;
        let chain = c
            .chain()
            .map(|s| s.iter().map(|x| x.to_owned()).collect())
            .unwrap_or_default();
        Ok(Built {
            chain,
            error: (!ok).then(|| (c.error(), c.error_depth())),
        })
    })
}

/// Whether two handles refer to the same OpenSSL object (a `X509Ref` lives at the address of
/// the C object it wraps).
fn same_object(a: &X509Ref, b: &X509Ref) -> bool {
    std::ptr::eq(a, b)
}

fn name_at(path: &[Cert], depth: u32) -> String {
    path.get(depth as usize).map_or_else(
        || format!("certificate at depth {depth}"),
        |c| format!("{:?}", c.display_name()),
    )
}

fn structural_finding(code: X509VerifyResult, depth: u32, path: &[Cert]) -> Finding {
    use openssl_sys as e;
    let who = name_at(path, depth);
    let text = code.error_string();
    let sub = match code.as_raw() {
        e::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | e::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | e::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | e::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | e::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => {
            return Finding::new(
                SubIndication::NoCertificateChainFound,
                format!("no certification path to a trust anchor: {text} ({who})"),
            );
        }
        e::X509_V_ERR_INVALID_CA
        | e::X509_V_ERR_PATH_LENGTH_EXCEEDED
        | e::X509_V_ERR_INVALID_PURPOSE
        | e::X509_V_ERR_KEYUSAGE_NO_CERTSIGN
        | e::X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION
        | e::X509_V_ERR_CERT_CHAIN_TOO_LONG
        | e::X509_V_ERR_INVALID_EXTENSION
        | e::X509_V_ERR_INVALID_POLICY_EXTENSION
        | e::X509_V_ERR_NO_EXPLICIT_POLICY => SubIndication::ChainConstraintsFailure,
        _ => SubIndication::CertificateChainGeneralFailure,
    };
    Finding::new(sub, format!("{who}: {text}"))
}

/// The signer's certificate must allow signatures (digitalSignature or nonRepudiation).
fn key_usage(leaf: &Cert, findings: &mut Vec<Finding>) {
    match leaf.key_usage() {
        Ok(Some(bits)) if bits & 0b11 == 0 => findings.push(Finding::new(
            SubIndication::ChainConstraintsFailure,
            format!(
                "the key usage of {:?} allows neither digitalSignature nor nonRepudiation",
                leaf.display_name()
            ),
        )),
        Ok(_) => {}
        Err(e) => findings.push(Finding::new(
            SubIndication::ChainConstraintsFailure,
            format!("unreadable keyUsage in {:?}: {e}", leaf.display_name()),
        )),
    }
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A finding for `cert` not being valid at `t` (`when` says what `t` is).
fn out_of_bounds(cert: &Cert, t: OffsetDateTime, when: &str, leaf_at_signing: bool) -> Finding {
    let who = cert.display_name();
    if t < cert.not_before {
        let msg = format!(
            "{who:?} is valid only from {}, {when} is {}",
            ts(cert.not_before),
            ts(t)
        );
        // EN 319 102-1: a signing time before the signer's certificate existed is proven bad.
        if leaf_at_signing {
            Finding::with(Indication::TotalFailed, SubIndication::NotYetValid, msg)
        } else {
            Finding::new(SubIndication::NotYetValid, msg)
        }
    } else {
        Finding::new(
            SubIndication::OutOfBoundsNoPoe,
            format!(
                "{who:?} expired {}, {when} is {}",
                ts(cert.not_after),
                ts(t)
            ),
        )
    }
}

fn chain_model(req: &PathRequest<'_>, path: &[Cert], findings: &mut Vec<Finding>) {
    let leaf_at_signing = req.source != TimeSource::CurrentTime;
    if let Some(leaf) = path.first()
        && !leaf.valid_at(req.at)
    {
        findings.push(out_of_bounds(
            leaf,
            req.at,
            "the validation time",
            leaf_at_signing,
        ));
    }
    for pair in path.windows(2) {
        let (child, issuer) = (&pair[0], &pair[1]);
        if !issuer.valid_at(child.not_before) {
            let when = format!("the issuance of {:?}", child.display_name());
            findings.push(out_of_bounds(issuer, child.not_before, &when, false));
        }
    }
}

fn shell_model(req: &PathRequest<'_>, path: &[Cert], findings: &mut Vec<Finding>) {
    let verdict = match openssl_verify(req, Some(req.at)) {
        Ok(b) => b.error,
        Err(e) => {
            findings.push(Finding::new(
                SubIndication::CertificateChainGeneralFailure,
                format!(
                    "OpenSSL failed at the validation time: {}",
                    crate::openssl_reasons(&e)
                ),
            ));
            return;
        }
    };
    let Some((code, depth)) = verdict else {
        return;
    };
    let leaf_at_signing = req.source != TimeSource::CurrentTime;
    let invalid: Vec<Finding> = path
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.valid_at(req.at))
        .map(|(i, c)| {
            out_of_bounds(
                c,
                req.at,
                "the validation time (shell model)",
                i == 0 && leaf_at_signing,
            )
        })
        .collect();
    if invalid.is_empty() {
        findings.push(structural_finding(code, depth, path));
    } else {
        findings.extend(invalid);
    }
}

fn no_proof_of_existence(req: &PathRequest<'_>, path: &[Cert], findings: &mut Vec<Finding>) {
    if req.source != TimeSource::SigningTime {
        return;
    }
    let relied_on = match req.model {
        ValidationModel::Chain => &path[..path.len().min(1)],
        ValidationModel::Shell => path,
    };
    for c in relied_on {
        if c.not_after < req.now && c.valid_at(req.at) {
            findings.push(Finding::new(
                SubIndication::OutOfBoundsNoPoe,
                format!(
                    "{:?} expired {}; the signing time {} is only claimed by the signer \
                     (no timestamp), so it proves nothing after the expiry; \
                     give the time explicitly (--at) if it is known",
                    c.display_name(),
                    ts(c.not_after),
                    ts(req.at)
                ),
            ));
        }
    }
}
