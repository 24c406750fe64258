//! CRL files: made by the openssl crate and by `openssl ca -gencrl` (PEM, with a reason code),
//! checked through `CrlChecker` and `from_settings(Crl, ..)`.

mod common;
mod revocation_pki;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;

use common::pki::{self, Party};
use common::summary;
use demail_trust::revocation::{CrlChecker, RevocationMode, from_settings};
use demail_trust::{
    Indication, MailReport, RevocationChecker, SubIndication, Verifier, VerifyOptions,
};
use openssl::asn1::{Asn1Object, Asn1OctetString};
use openssl::hash::MessageDigest;
use openssl::x509::{X509Crl, X509CrlBuilder, X509Extension, X509RevokedBuilder};
use revocation_pki::{Entry, asn1, index_line, issue, write_pem};
use time::Duration;

/// A CRL by `signer_key_of` in the name of `ca`, listing `revoked` (revoked a day ago),
/// with nextUpdate `next` from now.
fn crl(ca: &Party, signer_key_of: &Party, revoked: &[&Party], next: Duration) -> X509Crl {
    let mut b = X509CrlBuilder::new().unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_last_update(&asn1(Duration::hours(-2))).unwrap();
    b.set_next_update(&asn1(next)).unwrap();
    b.append_extension(authority_key_id(ca)).unwrap();
    let number = Asn1Object::from_str("2.5.29.20").unwrap();
    let one = Asn1OctetString::new_from_bytes(&[0x02, 0x01, 0x01]).unwrap();
    b.append_extension(X509Extension::new_from_der(&number, false, &one).unwrap())
        .unwrap();
    for p in revoked {
        let mut r = X509RevokedBuilder::new().unwrap();
        r.set_serial_number(p.cert.serial_number()).unwrap();
        r.set_revocation_date(&asn1(Duration::days(-1))).unwrap();
        b.add_revoked(r.build()).unwrap();
    }
    b.sign(&signer_key_of.key, MessageDigest::sha256()).unwrap();
    b.build().unwrap()
}

/// authorityKeyIdentifier (the crate's CRL builder insists on it and on a cRLNumber, as RFC
/// 5280 §5.2 does).
fn authority_key_id(ca: &Party) -> X509Extension {
    let enc = demail_trust::der::encode;
    let spki = ca.cert.public_key().unwrap().public_key_to_der().unwrap();
    let id = openssl::hash::hash(MessageDigest::sha1(), &spki).unwrap();
    let der = enc(0x30, &enc(0x80, &id));
    let oid = Asn1Object::from_str("2.5.29.35").unwrap();
    X509Extension::new_from_der(&oid, false, &Asn1OctetString::new_from_bytes(&der).unwrap())
        .unwrap()
}

fn verify(checker: Box<dyn RevocationChecker>, ca: &Party, signer: &Party) -> MailReport {
    let v = Verifier::new(vec![ca.cert.clone()], VerifyOptions::default())
        .unwrap()
        .with_revocation(checker);
    let der = pki::sign(signer, &[&ca.cert], b"Antrag auf Wohngeld", false);
    v.verify_file(&der, "antrag.p7m", None).unwrap()
}

fn checker(crls: Vec<X509Crl>) -> Box<dyn RevocationChecker> {
    Box::new(CrlChecker::new(
        crls.into_iter()
            .map(|c| (c, "test.crl".to_string()))
            .collect(),
    ))
}

fn verdict(r: &MailReport) -> (Indication, Option<SubIndication>) {
    assert_eq!(r.signatures.len(), 1, "{}", summary(r));
    assert_eq!(r.signatures[0].revocation, "crl");
    (r.signatures[0].indication, r.signatures[0].sub_indication)
}

fn parties() -> (Party, Party, Party) {
    let ca = pki::ca();
    let signer = issue(&ca, "Erika Mustermann", 0x1001, None, false);
    let other = issue(&ca, "Max Mustermann", 0x2002, None, false);
    (ca, signer, other)
}

#[test]
fn listed_is_revoked_and_unlisted_passes() {
    let (ca, signer, other) = parties();
    let r = verify(
        checker(vec![crl(&ca, &ca, &[&signer], Duration::days(7))]),
        &ca,
        &signer,
    );
    assert_eq!(
        verdict(&r),
        (Indication::TotalFailed, Some(SubIndication::Revoked)),
        "{}",
        summary(&r)
    );
    let r = verify(
        checker(vec![crl(&ca, &ca, &[&other], Duration::days(7))]),
        &ca,
        &signer,
    );
    assert_eq!(
        verdict(&r),
        (Indication::TotalPassed, None),
        "{}",
        summary(&r)
    );
}

#[test]
fn expired_crl_cannot_say_not_revoked() {
    let (ca, signer, other) = parties();
    let r = verify(
        checker(vec![crl(&ca, &ca, &[&other], Duration::hours(-1))]),
        &ca,
        &signer,
    );
    assert_eq!(
        verdict(&r),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{}",
        summary(&r)
    );
    assert!(r.signatures[0].errors.join("\n").contains("expired"));
    // A revocation entry still counts from an old CRL.
    let r = verify(
        checker(vec![crl(&ca, &ca, &[&signer], Duration::hours(-1))]),
        &ca,
        &signer,
    );
    assert_eq!(verdict(&r).1, Some(SubIndication::Revoked));
}

#[test]
fn crl_not_signed_by_the_issuer_counts_for_nothing() {
    let (ca, signer, other) = parties();
    let forger = pki::ca(); // same name, other key
    let r = verify(
        checker(vec![crl(&ca, &forger, &[&other], Duration::days(7))]),
        &ca,
        &signer,
    );
    assert_eq!(
        verdict(&r),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{}",
        summary(&r)
    );
    assert!(r.signatures[0].errors.join("\n").contains("none is signed"));
    let r = verify(checker(Vec::new()), &ca, &signer);
    assert_eq!(verdict(&r).1, Some(SubIndication::TryLater));
}

/// `openssl ca -gencrl` over an index that revokes `revoked` with a reason.
fn openssl_gencrl(dir: &Path, ca: &Party, index: &str) -> PathBuf {
    write_pem(dir, "ca", ca);
    std::fs::write(dir.join("index.txt"), index).unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 7\n",
    )
    .unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "ca.key"])
        .args(["-cert", "ca.pem", "-out", "ca.crl.pem", "-batch"])
        .output()
        .expect("openssl ca");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("ca.crl.pem")
}

#[test]
fn openssl_ca_crl_in_pem_through_from_settings() {
    let (ca, signer, other) = parties();
    let dir = tempfile::tempdir().unwrap();
    let index = index_line(
        &signer,
        &Entry::Revoked(Duration::days(-2), Some("keyCompromise")),
    ) + &index_line(&other, &Entry::Valid);
    let path = openssl_gencrl(dir.path(), &ca, &index);
    let checker = from_settings(
        RevocationMode::Crl,
        StdDuration::from_secs(1),
        std::slice::from_ref(&path),
    );
    let v = Verifier::new(vec![ca.cert.clone()], VerifyOptions::default())
        .unwrap()
        .with_revocation(checker);
    let sign = |p: &Party| pki::sign(p, &[&ca.cert], b"Antrag", false);
    let r = v.verify_file(&sign(&signer), "a.p7m", None).unwrap();
    assert_eq!(
        verdict(&r).1,
        Some(SubIndication::Revoked),
        "{}",
        summary(&r)
    );
    let errors = r.signatures[0].errors.join("\n");
    assert!(errors.contains("keyCompromise"), "{errors}");
    assert!(errors.contains("ca.crl.pem"), "{errors}");
    let r = v.verify_file(&sign(&other), "b.p7m", None).unwrap();
    assert_eq!(
        verdict(&r),
        (Indication::TotalPassed, None),
        "{}",
        summary(&r)
    );
    // The same file as DER, strictly loaded.
    let der = X509Crl::from_pem(&std::fs::read(&path).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let der_path = dir.path().join("ca.crl");
    std::fs::write(&der_path, der).unwrap();
    let strict = CrlChecker::from_files(&[der_path]).unwrap();
    let r = verify(Box::new(strict), &ca, &signer);
    assert_eq!(verdict(&r).1, Some(SubIndication::Revoked));
}

#[test]
fn ocsp_falls_back_to_crl_files() {
    // The responder named in the AIA is down; a current CRL answers instead.
    let ca = pki::ca();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let signer = issue(&ca, "Erika Mustermann", 0x1001, Some(&url), false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.crl");
    let list = crl(&ca, &ca, &[&signer], Duration::days(7));
    std::fs::write(&path, list.to_der().unwrap()).unwrap();
    let r = verify(
        from_settings(RevocationMode::Ocsp, StdDuration::from_secs(2), &[path]),
        &ca,
        &signer,
    );
    let s = &r.signatures[0];
    assert_eq!(s.revocation, "ocsp");
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::Revoked),
        "{}",
        summary(&r)
    );
    let missing = from_settings(
        RevocationMode::Ocsp,
        StdDuration::from_secs(2),
        &[dir.path().join("missing.crl")],
    );
    let r = verify(missing, &ca, &signer);
    let s = &r.signatures[0];
    assert_eq!(s.sub_indication, Some(SubIndication::TryLater));
    let errors = s.errors.join("\n");
    assert!(
        errors.contains("missing.crl") && errors.contains("OCSP"),
        "{errors}"
    );
}
