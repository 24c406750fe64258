//! RFC 4134 "Examples of S/MIME Messages".
//!
//! Vectors: `shared/vectors/rfc4134/`, from github.com/bcgit/bc-test-data @ e619a6e4 `rfc4134/`
//! (content from RFC 4134, IETF Trust). The examples are from 1999-2002: SHA-1 with DSA-1024
//! or RSA-1024. They verify cryptographically, and our policy refuses them for exactly that
//! reason (INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE); each test states which check refuses.

mod common;

use common::{anchors, read, summary, verifier};
use demail_trust::{Indication, MailReport, SubIndication, ValidationModel, Verifier};

fn carl() -> Verifier {
    // Carl's certificates are valid 1999-2039; the examples carry no or 2002 signing times.
    verifier(
        anchors(&["rfc4134/CarlRSASelf.cer", "rfc4134/CarlDSSSelf.cer"]),
        "2026-06-01T00:00:00Z",
        ValidationModel::Chain,
    )
}

fn file(v: &Verifier, name: &str, content: Option<&str>) -> MailReport {
    let data = read(&format!("rfc4134/{name}"));
    let c = content.map(|c| read(&format!("rfc4134/{c}")));
    v.verify_file(&data, name, c.as_deref().map(|c| (c, "ExContent.bin")))
        .unwrap()
}

/// Refused only by the algorithm policy: chain found, crypto fine, weak algorithms named.
fn assert_weak_only(r: &MailReport, name: &str, signer: &str, reasons: &[&str]) {
    let s = &r.signatures[0];
    assert_eq!(
        s.indication,
        Indication::Indeterminate,
        "{name}: {}",
        summary(r)
    );
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
    assert_eq!(
        s.signer.as_ref().and_then(|x| x.common_name.as_deref()),
        Some(signer)
    );
    assert_eq!(s.chain.len(), 2, "{name}: path to Carl");
    for e in &s.errors {
        assert!(
            reasons.iter().any(|r| e.contains(r)),
            "{name}: unexpected error {e:?}"
        );
    }
    for r in reasons {
        assert!(
            s.errors.iter().any(|e| e.contains(r)),
            "{name}: {r} not named"
        );
    }
}

#[test]
fn dsa_sha1_examples_are_refused_by_policy() {
    let v = carl();
    for name in ["4.1.bin", "4.4.bin", "4.7.bin", "4.10.bin"] {
        let r = file(&v, name, None);
        assert_eq!(r.signatures.len(), 1, "{name}");
        assert_weak_only(&r, name, "AliceDSS", &["sha1", "DSA"]);
    }
    let detached = file(&v, "4.3.bin", Some("ExContent.bin"));
    assert_weak_only(&detached, "4.3.bin", "AliceDSS", &["sha1", "DSA"]);
}

#[test]
fn rsa_1024_sha1_examples_are_refused_by_policy() {
    let v = carl();
    for name in ["4.2.bin", "4.5.bin"] {
        let r = file(&v, name, None);
        assert_weak_only(&r, name, "AliceRSA", &["sha1", "1024 bits"]);
    }
}

#[test]
fn detached_without_content_and_with_wrong_content() {
    let v = carl();
    let r = file(&v, "4.3.bin", None);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::SignedDataNotFound)
    );
    // 4.3 has no signed attributes: the signature is over the content itself, so a wrong
    // content and a wrong signature value cannot be told apart.
    let r = file(&v, "4.3.bin", Some("4.1.bin"));
    assert_eq!(r.signatures[0].indication, Indication::TotalFailed);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::SigCryptoFailure)
    );
}

#[test]
fn two_signers_get_two_verdicts() {
    // 4.6: Alice (DSA) and Diane, whose DSA key inherits its parameters from Carl
    // (RFC 3279 §2.3.2). OpenSSL cannot use such a key, so Diane's signature value cannot be
    // verified at all: TOTAL_FAILED/SIG_CRYPTO_FAILURE. Alice's is refused by policy only.
    let r = file(&carl(), "4.6.bin", None);
    assert_eq!(r.signatures.len(), 2, "{}", summary(&r));
    assert_weak_only(
        &MailReport {
            signatures: vec![r.signatures[0].clone()],
            notes: Vec::new(),
        },
        "4.6.bin",
        "AliceDSS",
        &["sha1", "DSA"],
    );
    let diane = &r.signatures[1];
    assert_eq!(
        diane.signer.as_ref().and_then(|x| x.common_name.as_deref()),
        Some("DianeDSS")
    );
    assert_eq!(diane.indication, Indication::TotalFailed);
    assert_eq!(diane.sub_indication, Some(SubIndication::SigCryptoFailure));
}

#[test]
fn certificates_only_has_no_signature() {
    let r = file(&carl(), "4.11.bin", None);
    assert_eq!(r.signatures[0].indication, Indication::NoSignatureFound);
    assert_eq!(r.indication(), Indication::NoSignatureFound);
}

#[test]
fn mails_4_8_and_4_9() {
    // Besides the weak algorithms, these mails are From aliceDss@examples.com while Alice's
    // certificate says AliceDSS@example.com: RFC 8550 §3 fails too (a constraint, so the
    // algorithm refusal found first decides).
    let v = carl();
    for name in ["4.8.eml", "4.9.eml"] {
        let r = v.verify_mail(&read(&format!("rfc4134/{name}")));
        assert_eq!(r.signatures.len(), 1, "{name}");
        assert_weak_only(&r, name, "AliceDSS", &["sha1", "DSA", "RFC 8550"]);
    }
}
