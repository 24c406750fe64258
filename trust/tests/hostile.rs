//! Malformed and hostile input: a clear FORMAT_FAILURE (or no signature), never a panic, and
//! bounded time.
//!
//! Vectors: `shared/vectors/openssl/pkcs7-empty-digest-set.eml` (openssl/openssl
//! `test/smime-eml/`, Apache-2.0) and `shared/vectors/pyca/signed-opaque.msg`
//! (pyca/cryptography `vectors/cryptography_vectors/pkcs7/`, Apache-2.0 OR BSD-3-Clause).

mod common;

use std::time::{Duration, Instant};

use common::{anchors, read, summary, verifier};
use demail_trust::{Indication, SubIndication, ValidationModel, Verifier};

fn v() -> Verifier {
    verifier(
        anchors(&["thunderbird-smime/TestCA.pem"]),
        "2026-06-01T00:00:00Z",
        ValidationModel::Chain,
    )
}

/// A small xorshift generator: reproducible "random" input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn empty_digest_set_is_a_format_failure() {
    // The SignedData lists no digest algorithm (the vector's base64 also has one stray
    // character, which decoders drop).
    let r = v().verify_mail(&read("openssl/pkcs7-empty-digest-set.eml"));
    assert_eq!(r.signatures.len(), 1);
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::FormatFailure)),
        "{}",
        summary(&r)
    );
    assert!(s.errors[0].contains("signerInfos") || s.errors[0].contains("digest"));
}

#[test]
fn opaque_signature_without_content_is_a_format_failure() {
    let r = v().verify_mail(&read("pyca/signed-opaque.msg"));
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::FormatFailure)),
        "{}",
        summary(&r)
    );
    assert!(s.errors[0].contains("without content"), "{:?}", s.errors);
    // The signer is still identified for the report.
    assert_eq!(
        s.signer.as_ref().unwrap().email.as_deref(),
        Some("demo1@trisoft.com.pl")
    );
}

#[test]
fn every_truncation_of_real_signatures_fails_cleanly() {
    let v = v();
    for rel in [
        "dss/cades/Signature-C-DE_CRY-3.p7m",
        "thunderbird-smime/alice.sig.SHA256.opaque",
    ] {
        let full = read(rel);
        let der = if full[0] == 0x30 {
            full
        } else {
            openssl::base64::decode_block(
                &String::from_utf8(full)
                    .unwrap()
                    .lines()
                    .skip_while(|l| !l.is_empty())
                    .collect::<String>(),
            )
            .unwrap()
        };
        let start = Instant::now();
        for cut in (0..der.len()).step_by(3) {
            let r = v.verify_file(&der[..cut], "cut.p7m", None).unwrap();
            assert!(
                r.signatures
                    .iter()
                    .all(|s| s.indication != Indication::TotalPassed),
                "{rel} cut at {cut} passed"
            );
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{rel} too slow");
    }
}

#[test]
fn corrupted_bytes_never_panic_and_signed_bytes_never_pass() {
    let v = v();
    let der = read("dss/cades/Signature-C-DE_CRY-3.p7m");
    let sample = der.windows(6).position(|w| w == b"SAMPLE").unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in (0..der.len()).step_by(5) {
        let mut bad = der.clone();
        bad[i] ^= 1 << (rng.next() % 8);
        let r = v.verify_file(&bad, "bad.p7m", None).unwrap();
        if (sample..sample + 6).contains(&i) {
            assert_eq!(
                r.signatures[0].sub_indication,
                Some(SubIndication::HashFailure)
            );
        }
    }
}

#[test]
fn random_bytes_and_random_mails() {
    let v = v();
    let mut rng = Rng(42);
    let start = Instant::now();
    for round in 0..3000 {
        let len = (rng.next() % 512) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && !data.is_empty() {
            data[0] = 0x30; // looks like DER
        }
        let _ = v.verify_file(&data, "random", None);
        let _ = v.verify_mail(&data);
    }
    // Random MIME skeletons with S/MIME content types and garbage bodies.
    let types = [
        "multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b",
        "application/pkcs7-mime; smime-type=signed-data",
        "multipart/mixed; boundary=b",
        "application/pkcs7-signature",
        "message/rfc822",
    ];
    for _ in 0..2000 {
        let t = types[(rng.next() % types.len() as u64) as usize];
        let inner = types[(rng.next() % types.len() as u64) as usize];
        let junk: String = (0..(rng.next() % 200))
            .map(|_| (b'!' + (rng.next() % 90) as u8) as char)
            .collect();
        let mail = format!(
            "From: a@example.org\r\nContent-Type: {t}\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             --b\r\nContent-Type: {inner}\r\n\r\n{junk}\r\n--b\r\n\
             Content-Type: application/pkcs7-signature\r\n\r\nMIAGCSqG{junk}\r\n--b--\r\n"
        );
        let _ = v.verify_mail(mail.as_bytes());
    }
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn deep_nesting_is_bounded() {
    // 300 nested multiparts, each a level deeper, and a BER bomb.
    let mut mail = String::from("From: a@example.org\r\n");
    for i in 0..300 {
        mail.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    mail.push_str("Content-Type: text/plain\r\n\r\nx\r\n");
    let r = v().verify_mail(mail.as_bytes());
    assert!(r.signatures.is_empty());
    let mut bomb = Vec::new();
    for _ in 0..100_000 {
        bomb.extend_from_slice(&[0x30, 0x80]);
    }
    let r = v().verify_file(&bomb, "bomb.p7m", None).unwrap();
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::FormatFailure)
    );
    assert!(
        r.signatures[0].errors[0].contains("deeply"),
        "{:?}",
        r.signatures[0].errors
    );
}

#[test]
fn hostile_names_do_not_break_the_header_line() {
    // A .p7m attachment whose file name tries to inject a header field.
    let der = read("dss/cades/Signature-C-DE_CRY-3.p7m");
    let mail = format!(
        "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n\
         Content-Type: application/pkcs7-mime; name=\"a\\\"; X-Evil: 1.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        openssl::base64::encode_block(&der)
    );
    let r = v().verify_mail(mail.as_bytes());
    let h = r.signatures[0].header_value();
    assert!(!h.contains('\r') && !h.contains('\n'));
    assert!(h.ends_with("part=\"a\\\"; X-Evil: 1.p7m\""), "{h}");
}
