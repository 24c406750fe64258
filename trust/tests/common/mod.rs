//! Shared helpers for the crate tests: where the third-party vectors are, and verifiers with a
//! pinned clock.
#![allow(dead_code)]

pub mod pki;

use std::path::PathBuf;

use demail_trust::{MailReport, ValidationModel, Verifier, VerifyOptions};
use openssl::x509::X509;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `shared/vectors` (see its README.md for origins and licences); `DEMAIL_VECTORS` overrides.
pub fn vectors() -> PathBuf {
    let dir = std::env::var_os("DEMAIL_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
        PathBuf::from,
    );
    assert!(
        dir.join("README.md").is_file(),
        "test vectors not found at {} (set DEMAIL_VECTORS)",
        dir.display()
    );
    dir
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn t(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

pub fn anchors(rels: &[&str]) -> Vec<X509> {
    rels.iter()
        .flat_map(|r| demail_trust::load_anchors(&read(r), r).unwrap())
        .collect()
}

/// A verifier whose clock says `now`.
pub fn verifier(anchors: Vec<X509>, now: &str, model: ValidationModel) -> Verifier {
    let options = VerifyOptions {
        model,
        now: Some(t(now)),
        ..VerifyOptions::default()
    };
    Verifier::new(anchors, options).unwrap()
}

/// One line per signature, for assertion messages.
pub fn summary(r: &MailReport) -> String {
    r.signatures
        .iter()
        .map(|s| {
            format!(
                "[{} {:?} part {} errors {:?}]",
                s.indication, s.sub_indication, s.signed.section, s.errors
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
