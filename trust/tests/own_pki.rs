//! Checks that need certificates with particular properties, made on the spot with OpenSSL:
//! qcStatements, weak keys, key usage, validity windows, two signers, revocation answers and a
//! trusted-list answer injected through the traits part 2 will implement.

mod common;

use std::sync::Mutex;

use common::pki::{self, Party, Spec};
use common::summary;
use demail_trust::{
    CertQualification, CertType, Indication, MailReport, QcType, QualificationSource,
    RevocationChecker, RevocationStatus, SubIndication, ValidationModel, Verifier, VerifyOptions,
};
use openssl::x509::{X509, X509Ref};
use time::{Duration, OffsetDateTime};

fn verifier_for(ca: &Party, options: VerifyOptions) -> Verifier {
    Verifier::new(vec![ca.cert.clone()], options).unwrap()
}

fn enveloping(v: &Verifier, signer: &Party, ca: &Party) -> MailReport {
    let der = pki::sign(signer, &[&ca.cert], b"Antrag auf Wohngeld", false);
    v.verify_file(&der, "antrag.p7m", None).unwrap()
}

fn qes_signer(ca: &Party) -> Party {
    pki::issue(
        &Spec {
            qc_statements: Some(pki::qes_statements()),
            ..Spec::default()
        },
        Some(ca),
    )
}

#[test]
fn qualified_looking_certificate_without_trusted_list() {
    let ca = pki::ca();
    let signer = qes_signer(&ca);
    let r = enveloping(&verifier_for(&ca, VerifyOptions::default()), &signer, &ca);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{}", summary(&r));
    let qc = s.qc_statements.as_ref().unwrap();
    assert!(qc.compliance && qc.sscd);
    assert_eq!(qc.types, vec![QcType::Esign]);
    assert_eq!(qc.legislation, vec!["DE".to_string()]);
    assert_eq!(s.qualification.as_str(), "N/A");
    assert_eq!(s.certificate_claim.unwrap().as_str(), "QESig");
    assert!(!s.is_qes());
    assert_eq!(
        s.signer.as_ref().unwrap().email.as_deref(),
        Some("erika@example.org")
    );
}

/// Stands in for the trusted list of part 2: says the CA is a granted CA/QC service.
struct ListedCa(X509);

impl QualificationSource for ListedCa {
    fn certificate_qualification(
        &self,
        chain: &[X509],
        _: OffsetDateTime,
    ) -> Option<CertQualification> {
        chain
            .iter()
            .any(|c| c.to_der().unwrap() == self.0.to_der().unwrap())
            .then_some(CertQualification {
                qualified: true,
                qscd: true,
                cert_type: CertType::ESig,
            })
    }
}

#[test]
fn a_trusted_list_answer_makes_it_qesig() {
    let ca = pki::ca();
    let signer = qes_signer(&ca);
    let v = verifier_for(&ca, VerifyOptions::default())
        .with_qualification(Box::new(ListedCa(ca.cert.clone())));
    let r = enveloping(&v, &signer, &ca);
    let s = &r.signatures[0];
    assert_eq!(s.qualification.as_str(), "QESig");
    assert!(s.is_qes());
    assert_eq!(s.qualification_note, None);
    assert!(s.header_value().contains("qualification=QESig;"));
    // The same signer from another CA the list does not know: N/A.
    let other = pki::ca();
    let v = verifier_for(&other, VerifyOptions::default())
        .with_qualification(Box::new(ListedCa(ca.cert.clone())));
    let r = enveloping(&v, &qes_signer(&other), &other);
    assert_eq!(r.signatures[0].qualification.as_str(), "N/A");
}

#[test]
fn weak_key_is_refused() {
    let ca = pki::ca();
    let weak = pki::issue(
        &Spec {
            bits: 1024,
            ..Spec::default()
        },
        Some(&ca),
    );
    let r = enveloping(&verifier_for(&ca, VerifyOptions::default()), &weak, &ca);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::Indeterminate);
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
    assert!(s.errors[0].contains("1024 bits"), "{:?}", s.errors);
}

#[test]
fn key_usage_must_allow_signing() {
    let ca = pki::ca();
    let enc_only = pki::issue(
        &Spec {
            signing_usage: false,
            ..Spec::default()
        },
        Some(&ca),
    );
    let r = enveloping(&verifier_for(&ca, VerifyOptions::default()), &enc_only, &ca);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::ChainConstraintsFailure),
        "{}",
        summary(&r)
    );
}

#[test]
fn signing_time_in_the_future() {
    let ca = pki::ca();
    let signer = qes_signer(&ca);
    // Our clock says yesterday: OpenSSL stamped the signature with today.
    let options = VerifyOptions {
        now: Some(OffsetDateTime::now_utc() - Duration::days(1)),
        ..VerifyOptions::default()
    };
    let r = enveloping(&verifier_for(&ca, options), &signer, &ca);
    let s = &r.signatures[0];
    assert_eq!(s.sub_indication, Some(SubIndication::SigConstraintsFailure));
    assert!(s.errors[0].contains("in the future"), "{:?}", s.errors);
}

#[test]
fn chain_and_shell_model_on_an_expired_ca() {
    // The CA expired yesterday; it issued the signer last month. Validated now (--at):
    // the chain model accepts, the shell model does not.
    let ca = pki::issue(
        &Spec {
            cn: "Expired CA",
            email: None,
            ca: true,
            from: Duration::days(-400),
            until: Duration::days(-1),
            ..Spec::default()
        },
        None,
    );
    let signer = qes_signer(&ca);
    let at = |model| VerifyOptions {
        model,
        at: Some(OffsetDateTime::now_utc()),
        ..VerifyOptions::default()
    };
    let chain = enveloping(&verifier_for(&ca, at(ValidationModel::Chain)), &signer, &ca);
    assert_eq!(
        chain.signatures[0].indication,
        Indication::TotalPassed,
        "{}",
        summary(&chain)
    );
    let shell = enveloping(&verifier_for(&ca, at(ValidationModel::Shell)), &signer, &ca);
    assert_eq!(
        shell.signatures[0].sub_indication,
        Some(SubIndication::OutOfBoundsNoPoe)
    );
    assert!(shell.signatures[0].errors[0].contains("Expired CA"));
}

#[test]
fn two_signers_each_get_a_verdict() {
    let ca = pki::ca();
    let good = qes_signer(&ca);
    let weak = pki::issue(
        &Spec {
            cn: "Weak Signer",
            bits: 1024,
            ..Spec::default()
        },
        Some(&ca),
    );
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let data = write("data.txt", b"Antrag");
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["cms", "-sign", "-binary", "-nodetach", "-outform", "DER"]);
    for (i, p) in [&good, &weak].iter().enumerate() {
        let cert = write(&format!("c{i}.pem"), &p.cert.to_pem().unwrap());
        let key = write(
            &format!("k{i}.pem"),
            &p.key.private_key_to_pem_pkcs8().unwrap(),
        );
        cmd.arg("-signer").arg(cert).arg("-inkey").arg(key);
    }
    let out = cmd.arg("-in").arg(&data).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = verifier_for(&ca, VerifyOptions::default());
    let r = v.verify_file(&out.stdout, "two.p7m", None).unwrap();
    assert_eq!(r.signatures.len(), 2, "{}", summary(&r));
    // SignerInfos are a DER SET, so their order is the encoding's, not the command line's.
    let by = |cn: &str| {
        r.signatures
            .iter()
            .find(|s| s.signer.as_ref().unwrap().common_name.as_deref() == Some(cn))
            .unwrap()
    };
    assert_eq!(by("Erika Mustermann").indication, Indication::TotalPassed);
    assert_eq!(
        by("Weak Signer").sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
}

/// Stands in for OCSP/CRL (part 2): a fixed answer per certificate common name.
struct Answers(Mutex<Vec<(String, RevocationStatus)>>);

impl RevocationChecker for Answers {
    fn name(&self) -> &'static str {
        "test"
    }

    fn check(&self, cert: &X509Ref, _: &X509Ref, _: OffsetDateTime) -> RevocationStatus {
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
            .unwrap_or_default();
        let answers = self.0.lock().unwrap();
        answers
            .iter()
            .find(|(n, _)| *n == cn)
            .map_or(RevocationStatus::NotChecked, |(_, s)| s.clone())
    }
}

#[test]
fn revocation_answers_map_to_etsi_sub_indications() {
    let ca = pki::issue(
        &Spec {
            cn: "Root",
            email: None,
            ca: true,
            from: Duration::days(-3650),
            until: Duration::days(3650),
            ..Spec::default()
        },
        None,
    );
    let sub_ca = pki::issue(
        &Spec {
            cn: "Sub CA",
            email: None,
            ca: true,
            from: Duration::days(-365),
            until: Duration::days(3650),
            ..Spec::default()
        },
        Some(&ca),
    );
    let signer = qes_signer(&sub_ca);
    let der = pki::sign(&signer, &[&sub_ca.cert], b"Antrag", false);
    let now = OffsetDateTime::now_utc();
    let revoked = |days: i64| RevocationStatus::Revoked {
        time: now + Duration::days(days),
        reason: Some("keyCompromise".into()),
        source: "test".into(),
    };
    let cases = [
        (
            "Erika Mustermann",
            revoked(-1),
            Indication::TotalFailed,
            SubIndication::Revoked,
        ),
        (
            "Erika Mustermann",
            revoked(1),
            Indication::Indeterminate,
            SubIndication::RevokedNoPoe,
        ),
        (
            "Sub CA",
            revoked(-1),
            Indication::Indeterminate,
            SubIndication::RevokedCaNoPoe,
        ),
        (
            "Erika Mustermann",
            RevocationStatus::Unknown {
                reason: "responder unreachable".into(),
            },
            Indication::Indeterminate,
            SubIndication::TryLater,
        ),
    ];
    for (cn, status, indication, sub) in cases {
        let answers = Answers(Mutex::new(vec![(cn.to_string(), status)]));
        let v = verifier_for(&ca, VerifyOptions::default()).with_revocation(Box::new(answers));
        let r = v.verify_file(&der, "a.p7m", None).unwrap();
        let s = &r.signatures[0];
        assert_eq!(
            (s.indication, s.sub_indication),
            (indication, Some(sub)),
            "{cn}"
        );
        assert_eq!(s.revocation, "test");
        assert_eq!(s.chain.len(), 3);
    }
    let good = Answers(Mutex::new(vec![(
        "Erika Mustermann".into(),
        RevocationStatus::Good {
            source: "test".into(),
        },
    )]));
    let v = verifier_for(&ca, VerifyOptions::default()).with_revocation(Box::new(good));
    let r = v.verify_file(&der, "a.p7m", None).unwrap();
    assert_eq!(r.signatures[0].indication, Indication::TotalPassed);
}

#[test]
fn smime_sender_and_date_checks() {
    let ca = pki::ca();
    let signer = qes_signer(&ca);
    let v = verifier_for(&ca, VerifyOptions::default());
    let ok = pki::smime_mail(
        &signer,
        &ca.cert,
        "Erika <ERIKA@example.org>",
        &pki::mail_date(Duration::ZERO),
        "Guten Tag",
    );
    let r = v.verify_mail(&ok);
    assert_eq!(r.indication(), Indication::TotalPassed, "{}", summary(&r));
    let other = pki::smime_mail(
        &signer,
        &ca.cert,
        "mallory@example.org",
        &pki::mail_date(Duration::ZERO),
        "Guten Tag",
    );
    let r = v.verify_mail(&other);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::SigConstraintsFailure)
    );
    assert!(r.signatures[0].errors[0].contains("mallory@example.org"));
    let late = pki::smime_mail(
        &signer,
        &ca.cert,
        "erika@example.org",
        &pki::mail_date(Duration::hours(3)),
        "Guten Tag",
    );
    let r = v.verify_mail(&late);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::SigConstraintsFailure)
    );
    let lenient = Verifier::new(
        vec![ca.cert.clone()],
        VerifyOptions {
            date_tolerance: None,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        lenient.verify_mail(&late).indication(),
        Indication::TotalPassed
    );
}
