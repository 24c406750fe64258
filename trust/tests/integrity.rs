//! `X-de-mail-integrity`: sign/verify round trips with real OpenSSL keys, the failures
//! EN 319 102-1 names, DKIM field rules as TR-01201 changes them, and robustness.

use std::sync::OnceLock;

use demail_provider_sim::pki::TestPki;
use demail_trust::integrity::{self, Alg, HashAlg, IntegrityError, SigAlg};
use demail_trust::{Indication, SubIndication};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

/// A De-Mail as a provider sends it (LF line ends, as read from a file), with fields in
/// another order than `h=` and a field that is not signed (To).
const MAIL: &str = "\
Received: from gw.example (gw.example [192.0.2.1])\n\
To: buerger@example.de-mail.de\n\
Subject: Bescheid =?UTF-8?Q?=C3=BCber?= Ihren Antrag\n\
From: Stadt Musterstadt <poststelle@musterstadt.de-mail.de>\n\
Date: Mon, 23 Nov 2026 10:00:00 +0100\n\
Message-ID: <1@musterstadt.example>\n\
X-de-mail-confirmation-of-retrieve: yes\n\
X-de-mail-authoritative: yes\n\
X-de-mail-sender: poststelle@musterstadt.de-mail.de\n\
X-de-mail-chosen-recipient: to=buerger@example.de-mail.de\n\
X-de-mail-private-id: AZ-2026-0001\n\
X-de-mail-message-id: 42@provider.example\n\
X-de-mail-message-type: normal\n\
X-de-mail-version: 1.8\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Sehr geehrte Damen und Herren,\n\
\n\
anbei der Bescheid.\n\
\n\
\n";

struct Signer {
    key: PKey<Private>,
    cert: X509,
}

/// The provider simulator's qualified test certificate (RSA) and its CA.
fn qualified() -> &'static (Signer, X509) {
    static PKI: OnceLock<(Signer, X509)> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path()).unwrap();
        let issued = pki
            .issue_qualified("provider-sign", "De-Mail Test Provider Signatur")
            .unwrap();
        let cert = X509::from_pem(&std::fs::read(&issued.cert).unwrap()).unwrap();
        let key = PKey::private_key_from_pem(&std::fs::read(&issued.key).unwrap()).unwrap();
        let ca = X509::from_pem(&std::fs::read(&pki.ca_cert).unwrap()).unwrap();
        (Signer { key, cert }, ca)
    })
}

/// A self-signed P-256 signer.
fn ec_signer() -> Signer {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "EC Provider").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Signer {
        key,
        cert: b.build(),
    }
}

fn rsa_sign(alg: Alg) -> Vec<u8> {
    let (s, _) = qualified();
    integrity::sign(MAIL.as_bytes(), &s.key, &s.cert, alg).unwrap()
}

fn sha256_rsa() -> Alg {
    Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::Rsa,
    }
}

fn text(m: &[u8]) -> String {
    String::from_utf8(m.to_vec()).unwrap()
}

fn outcome(m: &[u8]) -> (Indication, Option<SubIndication>) {
    let r = integrity::verify(m);
    (r.indication, r.sub_indication)
}

const PASSED: (Indication, Option<SubIndication>) = (Indication::TotalPassed, None);

fn failed(sub: SubIndication) -> (Indication, Option<SubIndication>) {
    (Indication::TotalFailed, Some(sub))
}

#[test]
fn round_trip_every_algorithm() {
    let hashes = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
    let ec = ec_signer();
    for hash in hashes {
        for sig in [SigAlg::Rsa, SigAlg::RsassaPss, SigAlg::EcDsa] {
            let alg = Alg { hash, sig };
            let signed = match sig {
                SigAlg::EcDsa => integrity::sign(MAIL.as_bytes(), &ec.key, &ec.cert, alg).unwrap(),
                _ => rsa_sign(alg),
            };
            let r = integrity::verify(&signed);
            assert_eq!((r.indication, r.sub_indication), PASSED, "{alg}: {r:?}");
            assert!(r.signed);
            assert_eq!(r.algorithm.as_deref(), Some(alg.to_string().as_str()));
            let expected_cert = match sig {
                SigAlg::EcDsa => &ec.cert,
                _ => &qualified().0.cert,
            };
            assert_eq!(r.signer_certificate, Some(expected_cert.to_der().unwrap()));
            // The field is a well-formed, folded header line: every line under 78 chars.
            let t = text(&signed);
            let header = &t[..t.find("\r\n\r\n").unwrap()];
            assert!(header.lines().all(|l| l.len() <= 78), "{header}");
        }
    }
}

#[test]
fn tags_and_signed_fields_follow_the_tr() {
    let signed = rsa_sign(sha256_rsa());
    let r = integrity::verify(&signed);
    assert_eq!(
        r.signed_fields,
        [
            "From",
            "Date",
            "Message-ID",
            "Subject",
            "X-de-mail-confirmation-of-retrieve",
            "X-de-mail-authoritative",
            "X-de-mail-sender",
            "X-de-mail-chosen-recipient",
            "X-de-mail-message-type",
            "X-de-mail-version",
            "X-de-mail-private-id",
            "X-de-mail-message-id",
        ]
    );
    assert!(
        r.signer_subject
            .as_deref()
            .unwrap()
            .starts_with("CN=De-Mail Test Provider Signatur")
    );
    let value = r.integrity_value.unwrap();
    assert!(value.starts_with("v=1; a=sha256/rsa; c=simple/simple; q=x-header/x-de-mail-signature-certificate; h=From:Date:"), "{value}");
    assert!(!value.contains('\r') && !value.contains('\n'));
    // The two fields are on top, integrity first; the certificate is the signer's.
    let t = text(&signed);
    assert!(t.starts_with("X-de-mail-integrity: v=1;"));
    let cert_at = t.find("\r\nX-de-mail-signature-certificate:").unwrap();
    assert!(cert_at < t.find("\r\nReceived:").unwrap());
}

#[test]
fn one_flipped_body_byte_is_a_hash_failure() {
    let signed = rsa_sign(sha256_rsa());
    let at = text(&signed).find("anbei").unwrap();
    let mut m = signed.clone();
    m[at] ^= 0x20; // 'a' -> 'A'
    assert_eq!(outcome(&m), failed(SubIndication::HashFailure));
    // An appended line is a change too; appended empty lines are not (simple body).
    let mut more = signed.clone();
    more.extend_from_slice(b"P.S.\r\n");
    assert_eq!(outcome(&more), failed(SubIndication::HashFailure));
    let mut blank = signed;
    blank.extend_from_slice(b"\r\n\r\n");
    assert_eq!(outcome(&blank), PASSED);
}

#[test]
fn a_changed_signed_field_is_a_signature_failure() {
    let signed = text(&rsa_sign(sha256_rsa()));
    for (from, to) in [
        ("Subject: Bescheid", "Subject: Beschied"),
        (
            "X-de-mail-authoritative: yes",
            "X-de-mail-authoritative: no ",
        ),
        ("AZ-2026-0001", "AZ-2026-0002"),
        (
            "Date: Mon, 23 Nov 2026 10:00:00",
            "Date: Mon, 23 Nov 2026 10:00:01",
        ),
    ] {
        let m = signed.replacen(from, to, 1);
        assert_ne!(m, signed);
        assert_eq!(
            outcome(m.as_bytes()),
            failed(SubIndication::SigCryptoFailure),
            "{from}"
        );
    }
    // Another tag changed inside the integrity field itself (it signs itself, b= aside).
    let m = signed.replacen("v=1; a=", "v=1;  a=", 1);
    assert_ne!(m, signed);
    assert_eq!(
        outcome(m.as_bytes()),
        failed(SubIndication::SigCryptoFailure)
    );
}

#[test]
fn unsigned_fields_may_change() {
    let signed = text(&rsa_sign(sha256_rsa()));
    let m = signed.replacen("To: buerger@", "To: jemand@", 1);
    let m = format!("Received: from mx.city.example by gw\r\nReturn-Path: <x@y>\r\n{m}");
    let m = m.replacen(
        "MIME-Version: 1.0\r\n",
        "MIME-Version: 1.0\r\nX-DeMail-Verified: no\r\n",
        1,
    );
    assert_eq!(outcome(m.as_bytes()), PASSED);
}

#[test]
fn field_order_and_case_rules() {
    let signed = text(&rsa_sign(sha256_rsa()));
    // Names match case-insensitively: a provider writing `subject:` gets it signed (h= uses
    // the TR spelling) ...
    let (s, _) = qualified();
    let lower_mail = MAIL.replacen("\nSubject:", "\nsubject:", 1);
    let lower = integrity::sign(lower_mail.as_bytes(), &s.key, &s.cert, sha256_rsa()).unwrap();
    let r = integrity::verify(&lower);
    assert_eq!((r.indication, r.sub_indication), PASSED);
    assert!(r.signed_fields.contains(&"Subject".to_string()));
    // ... but `simple` hashes the field as it is, so changing the case afterwards breaks it.
    let recased = text(&lower).replacen("\r\nsubject:", "\r\nSubject:", 1);
    assert_eq!(
        outcome(recased.as_bytes()),
        failed(SubIndication::SigCryptoFailure)
    );
    // Moving a signed field within the header changes nothing: h= fixes the order.
    let date = "Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n";
    let moved =
        signed
            .replacen(date, "", 1)
            .replacen("MIME-Version:", &format!("{date}MIME-Version:"), 1);
    assert_eq!(outcome(moved.as_bytes()), PASSED);
    // The topmost instance counts: a second Subject below is ignored, one above is used.
    let below = signed.replacen("MIME-Version:", "Subject: Fake\r\nMIME-Version:", 1);
    assert_eq!(outcome(below.as_bytes()), PASSED);
    let above = format!("Subject: Fake\r\n{signed}");
    assert_eq!(
        outcome(above.as_bytes()),
        failed(SubIndication::SigCryptoFailure)
    );
    // Values are compared byte for byte (simple): re-folding a field breaks it.
    let refolded = signed.replacen("Subject: Bescheid ", "Subject: Bescheid\r\n ", 1);
    assert_eq!(
        outcome(refolded.as_bytes()),
        failed(SubIndication::SigCryptoFailure)
    );
    // A field added that h= lists but the signer did not have (Reply-To) is not covered
    // when absent at signing: DKIM semantics (absent names are not listed).
    let reply = signed.replacen("MIME-Version:", "Reply-To: x@y\r\nMIME-Version:", 1);
    assert_eq!(outcome(reply.as_bytes()), PASSED);
}

#[test]
fn line_end_conversions_on_the_way_are_harmless() {
    // What Postfix does: LF in its queue, CRLF again on the wire, a Received on top.
    let signed = text(&rsa_sign(sha256_rsa()));
    let lf = signed.replace("\r\n", "\n");
    assert_eq!(outcome(lf.as_bytes()), PASSED);
    let relayed = format!("Received: from localhost by mail.city.example\n\tfor <x@y>; now\n{lf}");
    assert_eq!(outcome(relayed.as_bytes()), PASSED);
    assert_eq!(outcome(relayed.replace('\n', "\r\n").as_bytes()), PASSED);
}

#[test]
fn hash_only() {
    let sealed = integrity::hash_only(MAIL.as_bytes(), HashAlg::Sha512).unwrap();
    let r = integrity::verify(&sealed);
    assert_eq!((r.indication, r.sub_indication), PASSED, "{r:?}");
    assert!(!r.signed);
    assert_eq!(r.algorithm.as_deref(), Some("sha512"));
    assert!(r.signer_certificate.is_none());
    let t = text(&sealed);
    assert!(!t.contains("X-de-mail-signature-certificate") && !t.contains("q="));
    let subject = t.replacen("Subject: Bescheid", "Subject: Beschied", 1);
    assert_eq!(
        outcome(subject.as_bytes()),
        failed(SubIndication::HashFailure)
    );
    let body = t.replacen("anbei", "Anbei", 1);
    assert_eq!(outcome(body.as_bytes()), failed(SubIndication::HashFailure));
}

#[test]
fn certificate_problems() {
    let signed = text(&rsa_sign(sha256_rsa()));
    let start = signed.find("X-de-mail-signature-certificate:").unwrap();
    let end = start + signed[start..].find("\r\nReceived:").unwrap() + 2;
    let without = format!("{}{}", &signed[..start], &signed[end..]);
    let r = integrity::verify(without.as_bytes());
    assert_eq!(
        (r.indication, r.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoSigningCertificateFound)
        )
    );
    // Another certificate (an attacker's, with its own key) does not verify.
    let ec = ec_signer();
    let other = openssl::base64::encode_block(&ec.cert.to_der().unwrap());
    let swapped = format!(
        "{}X-de-mail-signature-certificate: {other}\r\n{}",
        &signed[..start],
        &signed[end..]
    );
    assert_eq!(
        outcome(swapped.as_bytes()),
        failed(SubIndication::SigCryptoFailure)
    );
    // An unreadable certificate is a format failure.
    let junk = format!(
        "{}X-de-mail-signature-certificate: AAAA\r\n{}",
        &signed[..start],
        &signed[end..]
    );
    assert_eq!(
        outcome(junk.as_bytes()),
        failed(SubIndication::FormatFailure)
    );
}

#[test]
fn malformed_tags_are_format_failures() {
    let signed = text(&rsa_sign(sha256_rsa()));
    for (from, to) in [
        ("c=simple/simple", "c=relaxed/relaxed"),
        ("v=1;", "v=2;"),
        ("v=1;", "v=1; v=1;"),
        ("a=sha256/rsa", "a=sha1/rsa"),
        ("a=sha256/rsa", "a=sha256/dsa"),
        ("q=x-header/x-de-mail-signature-certificate", "q=dns/txt"),
        ("bh=", "xbh="),
        ("h=From:", "h=From:From:"),
        ("h=From:", "h=:"),
        ("v=1;", "v=1;;"),
        ("v=1;", "v=1; 9x=1;"),
    ] {
        let m = signed.replacen(from, to, 1);
        assert_ne!(m, signed, "{from}");
        let r = integrity::verify(m.as_bytes());
        assert_eq!(
            (r.indication, r.sub_indication),
            failed(SubIndication::FormatFailure),
            "{to}: {r:?}"
        );
        assert!(r.reason.unwrap().contains("X-de-mail-integrity"));
    }
    // h= without From.
    let no_from = signed.replacen("h=From:", "h=", 1);
    assert_eq!(
        outcome(no_from.as_bytes()),
        failed(SubIndication::FormatFailure)
    );
    // No field at all.
    let r = integrity::verify(MAIL.as_bytes());
    assert_eq!(r.indication, Indication::NoSignatureFound);
}

#[test]
fn signing_refuses_what_it_cannot_do() {
    let (s, _) = qualified();
    let ec = ec_signer();
    let ecdsa = Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::EcDsa,
    };
    assert!(matches!(
        integrity::sign(MAIL.as_bytes(), &s.key, &s.cert, ecdsa),
        Err(IntegrityError::KeyType { .. })
    ));
    assert!(matches!(
        integrity::sign(MAIL.as_bytes(), &ec.key, &s.cert, ecdsa),
        Err(IntegrityError::KeyMismatch)
    ));
    assert!(matches!(
        integrity::sign(b"Subject: x\r\n\r\nbody", &s.key, &s.cert, sha256_rsa()),
        Err(IntegrityError::NoFrom)
    ));
    assert!(matches!(
        integrity::sign(b" bad\r\n\r\n", &s.key, &s.cert, sha256_rsa()),
        Err(IntegrityError::Message(_))
    ));
}

/// Random bytes, every truncation and byte flips of a signed message: a report, never a
/// panic; a truncated signed message never passes.
#[test]
fn hostile_input() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 512) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = integrity::verify(&data);
        let mut prefixed = b"X-de-mail-integrity: v=1; a=sha256; h=From; bh=".to_vec();
        prefixed.extend_from_slice(&data);
        let _ = integrity::verify(&prefixed);
    }
    let signed = rsa_sign(sha256_rsa());
    // `simple` adds a missing final CRLF, so only cuts before the last line's text count.
    let last_line = "Bescheid.";
    let body_end = text(&signed).find(last_line).unwrap() + last_line.len();
    for cut in (0..signed.len()).step_by(7) {
        let r = integrity::verify(&signed[..cut]);
        // Cutting off only trailing empty lines of the body is allowed by `simple`.
        if cut < body_end {
            assert_ne!(r.indication, Indication::TotalPassed, "cut at {cut}");
        }
    }
    for _ in 0..2000 {
        let mut m = signed.clone();
        let i = (next() as usize) % m.len();
        m[i] ^= 1 << (next() % 8);
        let _ = integrity::verify(&m);
    }
    // Bounded: a huge header is refused quickly, not hashed field by field.
    let many = format!("{}\r\n\r\nx", "X-A: b\r\n".repeat(100_000));
    let r = integrity::verify(many.as_bytes());
    assert_eq!(r.sub_indication, Some(SubIndication::FormatFailure));
}
