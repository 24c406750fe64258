//! `revocation = "crl"`: CRL files the operator keeps current (DER or PEM, a PEM file may hold
//! several). A CRL counts only when it verifies with the issuer's key; "not revoked" needs a
//! CRL that is still current (nextUpdate not passed), while a revocation entry counts from any
//! verified CRL (revocation is final, except for a hold, which a later CRL lifts).

use std::cmp::Ordering;
use std::path::PathBuf;

use openssl::x509::{CrlStatus, ReasonCode, X509Crl, X509Ref};
use time::OffsetDateTime;

use super::{RevocationChecker, RevocationStatus, asn1_time, reason_name, subject};
use crate::TrustError;

struct LoadedCrl {
    crl: X509Crl,
    source: String,
}

pub struct CrlChecker {
    crls: Vec<LoadedCrl>,
    /// Files that could not be read (lenient loading), named when they might have mattered.
    problems: Vec<String>,
    now: Option<OffsetDateTime>,
}

impl CrlChecker {
    /// CRLs parsed from `data` (one DER CRL, or PEM with one or more `X509 CRL` blocks);
    /// `source` names them in reports.
    pub fn parse(data: &[u8], source: &str) -> Result<Vec<X509Crl>, TrustError> {
        let err = |reason: String| TrustError::Input(format!("CRL {source}: {reason}"));
        if data.first() == Some(&0x30) {
            return X509Crl::from_der(data)
                .map(|c| vec![c])
                .map_err(|e| err(crate::openssl_reasons(&e)));
        }
        const BEGIN: &str = "-----BEGIN X509 CRL-----";
        let text = std::str::from_utf8(data).map_err(|_| err("neither DER nor PEM".into()))?;
        let mut crls = Vec::new();
        for (n, (start, _)) in text.match_indices(BEGIN).enumerate() {
            let crl = X509Crl::from_pem(&text.as_bytes()[start..]).map_err(|e| {
                err(format!(
                    "PEM block {}: {}",
                    n + 1,
                    crate::openssl_reasons(&e)
                ))
            })?;
            crls.push(crl);
        }
        if crls.is_empty() {
            return Err(err(format!("no {BEGIN} block and not DER")));
        }
        Ok(crls)
    }

    pub fn new(crls: Vec<(X509Crl, String)>) -> CrlChecker {
        CrlChecker {
            crls: crls
                .into_iter()
                .map(|(crl, source)| LoadedCrl { crl, source })
                .collect(),
            problems: Vec::new(),
            now: None,
        }
    }

    /// Every CRL in `paths`; the first unreadable file is an error.
    pub fn from_files(paths: &[PathBuf]) -> Result<CrlChecker, TrustError> {
        let mut all = Vec::new();
        for p in paths {
            let name = p.display().to_string();
            let data = std::fs::read(p).map_err(|e| TrustError::Input(format!("{name}: {e}")))?;
            all.extend(
                Self::parse(&data, &name)?
                    .into_iter()
                    .map(|c| (c, name.clone())),
            );
        }
        Ok(CrlChecker::new(all))
    }

    /// Like [`CrlChecker::from_files`], but an unreadable file is remembered, not fatal.
    pub fn from_files_lenient(paths: &[PathBuf]) -> CrlChecker {
        let mut checker = CrlChecker::new(Vec::new());
        for p in paths {
            let name = p.display().to_string();
            let parsed = std::fs::read(p)
                .map_err(|e| TrustError::Input(format!("{name}: {e}")))
                .and_then(|data| Self::parse(&data, &name));
            match parsed {
                Ok(crls) => checker.crls.extend(crls.into_iter().map(|crl| LoadedCrl {
                    crl,
                    source: name.clone(),
                })),
                Err(e) => checker.problems.push(e.to_string()),
            }
        }
        checker
    }

    /// Judge CRL freshness at `now` instead of the clock (tests, re-validation).
    pub fn with_now(mut self, now: OffsetDateTime) -> CrlChecker {
        self.now = Some(now);
        self
    }

    fn unknown(&self, reason: String) -> RevocationStatus {
        let mut reason = reason;
        for p in &self.problems {
            reason.push_str(&format!("; unusable CRL file: {p}"));
        }
        RevocationStatus::Unknown { reason }
    }
}

impl RevocationChecker for CrlChecker {
    fn name(&self) -> &'static str {
        "crl"
    }

    fn check(&self, cert: &X509Ref, issuer: &X509Ref, _at: OffsetDateTime) -> RevocationStatus {
        let issuer_name = subject(issuer);
        let key = match issuer.public_key() {
            Ok(k) => k,
            Err(_) => return self.unknown(format!("the key of {issuer_name:?} is unreadable")),
        };
        let mut from_issuer = 0;
        let mut verified: Vec<&LoadedCrl> = Vec::new();
        for c in &self.crls {
            let same_name = c.crl.issuer_name().try_cmp(issuer.subject_name());
            if same_name.ok() != Some(Ordering::Equal) {
                continue;
            }
            from_issuer += 1;
            if c.crl.verify(&key).unwrap_or(false) {
                verified.push(c);
            }
        }
        if verified.is_empty() {
            return self.unknown(if from_issuer == 0 {
                format!("no CRL from {issuer_name:?} among the CRL files")
            } else {
                format!(
                    "{from_issuer} CRL(s) name {issuer_name:?} as issuer, but none is signed \
                     with its key"
                )
            });
        }
        // The newest CRL decides (a later one may lift a hold).
        verified.sort_by_key(|c| std::cmp::Reverse(asn1_time(c.crl.last_update())));
        let newest = verified[0];
        let owned = cert.to_owned();
        let source = format!("CRL {}", newest.source);
        match newest.crl.get_by_cert(&owned) {
            CrlStatus::Revoked(entry) => {
                let Some(time) = asn1_time(entry.revocation_date()) else {
                    return self.unknown(format!("{source}: unreadable revocation date"));
                };
                let reason = entry
                    .extension::<ReasonCode>()
                    .ok()
                    .flatten()
                    .and_then(|(_, code)| code.get_i64().ok())
                    .and_then(reason_name)
                    .map(str::to_string);
                return RevocationStatus::Revoked {
                    time,
                    reason,
                    source,
                };
            }
            CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => {}
        }
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        match newest.crl.next_update().map(asn1_time) {
            Some(Some(next)) if next < now => self.unknown(format!(
                "{source} expired at {} (nextUpdate); a current CRL is needed",
                crate::format_time(next)
            )),
            Some(None) => self.unknown(format!("{source}: unreadable nextUpdate")),
            _ => RevocationStatus::Good { source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_crl_files_are_named() {
        assert!(CrlChecker::parse(b"", "empty").is_err());
        assert!(CrlChecker::parse(b"\x30\x03\x02\x01\x01", "der").is_err());
        let pem = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
        let e = match CrlChecker::parse(pem, "x.pem") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a 3-byte CRL parsed"),
        };
        assert!(e.contains("x.pem") && e.contains("block 1"), "{e}");
        let missing = PathBuf::from("/nonexistent/ca.crl");
        assert!(CrlChecker::from_files(std::slice::from_ref(&missing)).is_err());
        let lenient = CrlChecker::from_files_lenient(&[missing]);
        assert_eq!(lenient.problems.len(), 1);
        match lenient.unknown("x".into()) {
            RevocationStatus::Unknown { reason } => assert!(reason.contains("/nonexistent/ca.crl")),
            other => panic!("{other:?}"),
        }
    }
}
