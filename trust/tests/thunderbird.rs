//! Thunderbird's own S/MIME test mails and its expectations.
//!
//! Vectors: `shared/vectors/thunderbird-smime/` and `thunderbird-smime-manual/`, from
//! mozilla/releases-comm-central @ cf9726f5 `mailnews/test/data/smime/` (MPL-2.0);
//! `EXPECTED-thunderbird.tsv` copies `mailnews/mime/test/unit/test_smime_decrypt.js`.
//! Anchor: the NSS test CA (`TestCA.pem`), revocation off (Thunderbird checks none for these).
//!
//! A message counts as "signature good" when at least one signature was found and every one
//! is TOTAL_PASSED. Thunderbird's extra checks map to ours: SHA-1 is refused
//! (CRYPTO_CONSTRAINTS_FAILURE), a signing time more than an hour from the Date field and a
//! signer certificate for another address than From are SIG_CONSTRAINTS_FAILURE.

mod common;

use common::{anchors, read, summary, vectors, verifier};
use demail_trust::{Indication, SubIndication, ValidationModel, Verifier};

const NOW: &str = "2026-06-01T00:00:00Z";

struct Row {
    file: String,
    sig_good: bool,
    dave: bool,
}

fn rows() -> Vec<Row> {
    let tsv = String::from_utf8(read("thunderbird-smime/EXPECTED-thunderbird.tsv")).unwrap();
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[1] == "false" && f[2] == "true") // signed, not encrypted
        .map(|f| Row {
            file: f[0].replace("../smime-manual/", "../thunderbird-smime-manual/"),
            sig_good: f[3] == "true",
            dave: f.get(5) == Some(&"1"),
        })
        .collect()
}

fn tb() -> Verifier {
    verifier(
        anchors(&["thunderbird-smime/TestCA.pem"]),
        NOW,
        ValidationModel::Chain,
    )
}

fn mail(file: &str) -> Vec<u8> {
    read(&format!("thunderbird-smime/{file}"))
}

#[test]
fn every_signed_unencrypted_message_agrees_with_thunderbird() {
    let rows = rows();
    assert_eq!(
        rows.len(),
        42,
        "rows of EXPECTED-thunderbird.tsv under test"
    );
    let v = tb();
    for row in &rows {
        let report = v.verify_mail(&mail(&row.file));
        let s = &report.signatures;
        assert!(!s.is_empty(), "{}: no signature found", row.file);
        let good = s.iter().all(|r| r.indication == Indication::TotalPassed);
        assert_eq!(good, row.sig_good, "{}: {}", row.file, summary(&report));
        let outer = s[0].signer.as_ref().and_then(|x| x.common_name.clone());
        if s[0].signer.is_some() {
            let expected = if row.dave { "Dave" } else { "Alice" };
            assert_eq!(outer.as_deref(), Some(expected), "{}", row.file);
        }
    }
}

#[test]
fn failures_carry_the_fitting_sub_indication() {
    let v = tb();
    for row in rows().iter().filter(|r| !r.sig_good) {
        let report = v.verify_mail(&mail(&row.file));
        let subs: Vec<_> = report
            .signatures
            .iter()
            .filter_map(|r| r.sub_indication)
            .collect();
        let f = &row.file;
        let expected = if f.contains(".bad.") || f.contains("mismatch-econtent") {
            // the signed body (or the enclosed content) was changed
            SubIndication::HashFailure
        } else if f.contains("env.mixed") {
            // hand-made: an extra layer was inserted into the signed part
            SubIndication::HashFailure
        } else if f.contains("SHA1") {
            SubIndication::CryptoConstraintsFailure
        } else if f.contains("future") {
            SubIndication::SigConstraintsFailure
        } else if f.contains("alice.env.dsig") {
            // NSS's detached signature over the encrypted part does not verify (OpenSSL agrees)
            SubIndication::HashFailure
        } else {
            // Alice's inner signature in a mail From Dave
            SubIndication::SigConstraintsFailure
        };
        assert!(
            subs.contains(&expected),
            "{f}: expected {expected}, got {}",
            summary(&report)
        );
    }
}

#[test]
fn why_the_special_ones_fail() {
    let v = tb();
    let future = v.verify_mail(&mail("alice.future.dsig.SHA256.multipart.eml"));
    let e = &future.signatures[0].errors;
    assert!(
        e.len() == 1 && e[0].contains("Date") && e[0].contains("2026-01-26T20:38:03Z"),
        "{e:?}"
    );
    let nested = v.verify_mail(&mail(
        "alice.plain.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml",
    ));
    assert_eq!(nested.signatures.len(), 2, "{}", summary(&nested));
    assert_eq!(nested.signatures[0].indication, Indication::TotalPassed);
    assert_eq!(nested.signatures[1].signed.section, "1/1");
    assert!(
        nested.signatures[1].errors[0].contains("dave@example.com"),
        "{:?}",
        nested.signatures[1].errors
    );
    // Opaque inside opaque is not unwrapped (as Thunderbird): one signature, and a note.
    let blob = v.verify_mail(&mail(
        "alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml",
    ));
    assert_eq!(blob.signatures.len(), 1);
    assert!(blob.notes[0].contains("not unwrapped"), "{:?}", blob.notes);
}

#[test]
fn good_signature_report_contents() {
    let v = tb();
    let r = v.verify_mail(&mail("alice.dsig.SHA256.multipart.eml"));
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed);
    assert_eq!(s.sub_indication, None);
    assert_eq!(s.qualification.as_str(), "N/A");
    let signer = s.signer.as_ref().unwrap();
    assert_eq!(signer.email.as_deref(), Some("Alice@example.com"));
    assert_eq!(s.chain.len(), 2);
    assert_eq!(s.digest_algorithm.as_deref(), Some("sha256"));
    assert_eq!(
        s.header_value(),
        "indication=TOTAL_PASSED; sub-indication=none; qualification=N/A; \
         signer=\"Alice <Alice@example.com>\"; signing-time=2026-01-26T14:40:10Z; part=\"1\""
    );
    let json = serde_json::to_value(s).unwrap();
    for key in [
        "indication",
        "sub_indication",
        "qualification",
        "signer",
        "signing_time",
    ] {
        assert!(json.get(key).is_some(), "JSON lacks {key}");
    }
    assert_eq!(json["signing_time"], "2026-01-26T14:40:10Z");
    assert_eq!(json["sub_indication"], serde_json::Value::Null);
}

#[test]
fn signed_bytes_are_exact_and_line_ends_canonical() {
    let v = tb();
    let lf = mail("alice.dsig.SHA256.multipart.eml");
    // The file mixes LF and CRLF; as SMTP carries it (CRLF only) it verifies the same.
    let crlf: Vec<u8> = String::from_utf8(lf.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes();
    for m in [&lf, &crlf] {
        assert_eq!(v.verify_mail(m).indication(), Indication::TotalPassed);
    }
    // One changed byte in the signed text: HASH_FAILURE.
    let text = String::from_utf8(crlf).unwrap();
    let pos = text.find("This is a test message").unwrap();
    let mut bad = text.into_bytes();
    bad[pos] = b't';
    let r = v.verify_mail(&bad);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
}

#[test]
fn without_the_anchor_there_is_no_chain() {
    let v = verifier(Vec::new(), NOW, ValidationModel::Chain);
    let r = v.verify_mail(&mail("alice.sig.SHA256.opaque.eml"));
    assert_eq!(r.signatures[0].indication, Indication::Indeterminate);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
}

#[test]
fn shell_model_agrees_while_everything_is_valid() {
    let v = verifier(
        anchors(&["thunderbird-smime/TestCA.pem"]),
        NOW,
        ValidationModel::Shell,
    );
    for row in rows() {
        let good = v
            .verify_mail(&mail(&row.file))
            .signatures
            .iter()
            .all(|r| r.indication == Indication::TotalPassed);
        assert_eq!(good, row.sig_good, "{}", row.file);
    }
    assert!(vectors().join("thunderbird-smime").is_dir());
}
