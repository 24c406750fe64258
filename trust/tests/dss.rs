//! CAdES test data of the EU DSS validator, among them real German qualified signatures.
//!
//! Vectors: `shared/vectors/dss/cades/`, from github.com/esig/dss @ d9473b8e (LGPL-2.1; source
//! paths in `dss/ORIGIN-PATHS.txt`).

mod common;

use common::{read, summary, t, verifier};
use demail_trust::{
    Indication, MailReport, QcStatements, SignatureKind, SubIndication, ValidationModel, Verifier,
    VerifyOptions,
};
use openssl::x509::X509;

const DE_CRY_3: &str = "dss/cades/Signature-C-DE_CRY-3.p7m";
const DE_CRY_4: &str = "dss/cades/Signature-C-DE_CRY-4.p7m";

/// The certificate named `cn` from inside a CMS file.
fn cert_from(rel: &str, cn: &str) -> X509 {
    demail_trust::certificates_in_cms(&read(rel))
        .unwrap()
        .into_iter()
        .find(|c| {
            c.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .any(|e| e.data().to_string().is_ok_and(|s| s == cn))
        })
        .unwrap_or_else(|| panic!("{cn} not in {rel}"))
}

fn dtrust_root() -> X509 {
    cert_from(DE_CRY_3, "D-TRUST Qualified Root CA 1 2008:PN")
}

/// Validating at 2014-11-13T10:40:00Z, six minutes after the signature, as the facts say.
fn at_signing(model: ValidationModel) -> Verifier {
    let options = VerifyOptions {
        model,
        at: Some(t("2014-11-13T10:40:00Z")),
        now: Some(t("2026-06-01T00:00:00Z")),
        ..VerifyOptions::default()
    };
    Verifier::new(vec![dtrust_root()], options).unwrap()
}

fn file(v: &Verifier, rel: &str) -> MailReport {
    v.verify_file(&read(rel), rel, None).unwrap()
}

#[test]
fn german_qes_passes_under_the_chain_model() {
    for rel in [DE_CRY_3, DE_CRY_4] {
        let r = file(&at_signing(ValidationModel::Chain), rel);
        assert_eq!(r.signatures.len(), 1);
        let s = &r.signatures[0];
        assert_eq!(
            s.indication,
            Indication::TotalPassed,
            "{rel}: {}",
            summary(&r)
        );
        assert_eq!(
            s.signer.as_ref().and_then(|x| x.common_name.as_deref()),
            Some("Matthias Schlede")
        );
        let signed_at = if rel == DE_CRY_3 {
            "2014-11-13T10:34:20Z"
        } else {
            "2014-11-13T10:37:50Z"
        };
        assert_eq!(s.signing_time, Some(t(signed_at)));
        assert_eq!(
            s.chain.len(),
            3,
            "leaf, D-TRUST Qualified CA 1 2008:PN, root"
        );
        // QESig needs the trusted list (part 2); without it DSS says N/A.
        assert_eq!(s.qualification.as_str(), "N/A");
        assert!(
            s.qualification_note
                .as_ref()
                .unwrap()
                .contains("trusted list")
        );
        // The 2011 certificate states QcCompliance but not QcSSCD (pre-eIDAS German
        // certificates left the SSCD to the supervisory list).
        let qc = s.qc_statements.as_ref().unwrap();
        assert_eq!(
            qc,
            &QcStatements {
                compliance: true,
                retention_years: Some(30),
                ..QcStatements::default()
            }
        );
        assert_eq!(s.certificate_claim.unwrap().as_str(), "AdESig-QC");
        // CAdES-T: the timestamp is an unsigned attribute, not evaluated yet.
        assert!(s.warnings.iter().any(|w| w.contains("unsigned attributes")));
    }
}

#[test]
fn german_qes_fails_under_the_shell_model_because_the_ca_expired() {
    for rel in [DE_CRY_3, DE_CRY_4] {
        let r = file(&at_signing(ValidationModel::Shell), rel);
        let s = &r.signatures[0];
        assert_eq!(s.indication, Indication::Indeterminate, "{rel}");
        assert_eq!(s.sub_indication, Some(SubIndication::OutOfBoundsNoPoe));
        assert!(
            s.errors[0].contains("D-TRUST Qualified CA 1 2008:PN")
                && s.errors[0].contains("expired 2013-07-24"),
            "{:?}",
            s.errors
        );
        assert_eq!(s.qualification.as_str(), "N/A");
    }
}

#[test]
fn a_claimed_signing_time_does_not_rescue_an_expired_certificate() {
    // Without --at the validation time is the signer's claim; the leaf expired in 2015, and
    // nothing proves the signature existed before: OUT_OF_BOUNDS_NO_POE (as DSS).
    let v = verifier(
        vec![dtrust_root()],
        "2026-06-01T00:00:00Z",
        ValidationModel::Chain,
    );
    let s = &file(&v, DE_CRY_3).signatures[0];
    assert_eq!(s.sub_indication, Some(SubIndication::OutOfBoundsNoPoe));
    assert!(s.errors[0].contains("only claimed"), "{:?}", s.errors);
    // Validated "now" (2026) with --at, the leaf itself is out of bounds.
    let options = VerifyOptions {
        at: Some(t("2026-06-01T00:00:00Z")),
        ..VerifyOptions::default()
    };
    let v = Verifier::new(vec![dtrust_root()], options).unwrap();
    let s = &file(&v, DE_CRY_3).signatures[0];
    assert_eq!(s.sub_indication, Some(SubIndication::OutOfBoundsNoPoe));
    assert!(s.errors[0].contains("Matthias Schlede"), "{:?}", s.errors);
}

#[test]
fn before_the_certificate_existed_is_a_failure() {
    let options = VerifyOptions {
        at: Some(t("2010-01-01T00:00:00Z")),
        ..VerifyOptions::default()
    };
    let v = Verifier::new(vec![dtrust_root()], options).unwrap();
    let s = &file(&v, DE_CRY_3).signatures[0];
    assert_eq!(s.indication, Indication::TotalFailed);
    assert_eq!(s.sub_indication, Some(SubIndication::NotYetValid));
}

#[test]
fn the_qes_as_a_mail_attachment() {
    let p7m = read(DE_CRY_3);
    let mail = format!(
        "From: buerger@example.org\r\nTo: poststelle@magdeburg.example\r\nSubject: Antrag\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nAnbei mein Antrag.\r\n\
         --b1\r\nContent-Type: application/pkcs7-mime; name=\"antrag.txt.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"antrag.txt.p7m\"\r\n\r\n{}\r\n--b1--\r\n",
        openssl::base64::encode_block(&p7m)
    );
    let r = at_signing(ValidationModel::Chain).verify_mail(mail.as_bytes());
    assert_eq!(r.signatures.len(), 1, "{}", summary(&r));
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{}", summary(&r));
    assert_eq!(s.signed.kind, SignatureKind::EnvelopingAttachment);
    assert_eq!(s.signed.section, "2");
    assert!(s.header_value().ends_with("part=\"antrag.txt.p7m\""));
}

#[test]
fn detached_qes_with_its_document() {
    // Belgian QES (Certipost), 2013, detached over screenshot.png. Its CA certificates are
    // signed with SHA-1, which our policy refuses; the content must match nonetheless.
    let sig = read("dss/cades/screenshot.png.signed_qes_detached.p7s");
    let png = read("dss/cades/screenshot.png");
    let root = cert_from(
        "dss/cades/screenshot.png.signed_qes_detached.p7s",
        "GTE CyberTrust Global Root",
    );
    let options = |model| VerifyOptions {
        model,
        at: Some(t("2013-08-14T16:00:00Z")),
        ..VerifyOptions::default()
    };
    let v = Verifier::new(vec![root.clone()], options(ValidationModel::Shell)).unwrap();
    let r = v
        .verify_file(&sig, "s.p7s", Some((&png, "screenshot.png")))
        .unwrap();
    let s = &r.signatures[0];
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
    // SHA-1 certificate signatures and the 1024-bit GTE root, nothing else.
    assert!(
        s.errors
            .iter()
            .all(|e| e.contains("sha1") || e.contains("1024 bits")),
        "{:?}",
        s.errors
    );
    assert_eq!(s.chain.len(), 4);
    assert_eq!(s.signed.filename.as_deref(), Some("screenshot.png"));
    // Under the chain model this path breaks: the Primary CA certificate in it is a
    // cross-certificate from 2007, younger than the Secondary CA (2005) it would have issued.
    let chain = Verifier::new(vec![root], options(ValidationModel::Chain)).unwrap();
    let r = chain
        .verify_file(&sig, "s.p7s", Some((&png, "screenshot.png")))
        .unwrap();
    let s = &r.signatures[0];
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::NotYetValid),
        "{}",
        summary(&r)
    );
    assert!(s.errors[0].contains("Certipost E-Trust Primary Qualified CA"));
    let mut changed = png.clone();
    changed[1000] ^= 1;
    let r = v
        .verify_file(&sig, "s.p7s", Some((&changed, "screenshot.png")))
        .unwrap();
    assert_eq!(r.signatures[0].indication, Indication::TotalFailed);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
}

#[test]
fn broken_and_odd_cades() {
    let v = verifier(Vec::new(), "2026-06-01T00:00:00Z", ValidationModel::Chain);
    let expect = [
        // truncated DER: FORMAT_FAILURE
        ("malformed-cades.p7m", SubIndication::FormatFailure),
        // one attribute with two signing times
        (
            "cades-duplicated-signed-attrs.p7m",
            SubIndication::FormatFailure,
        ),
        // two signing-certificate-v2 attributes
        (
            "cades-double-signing-certificate.p7m",
            SubIndication::FormatFailure,
        ),
        // SignerIdentifier is an empty key identifier, no certificate matches
        (
            "cms-no-sign-cert.p7m",
            SubIndication::NoSigningCertificateFound,
        ),
        // the enclosed content was changed after signing
        ("cades-enveloping-broken.pkcs7", SubIndication::HashFailure),
        // detached, given without its document
        (
            "NexU-CAdES-B-B-Detached-Sha512.p7m",
            SubIndication::SignedDataNotFound,
        ),
        // RSASSA-PSS with SHA3-256 over a SHA-256 digest: OpenSSL refuses the mix
        (
            "CAdES-BpB-att-SHA256-SHA3_256withRSAandMGF1.p7m",
            SubIndication::SigCryptoFailure,
        ),
        // DSS issue 667: signed attributes not in DER order; OpenSSL verifies their DER
        // re-encoding (RFC 5652 §5.4 requires DER), so the value does not verify. DSS, which
        // hashes the bytes as sent, accepts these two.
        (
            "BER_reordered_prova.txt.p7m",
            SubIndication::SigCryptoFailure,
        ),
        (
            "DER_reordered_prova.txt.p7m",
            SubIndication::SigCryptoFailure,
        ),
    ];
    for (name, sub) in expect {
        let r = file(&v, &format!("dss/cades/{name}"));
        assert_eq!(
            r.signatures[0].sub_indication,
            Some(sub),
            "{name}: {}",
            summary(&r)
        );
        assert_eq!(r.signatures[0].indication, sub_default(sub), "{name}");
    }
    let dup = file(&v, "dss/cades/cades-double-signing-certificate.p7m");
    assert!(
        dup.signatures[0]
            .errors
            .iter()
            .any(|e| e.contains("more than once")),
        "{}",
        summary(&dup)
    );
    assert!(dup.signatures[0].warnings[0].contains("bytes after the CMS structure"));
}

fn sub_default(sub: SubIndication) -> Indication {
    match sub {
        SubIndication::FormatFailure
        | SubIndication::HashFailure
        | SubIndication::SigCryptoFailure => Indication::TotalFailed,
        _ => Indication::Indeterminate,
    }
}
