//! Differential test of the two trusted-list signature verifiers: the xmlsec1 CLI and the
//! pure-Rust bergshamra one must give the same verdict on every DSS list (tests/vectors/dss/tsl,
//! LGPL-2.1) and on mutated copies, with the right signer pinned and with wrong ones. Each case
//! also states the expected verdict, so two verifiers that fail alike for a wrong reason (a
//! tool missing, an algorithm unsupported) cannot pass it.

mod common;

use common::read;
use demail_trust::tl::xmlsig::{
    self, RustVerifier, XmlSigError, XmlSignatureVerifier, Xmlsec1, precheck,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Verdict {
    Pass,
    Fail,
}

/// A verdict, or a panic when the verifier could not judge at all.
fn verdict(v: &dyn XmlSignatureVerifier, r: Result<(), XmlSigError>, case: &str) -> Verdict {
    match r {
        Ok(()) => Verdict::Pass,
        Err(XmlSigError::Rejected(_) | XmlSigError::Structure(_)) => Verdict::Fail,
        Err(e @ XmlSigError::CannotJudge(_)) => {
            panic!("{case}: {} could not judge: {e}", v.name())
        }
    }
}

/// Both verifiers agree on `xml` with `signer`, through the full `verify` (pre-checks
/// included) and through the bare signature check, and the verdicts are the expected ones.
fn agree(case: &str, xml: &[u8], signer: &X509, full: Verdict, bare: Verdict) {
    let verifiers: [&dyn XmlSignatureVerifier; 2] = [&Xmlsec1, &RustVerifier];
    for v in verifiers {
        let got_full = verdict(v, v.verify(xml, signer), case);
        let got_bare = verdict(v, v.check_signature(xml, signer), case);
        assert_eq!(
            (got_full, got_bare),
            (full, bare),
            "{case}: {} gave verify={got_full:?} check_signature={got_bare:?} \
             ({:?} / {:?})",
            v.name(),
            v.verify(xml, signer).err(),
            v.check_signature(xml, signer).err(),
        );
    }
}

/// The signer certificate a list carries in its own ds:X509Certificate (the test pins it
/// after reading it; the verifiers never use the list's KeyInfo).
fn embedded_signer(xml: &[u8]) -> X509 {
    let text = std::str::from_utf8(xml).unwrap();
    let sig = &text[text.find("<ds:Signature").unwrap()..];
    let start = sig.find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let end = start + sig[start..].find('<').unwrap();
    let b64: String = sig[start..end].split_whitespace().collect();
    X509::from_der(&openssl::base64::decode_block(&b64).unwrap()).unwrap()
}

/// A self-signed certificate for a key nobody signed a list with.
fn stranger(key: &PKey<Private>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "not the list signer")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn strangers() -> Vec<X509> {
    let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    vec![stranger(&rsa), stranger(&ec)]
}

fn text(xml: &[u8]) -> &str {
    std::str::from_utf8(xml).unwrap()
}

/// `xml` with the first occurrence of `from` after `anchor` replaced by `to`.
fn replace_after(xml: &[u8], anchor: &str, from: &str, to: &str) -> Vec<u8> {
    let t = text(xml);
    let a = t
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} not found"));
    let at = a + t[a..]
        .find(from)
        .unwrap_or_else(|| panic!("{from} not found"));
    let mut out = t[..at].to_string();
    out.push_str(to);
    out.push_str(&t[at + from.len()..]);
    out.into_bytes()
}

/// The list's `<ds:Signature ...>...</ds:Signature>` element as text.
fn signature_element(xml: &[u8]) -> &str {
    let t = text(xml);
    let start = t.find("<ds:Signature").unwrap();
    let end = t.rfind("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &t[start..end]
}

/// One character of the SignatureValue flipped (still valid base64, same length).
fn flip_signature_value(xml: &[u8]) -> Vec<u8> {
    let t = text(xml);
    let v = t.find("<ds:SignatureValue").unwrap();
    let start = v + t[v..].find('>').unwrap() + 1 + 20;
    let old = t.as_bytes()[start];
    let new = if old == b'A' { b'B' } else { b'A' };
    let mut out = xml.to_vec();
    out[start] = new;
    out
}

/// The mutations of a validly signed list that both verifiers must reject, by name.
fn mutations(xml: &[u8], service_name: &str) -> Vec<(&'static str, Vec<u8>)> {
    let sig = signature_element(xml).to_string();
    let t = text(xml);
    // One byte of a service name: the enveloped reference's digest no longer matches.
    let flipped_name = {
        let first = &service_name[..1];
        let other = if first == "X" { "Y" } else { "X" };
        let new = format!("{other}{}", &service_name[1..]);
        replace_after(xml, "<ServiceName>", service_name, &new)
    };
    // A second copy of the signature beside the first (duplicated signature).
    let duplicated = t.replacen(&sig, &format!("{sig}{sig}"), 1).into_bytes();
    // The signed list wrapped in a new root (classic wrapping: the signature still sits
    // under the signed list, the document around it is new).
    let body = &t[t.find("<TrustServiceStatusList").unwrap()..];
    let wrapped = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Wrapper xmlns=\"urn:x-demail:test\">{body}</Wrapper>"
    )
    .into_bytes();
    // Unsigned content appended after the signature.
    let appended = t
        .replacen(
            &sig,
            &format!("{sig}<Extra xmlns=\"urn:x-demail:test\"/>"),
            1,
        )
        .into_bytes();
    vec![
        ("flipped byte in a service name", flipped_name),
        (
            "flipped byte in the SignatureValue",
            flip_signature_value(xml),
        ),
        ("duplicated signature", duplicated),
        ("list wrapped in a new root", wrapped),
        ("unsigned element after the signature", appended),
    ]
}

/// Pre-check verdicts of the mutations (the bare signature check is judged separately).
fn expected_bare(mutation: &str) -> Verdict {
    match mutation {
        // Both verifiers check the first ds:Signature, which is intact, and the enveloped
        // transform removes the signature it belongs to: the second copy is unsigned content.
        "duplicated signature" => Verdict::Fail,
        _ => Verdict::Fail,
    }
}

fn check_list(label: &str, xml: &[u8], signer: &X509, wrong: &[X509], service_name: &str) {
    agree(label, xml, signer, Verdict::Pass, Verdict::Pass);
    for w in wrong {
        let case = format!("{label} with wrong signer {:?}", w.subject_name());
        agree(&case, xml, w, Verdict::Fail, Verdict::Fail);
    }
    for (what, mutated) in mutations(xml, service_name) {
        let case = format!("{label}: {what}");
        agree(&case, &mutated, signer, Verdict::Fail, expected_bare(what));
        agree(
            &format!("{case}, wrong signer"),
            &mutated,
            &wrong[0],
            Verdict::Fail,
            Verdict::Fail,
        );
    }
}

#[test]
fn german_list_and_its_mutations() {
    let de = read("dss/tsl/de-tl.xml");
    let lotl_signer = embedded_signer(&read("dss/tsl/eu-lotl.xml"));
    let mut wrong = vec![lotl_signer];
    wrong.extend(strangers());
    check_list(
        "de-tl.xml",
        &de,
        &embedded_signer(&de),
        &wrong,
        "D-TRUST Qualified CA 1 2008:PN",
    );
}
