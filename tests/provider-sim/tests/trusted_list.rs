//! The test trusted list: demail-trust accepts it only with its signer pinned, and then a
//! message signed with the simulator's qualified certificate verifies as QESig.

use demail_provider_sim::pki::{TEST_TERRITORY, TestPki};
use demail_trust::integrity::{self, Alg, HashAlg, SigAlg, ValidationContext};
use demail_trust::tl::TrustedLists;
use demail_trust::{Indication, Qualification};
use openssl::pkey::PKey;
use openssl::x509::X509;

fn pem(path: &std::path::Path) -> X509 {
    X509::from_pem(&std::fs::read(path).expect("read")).expect("pem")
}

#[test]
fn list_verifies_with_the_pinned_signer_and_makes_the_provider_signature_qesig() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(&dir.path().join("pki")).expect("pki");
    let tl = pki
        .trusted_list(&dir.path().join("tl"))
        .expect("trusted list");
    let xml = std::fs::read(&tl.xml).expect("xml");

    let lists = TrustedLists::from_xml_verified(&xml, &[pem(&tl.signer_cert)]).expect("verifies");
    let list = lists.lists().next().expect("one list");
    assert_eq!(list.territory, TEST_TERRITORY);
    assert_eq!(list.services.len(), 1);
    let service = &list.services[0];
    assert_eq!(
        service.service_type,
        "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
    );
    assert!(service.history[0].status.ends_with("/granted"));
    assert_eq!(lists.anchors().len(), 1);
    assert_eq!(
        lists.anchors()[0].to_der().expect("der"),
        pem(&pki.ca_cert).to_der().expect("der")
    );

    let q = pki
        .issue_qualified("qes", "Provider QES")
        .expect("qualified");
    let key = PKey::private_key_from_pem(&std::fs::read(&q.key).expect("key")).expect("key");
    let msg = b"From: a@example.de-mail.de\r\nSubject: x\r\n\r\nbody\r\n";
    let alg = Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::Rsa,
    };
    let signed = integrity::sign(msg, &key, &pem(&q.cert), alg).expect("sign");
    let ctx = ValidationContext {
        anchors: lists.anchors(),
        intermediates: Vec::new(),
        at: None,
        qualification: Box::new(lists.clone()),
        signers: None,
        revocation: None,
    };
    let report = integrity::verify_with(&signed, &ctx);
    assert_eq!(report.indication, Indication::TotalPassed, "{report:?}");
    assert_eq!(report.qualification, Qualification::QeSig, "{report:?}");

    // Pinned seals: the same qualified signature counts only when its certificate is pinned.
    let pinned = |signers: Vec<openssl::x509::X509>| ValidationContext {
        anchors: lists.anchors(),
        intermediates: Vec::new(),
        at: None,
        qualification: Box::new(lists.clone()),
        signers: Some(signers),
        revocation: None,
    };
    let report = integrity::verify_with(&signed, &pinned(vec![pem(&q.cert)]));
    assert!(report.is_qes(), "{report:?}");
    for other in [vec![], lists.anchors()] {
        let report = integrity::verify_with(&signed, &pinned(other));
        assert_eq!(report.indication, Indication::Indeterminate, "{report:?}");
        assert_eq!(
            report.sub_indication,
            Some(demail_trust::SubIndication::ChainConstraintsFailure),
            "{report:?}"
        );
        assert!(!report.is_qes());
    }

    // An ordinary (non-qualified) leaf of the same CA is not QESig.
    let plain = pki
        .issue(
            "plain",
            "Provider TLS",
            &[],
            demail_provider_sim::pki::CertUsage::Client,
        )
        .expect("leaf");
    let pkey = PKey::private_key_from_pem(&std::fs::read(&plain.key).expect("key")).expect("key");
    let signed = integrity::sign(msg, &pkey, &pem(&plain.cert), alg).expect("sign");
    let report = integrity::verify_with(&signed, &ctx);
    assert_eq!(report.indication, Indication::TotalPassed, "{report:?}");
    assert_ne!(report.qualification, Qualification::QeSig, "{report:?}");
}

#[test]
fn list_is_refused_with_another_signer_or_when_modified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(&dir.path().join("pki")).expect("pki");
    let tl = pki
        .trusted_list(&dir.path().join("tl"))
        .expect("trusted list");
    let xml = std::fs::read_to_string(&tl.xml).expect("xml");

    // The CA certificate is not the list signer.
    let e = TrustedLists::from_xml_verified(xml.as_bytes(), &[pem(&pki.ca_cert)])
        .expect_err("wrong signer");
    assert!(e.to_string().contains("does not verify"), "{e}");

    let tampered = xml.replace("Svcstatus/granted", "Svcstatus/withdrawn");
    assert_ne!(tampered, xml);
    let e = TrustedLists::from_xml_verified(tampered.as_bytes(), &[pem(&tl.signer_cert)])
        .expect_err("tampered");
    assert!(e.to_string().contains("does not verify"), "{e}");

    // A second list from another PKI run has its own signer.
    let other = tempfile::tempdir().expect("tempdir");
    let other_pki = TestPki::generate(&other.path().join("pki")).expect("pki");
    let other_tl = other_pki.trusted_list(other.path()).expect("tl");
    assert!(
        TrustedLists::from_xml_verified(xml.as_bytes(), &[pem(&other_tl.signer_cert)]).is_err()
    );
}
