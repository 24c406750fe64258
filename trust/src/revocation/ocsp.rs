//! OCSP (RFC 6960) at the responder named in the certificate's Authority Information Access,
//! over plain HTTP (as RFC 6960 Appendix A and every QTSP responder use it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::hash::{MessageDigest, hash};
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::X509Ref;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use time::OffsetDateTime;

use super::http::{self, HttpUrl};
use super::{CrlChecker, RevocationChecker, RevocationStatus, generalized_time, reason_name};

/// Clock skew forgiven on thisUpdate/nextUpdate.
const SKEW_SECS: u32 = 300;
/// Without nextUpdate (and without a nonce) only a fresh answer is trusted.
const MAX_AGE_WITHOUT_NEXT_UPDATE: u32 = 3600;
/// How long definite answers and failures are reused: a burst of mails from one signer asks
/// once, a dead responder is not asked again for every mail, and a fixed one is soon used.
const ANSWER_TTL: Duration = Duration::from_secs(300);
const FAILURE_TTL: Duration = Duration::from_secs(30);
const CACHE_ENTRIES: usize = 1024;
/// A hostile certificate may list many responders; two are plenty for a real one.
const MAX_RESPONDERS: usize = 2;

/// `revocation = "ocsp"`: asks the responder in the certificate's AIA, waiting at most
/// `timeout` per responder; optionally falls back to CRL files when OCSP gives no answer.
pub struct OcspChecker {
    timeout: Duration,
    fallback: Option<CrlChecker>,
    cache: Mutex<HashMap<[u8; 32], (Instant, RevocationStatus)>>,
}

impl OcspChecker {
    pub fn new(timeout: Duration) -> OcspChecker {
        OcspChecker {
            timeout,
            fallback: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// CRL files consulted when no responder gives a usable answer.
    pub fn with_crl_fallback(mut self, crls: CrlChecker) -> OcspChecker {
        self.fallback = Some(crls);
        self
    }

    fn cached(&self, key: &[u8; 32]) -> Option<RevocationStatus> {
        let map = self.cache.lock().ok()?;
        let (until, status) = map.get(key)?;
        (Instant::now() < *until).then(|| status.clone())
    }

    fn remember(&self, key: [u8; 32], status: &RevocationStatus) {
        let ttl = match status {
            RevocationStatus::Unknown { .. } => FAILURE_TTL,
            _ => ANSWER_TTL,
        };
        if let Ok(mut map) = self.cache.lock() {
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
            map.insert(key, (Instant::now() + ttl, status.clone()));
        }
    }

    fn ask_responders(&self, cert: &X509Ref, issuer: &X509Ref) -> RevocationStatus {
        let urls: Vec<String> = match cert.ocsp_responders() {
            Ok(s) => s.iter().map(|u| u.to_string()).collect(),
            Err(_) => Vec::new(),
        };
        if urls.is_empty() {
            return unknown("the certificate names no OCSP responder (AIA)".to_string());
        }
        let mut failures = Vec::new();
        for url in urls.iter().take(MAX_RESPONDERS) {
            match query(url, cert, issuer, self.timeout) {
                Ok(status) => return status,
                Err(e) => failures.push(format!("OCSP {url}: {e}")),
            }
        }
        unknown(failures.join("; "))
    }
}

fn unknown(reason: String) -> RevocationStatus {
    RevocationStatus::Unknown { reason }
}

impl RevocationChecker for OcspChecker {
    fn name(&self) -> &'static str {
        "ocsp"
    }

    fn check(&self, cert: &X509Ref, issuer: &X509Ref, at: OffsetDateTime) -> RevocationStatus {
        // The AIA URL is the certificate holder's choice: contact it only for a certificate
        // that `issuer` really signed (the callers pass anchored paths, but a path may end at
        // an anchor with the right name and the wrong key).
        let signed_by_issuer = issuer
            .public_key()
            .and_then(|k| cert.verify(&k))
            .unwrap_or(false);
        if !signed_by_issuer {
            return unknown("the certificate is not signed by the issuer's key".to_string());
        }
        let key = match cache_key(cert, issuer) {
            Some(k) => k,
            None => return unknown("the certificate cannot be encoded".to_string()),
        };
        let status = match self.cached(&key) {
            Some(s) => s,
            None => {
                let s = self.ask_responders(cert, issuer);
                self.remember(key, &s);
                s
            }
        };
        match (status, &self.fallback) {
            (RevocationStatus::Unknown { reason }, Some(crls)) => {
                match crls.check(cert, issuer, at) {
                    RevocationStatus::Unknown { reason: crl } => {
                        unknown(format!("{reason}; {crl}"))
                    }
                    answer => answer,
                }
            }
            (status, _) => status,
        }
    }
}

fn cache_key(cert: &X509Ref, issuer: &X509Ref) -> Option<[u8; 32]> {
    let mut both = cert.to_der().ok()?;
    both.extend(issuer.to_der().ok()?);
    let d = hash(MessageDigest::sha256(), &both).ok()?;
    d.as_ref().try_into().ok()
}

/// One request to one responder; `Err` for anything that is not a verified, current answer.
fn query(
    url: &str,
    cert: &X509Ref,
    issuer: &X509Ref,
    timeout: Duration,
) -> Result<RevocationStatus, String> {
    let target = HttpUrl::parse(url)?;
    let ossl = |e: openssl::error::ErrorStack| crate::openssl_reasons(&e);
    // SHA-1 CertIDs are what RFC 5019 responders are required to understand; the hash only
    // names the certificate here, it protects nothing.
    let id = || OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(ossl);
    let mut request = OcspRequest::new().map_err(ossl)?;
    request.add_id(id()?).map_err(ossl)?;
    let body = http::post(
        &target,
        "application/ocsp-request",
        &request.to_der().map_err(ossl)?,
        timeout,
    )?;
    let response =
        OcspResponse::from_der(&body).map_err(|e| format!("not an OCSP response: {}", ossl(e)))?;
    let status = response.status();
    if status != OcspResponseStatus::SUCCESSFUL {
        return Err(format!(
            "the responder refused: {}",
            response_status_name(status)
        ));
    }
    let basic = response
        .basic()
        .map_err(|e| format!("no basic OCSP response: {}", ossl(e)))?;
    // The answer must be signed by the issuer or by a responder the issuer authorised
    // (id-kp-OCSPSigning); OpenSSL checks both. The issuer may be an intermediate, so the
    // store accepts a path that ends at it.
    let mut store = X509StoreBuilder::new().map_err(ossl)?;
    store.add_cert(issuer.to_owned()).map_err(ossl)?;
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(ossl)?;
    let store = store.build();
    let mut certs = Stack::new().map_err(ossl)?;
    certs.push(issuer.to_owned()).map_err(ossl)?;
    basic
        .verify(&certs, &store, OcspFlag::empty())
        .map_err(|e| format!("the response signature does not verify: {}", ossl(e)))?;
    let id = id()?;
    let single = basic
        .find_status(&id)
        .ok_or_else(|| "the response does not cover this certificate".to_string())?;
    let max_age = single
        .next_update()
        .is_none()
        .then_some(MAX_AGE_WITHOUT_NEXT_UPDATE);
    single.check_validity(SKEW_SECS, max_age).map_err(|e| {
        format!(
            "the response is not current (thisUpdate {}): {}",
            single.this_update,
            ossl(e)
        )
    })?;
    let source = format!("OCSP {url}");
    match single.status {
        OcspCertStatus::GOOD => Ok(RevocationStatus::Good { source }),
        OcspCertStatus::REVOKED => {
            let time = single
                .revocation_time
                .and_then(generalized_time)
                .ok_or_else(|| "revoked, but the revocation time is unreadable".to_string())?;
            let reason = reason_name(i64::from(single.reason.as_raw())).map(str::to_string);
            Ok(RevocationStatus::Revoked {
                time,
                reason,
                source,
            })
        }
        _ => Err("the responder does not know the certificate (status unknown)".to_string()),
    }
}

fn response_status_name(s: OcspResponseStatus) -> String {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest".to_string(),
        OcspResponseStatus::INTERNAL_ERROR => "internalError".to_string(),
        OcspResponseStatus::TRY_LATER => "tryLater".to_string(),
        OcspResponseStatus::SIG_REQUIRED => "sigRequired".to_string(),
        OcspResponseStatus::UNAUTHORIZED => "unauthorized".to_string(),
        other => format!("status {}", other.as_raw()),
    }
}
