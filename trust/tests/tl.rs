//! Trusted lists: XML signature against pinned signers only (xmlsec1), extraction of the CA/QC
//! services, and the qualification of the real German QES (`Signature-C-DE_CRY-3/-4.p7m`)
//! with the German list of 2015 (`de-tl.xml`). Vectors: DSS, LGPL-2.1 (tests/vectors).

mod common;

use common::{read, t};
use demail_trust::tl::{self, TrustedLists};
use demail_trust::{QualificationSource, ValidationModel, Verifier, VerifyOptions};
use openssl::x509::X509;

/// The signer certificate a list carries in its own ds:X509Certificate (pinned by the test
/// after reading it; the list's KeyInfo itself is never trusted).
fn embedded_signer(xml: &[u8]) -> X509 {
    let text = std::str::from_utf8(xml).unwrap();
    let sig = &text[text.find("<ds:Signature").unwrap()..];
    let start = sig.find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let end = start + sig[start..].find('<').unwrap();
    let b64: String = sig[start..end].split_whitespace().collect();
    X509::from_der(&openssl::base64::decode_block(&b64).unwrap()).unwrap()
}

fn de_tl() -> (Vec<u8>, X509) {
    let xml = read("dss/tsl/de-tl.xml");
    let signer = embedded_signer(&xml);
    (xml, signer)
}

fn lotl_signer() -> X509 {
    embedded_signer(&read("dss/tsl/eu-lotl.xml"))
}

fn error_of(r: Result<TrustedLists, demail_trust::TrustError>) -> String {
    match r {
        Ok(tl) => panic!("accepted: {tl:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn german_list_verifies_with_its_pinned_signer_and_lists_the_d_trust_ca() {
    let (xml, signer) = de_tl();
    let tl = TrustedLists::from_xml_verified(&xml, &[signer]).unwrap();
    let list = tl.lists().next().unwrap();
    assert_eq!(list.territory, "DE");
    assert!(!list.lotl);
    assert_eq!(list.sequence_number, Some(22));
    assert!(
        list.signed_by.contains("CN=14R-TSL 1:PN"),
        "{}",
        list.signed_by
    );
    let ca = list
        .services
        .iter()
        .find(|s| s.name == "D-TRUST Qualified CA 1 2008:PN")
        .expect("D-TRUST CA listed");
    assert_eq!(ca.service_type, "http://uri.etsi.org/TrstSvc/Svctype/CA/QC");
    assert_eq!(ca.provider, "D-TRUST GmbH");
    assert_eq!(
        ca.certificates[0].ski.as_deref(),
        Some("77B163C56365A52C73E9F5A48F1D4A754C81FB7D")
    );
    assert_eq!(ca.history.len(), 1);
    assert!(ca.history[0].status.ends_with("/undersupervision"));
    assert_eq!(ca.history[0].start, "2001-10-21T22:00:00Z");
    let rule = &ca.history[0].qualifications[0];
    assert_eq!(rule.qualifiers, ["QCWithSSCD"]);
    assert!(rule.criteria.key_usage[0].contains(&("keyCertSign".to_string(), true)));
    // 293 CA/QC and 13 NationalRootCA-QC services of the 413 (counted with a regex over the XML).
    assert_eq!(list.services.len(), 306);
    // Services with history: newest period first.
    let with_history = list.services.iter().find(|s| s.history.len() > 1).unwrap();
    assert!(with_history.history[0].start > with_history.history[1].start);
    assert!(tl.anchors().len() > 300);
}

#[test]
fn an_unpinned_signer_gives_no_trust() {
    let (xml, _) = de_tl();
    let e = error_of(TrustedLists::from_xml_verified(&xml, &[lotl_signer()]));
    assert!(e.contains("does not verify with any pinned signer"), "{e}");
    let e = error_of(TrustedLists::from_xml_verified(&xml, &[]));
    assert!(e.contains("no pinned signer"), "{e}");
    // The right signer among wrong ones is found.
    let (_, signer) = de_tl();
    assert!(TrustedLists::from_xml_verified(&xml, &[lotl_signer(), signer]).is_ok());
}

#[test]
fn a_modified_list_does_not_verify() {
    let (xml, signer) = de_tl();
    let text = String::from_utf8(xml).unwrap();
    let tampered = text.replacen(
        "Svcstatus/supervisionceased",
        "Svcstatus/undersupervision",
        1,
    );
    assert_ne!(tampered, text);
    let e = error_of(TrustedLists::from_xml_verified(
        tampered.as_bytes(),
        &[signer],
    ));
    assert!(e.contains("does not verify"), "{e}");
}

#[test]
fn lotl_broken_and_unsigned_variants_are_refused() {
    let signer = lotl_signer();
    let lotl = TrustedLists::from_xml_verified(
        &read("dss/tsl/eu-lotl.xml"),
        std::slice::from_ref(&signer),
    )
    .unwrap();
    let list = lotl.lists().next().unwrap();
    assert!(list.lotl);
    assert_eq!(list.territory, "EU");
    assert!(list.services.is_empty());
    let de = list
        .pointers
        .iter()
        .find(|p| p.territory == "DE")
        .expect("DE pointer");
    assert!(!de.signers.is_empty());
    assert!(!lotl.pointer_signers("DE").is_empty());
    let e = error_of(TrustedLists::from_xml_verified(
        &read("dss/tsl/eu-lotl-broken-sig.xml"),
        std::slice::from_ref(&signer),
    ));
    assert!(e.contains("does not verify"), "{e}");
    let e = error_of(TrustedLists::from_xml_verified(
        &read("dss/tsl/eu-lotl-no-sig.xml"),
        &[signer],
    ));
    assert!(e.contains("not signed"), "{e}");
}

#[test]
fn signature_wrapping_is_refused() {
    let (xml, signer) = de_tl();
    let text = String::from_utf8(xml).unwrap();
    // A second signature element (e.g. a signed copy hidden elsewhere).
    let i = text.find("<ds:Signature").unwrap();
    let j = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let sig = &text[i..j];
    let doubled = text.replacen(
        "</SchemeInformation>",
        &format!("</SchemeInformation>{sig}"),
        1,
    );
    let e = error_of(TrustedLists::from_xml_verified(
        doubled.as_bytes(),
        std::slice::from_ref(&signer),
    ));
    assert!(e.contains("2 ds:Signature elements"), "{e}");
    // A DTD (entity expansion) is refused before xmlsec1 runs.
    let dtd = text.replacen("?>", "?><!DOCTYPE x [<!ENTITY a \"b\">]>", 1);
    let e = error_of(TrustedLists::from_xml_verified(dtd.as_bytes(), &[signer]));
    assert!(e.contains("not XML"), "{e}");
}

#[test]
fn import_stores_json_and_xml_and_load_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let (xml, signer) = de_tl();
    assert!(TrustedLists::load(dir.path()).unwrap().is_empty());
    let stored = tl::import(
        dir.path(),
        &xml,
        "de-tl.xml",
        &[signer],
        &TrustedLists::default(),
    )
    .unwrap();
    assert!(dir.path().join("tl-DE.json").is_file());
    assert_eq!(std::fs::read(dir.path().join("tl-DE.xml")).unwrap(), xml);
    let loaded = TrustedLists::load(dir.path()).unwrap();
    assert_eq!(loaded.lists().next().unwrap(), &stored);
    // Not pinned: nothing stored.
    let other = tempfile::tempdir().unwrap();
    assert!(
        tl::import(
            other.path(),
            &xml,
            "de-tl.xml",
            &[lotl_signer()],
            &TrustedLists::default()
        )
        .is_err()
    );
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
}

/// The LOTL of this snapshot names later German signers than the one of the 2015 list: the
/// old list is then not trusted through the LOTL (and is with its own signer pinned).
#[test]
fn lotl_pointers_pin_national_signers() {
    let dir = tempfile::tempdir().unwrap();
    let lotl = tl::import(
        dir.path(),
        &read("dss/tsl/eu-lotl.xml"),
        "eu-lotl.xml",
        &[lotl_signer()],
        &TrustedLists::default(),
    )
    .unwrap();
    assert!(lotl.lotl);
    let known = TrustedLists::load(dir.path()).unwrap();
    let (xml, signer) = de_tl();
    let named = known.pointer_signers("DE");
    let signer_der = signer.to_der().unwrap();
    let listed = named.iter().any(|c| c.to_der().unwrap() == signer_der);
    let result = tl::import(dir.path(), &xml, "de-tl.xml", &[], &known);
    assert_eq!(result.is_ok(), listed, "{result:?}");
    if !listed {
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("does not verify with any pinned signer")
        );
    }
}

fn verifier(tl: &TrustedLists, model: ValidationModel) -> Verifier {
    let options = VerifyOptions {
        model,
        at: Some(t("2014-11-13T10:40:00Z")),
        now: Some(t("2026-01-01T00:00:00Z")),
        ..VerifyOptions::default()
    };
    Verifier::new(tl.anchors(), options)
        .unwrap()
        .with_qualification(Box::new(tl.clone()))
}

#[test]
fn german_qes_is_qesig_under_the_chain_model_with_the_german_list() {
    let (xml, signer) = de_tl();
    let tl = TrustedLists::from_xml_verified(&xml, &[signer]).unwrap();
    for name in ["Signature-C-DE_CRY-3.p7m", "Signature-C-DE_CRY-4.p7m"] {
        let p7m = read(&format!("dss/cades/{name}"));
        let chain = verifier(&tl, ValidationModel::Chain)
            .verify_file(&p7m, name, None)
            .unwrap();
        let s = &chain.signatures[0];
        assert_eq!(
            s.indication.to_string(),
            "TOTAL_PASSED",
            "{name}: {:?}",
            s.errors
        );
        assert_eq!(s.qualification.as_str(), "QESig", "{name}");
        assert_eq!(s.qualification_note, None);
        // The certificate alone claims less: no QcSSCD (the list adds QCWithSSCD).
        assert_eq!(s.certificate_claim.map(|c| c.as_str()), Some("AdESig-QC"));
        let shell = verifier(&tl, ValidationModel::Shell)
            .verify_file(&p7m, name, None)
            .unwrap();
        let s = &shell.signatures[0];
        assert_eq!(s.indication.to_string(), "INDETERMINATE", "{name}");
        assert_eq!(
            s.sub_indication.map(|x| x.to_string()).as_deref(),
            Some("OUT_OF_BOUNDS_NO_POE")
        );
        assert!(
            s.errors
                .iter()
                .any(|e| e.contains("\"D-TRUST Qualified CA 1 2008:PN\" expired")),
            "{:?}",
            s.errors
        );
        assert_eq!(s.qualification.as_str(), "Indeterminate QESig");
    }
}

#[test]
fn without_the_list_the_same_signature_is_not_qualified() {
    let p7m = read("dss/cades/Signature-C-DE_CRY-3.p7m");
    let s = verifier(&TrustedLists::default(), ValidationModel::Chain)
        .verify_file(&p7m, "x.p7m", None)
        .unwrap();
    // No anchor either: no chain.
    assert_eq!(s.signatures[0].qualification.as_str(), "N/A");
    assert_eq!(s.signatures[0].indication.to_string(), "INDETERMINATE");
}

/// The list's pre-eIDAS status counts only before 1 July 2016; qualifiers never make a
/// certificate issued by an unlisted CA qualified.
#[test]
fn qualification_follows_the_status_at_the_signing_time() {
    let (xml, signer) = de_tl();
    let tl = TrustedLists::from_xml_verified(&xml, &[signer]).unwrap();
    let chain =
        demail_trust::certificates_in_cms(&read("dss/cades/Signature-C-DE_CRY-3.p7m")).unwrap();
    let leaf = chain
        .iter()
        .find(|c| format!("{:?}", c.subject_name()).contains("Schlede"))
        .unwrap()
        .clone();
    let ca = chain
        .iter()
        .find(|c| format!("{:?}", c.subject_name()).contains("Qualified CA 1 2008"))
        .unwrap()
        .clone();
    let path = [leaf.clone(), ca];
    let q = tl
        .certificate_qualification(&path, t("2014-11-13T10:34:20Z"))
        .unwrap();
    assert!(q.qualified && q.qscd, "{q:?}");
    assert_eq!(q.cert_type, demail_trust::CertType::ESig);
    let after = tl
        .certificate_qualification(&path, t("2016-07-02T00:00:00Z"))
        .unwrap();
    assert!(!after.qualified && !after.qscd, "{after:?}");
    assert!(
        tl.certificate_qualification(&[leaf], t("2014-11-13T10:34:20Z"))
            .is_none()
    );
}
