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

/// The list with its KeyInfo certificate replaced by `cert` (KeyInfo is not signed in these
/// lists, so only a verifier that used it could be misled).
fn swap_keyinfo(xml: &[u8], cert: &X509) -> Vec<u8> {
    let t = text(xml);
    let sig = t.find("<ds:Signature").unwrap();
    let start = sig + t[sig..].find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let end = start + t[start..].find('<').unwrap();
    let b64 = openssl::base64::encode_block(&cert.to_der().unwrap());
    format!("{}{b64}{}", &t[..start], &t[end..]).into_bytes()
}

/// Mutations of a validly signed list, each with the verdict of the bare signature check
/// (without our pre-checks) for the right signer; the full verification rejects them all.
fn mutations(xml: &[u8], (element, name): (&str, &str)) -> Vec<(&'static str, Vec<u8>, Verdict)> {
    let sig = signature_element(xml).to_string();
    let t = text(xml);
    let without_sig = t.replacen(&sig, "", 1);
    // One byte of a name: the enveloped reference's digest no longer matches.
    let flipped_name = {
        let other = if name.starts_with('X') { "Y" } else { "X" };
        let new = format!("{other}{}", &name[1..]);
        replace_after(xml, &format!("<{element}>"), name, &new)
    };
    // A second copy of the signature beside the first. The enveloped transform removes only
    // the signature being checked, so the copy is unsigned content: the digest fails.
    let duplicated = t.replacen(&sig, &format!("{sig}{sig}"), 1).into_bytes();
    // The signed list wrapped in a new root: URI="" now means the new document.
    let body = &t[t.find("<TrustServiceStatusList").unwrap()..];
    let wrapped = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Wrapper xmlns=\"urn:x-demail:test\">{body}</Wrapper>"
    )
    .into_bytes();
    // Unsigned content after the signature.
    let appended = t
        .replacen(
            &sig,
            &format!("{sig}<Extra xmlns=\"urn:x-demail:test\"/>"),
            1,
        )
        .into_bytes();
    // The signature moved into SchemeInformation. The enveloped transform removes it
    // wherever it is, so the cryptography still holds; only our pre-check (a child of the
    // root) refuses it.
    let moved = without_sig
        .replacen(
            "</SchemeInformation>",
            &format!("{sig}</SchemeInformation>"),
            1,
        )
        .into_bytes();
    vec![
        ("flipped byte in a name", flipped_name, Verdict::Fail),
        (
            "flipped byte in the SignatureValue",
            flip_signature_value(xml),
            Verdict::Fail,
        ),
        ("duplicated signature", duplicated, Verdict::Fail),
        ("list wrapped in a new root", wrapped, Verdict::Fail),
        (
            "unsigned element after the signature",
            appended,
            Verdict::Fail,
        ),
        (
            "signature moved into SchemeInformation",
            moved,
            Verdict::Pass,
        ),
    ]
}

/// A validly signed list: it verifies with its signer only, the signer is never taken from
/// its KeyInfo, and every mutation is refused.
fn check_list(label: &str, xml: &[u8], signer: &X509, wrong: &[X509], name: (&str, &str)) {
    use Verdict::{Fail, Pass};
    agree(label, xml, signer, Pass, Pass);
    for w in wrong {
        let case = format!("{label}, wrong signer {:?}", w.subject_name());
        agree(&case, xml, w, Fail, Fail);
        // The list now names the wrong signer in its KeyInfo: still the key decides.
        let swapped = swap_keyinfo(xml, w);
        agree(&format!("{case} named in KeyInfo"), &swapped, w, Fail, Fail);
        agree(
            &format!("{label}, KeyInfo names {:?}", w.subject_name()),
            &swapped,
            signer,
            Pass,
            Pass,
        );
    }
    for (what, mutated, bare) in mutations(xml, name) {
        let case = format!("{label}: {what}");
        agree(&case, &mutated, signer, Fail, bare);
        agree(
            &format!("{case}, wrong signer"),
            &mutated,
            &wrong[0],
            Fail,
            Fail,
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
        ("ServiceName", "D-TRUST Qualified CA 1 2008:PN"),
    );
}

#[test]
fn lotl_and_its_mutations() {
    let lotl = read("dss/tsl/eu-lotl.xml");
    let de_signer = embedded_signer(&read("dss/tsl/de-tl.xml"));
    let mut wrong = vec![de_signer];
    wrong.extend(strangers());
    check_list(
        "eu-lotl.xml",
        &lotl,
        &embedded_signer(&lotl),
        &wrong,
        ("SchemeOperatorName", "European Commission"),
    );
}

/// DSS's broken LOTL (the list changed after signing) and its unsigned copy: refused by both,
/// with the LOTL's signer pinned and with another.
#[test]
fn broken_and_unsigned_lotl() {
    use Verdict::Fail;
    let signer = embedded_signer(&read("dss/tsl/eu-lotl.xml"));
    let other = embedded_signer(&read("dss/tsl/de-tl.xml"));
    let broken = read("dss/tsl/eu-lotl-broken-sig.xml");
    let unsigned = read("dss/tsl/eu-lotl-no-sig.xml");
    for (label, xml) in [
        ("eu-lotl-broken-sig.xml", &broken),
        ("eu-lotl-no-sig.xml", &unsigned),
    ] {
        agree(label, xml, &signer, Fail, Fail);
        agree(&format!("{label}, wrong signer"), xml, &other, Fail, Fail);
    }
    assert!(matches!(
        precheck(&unsigned),
        Err(XmlSigError::Structure(_))
    ));
    // The broken list is well-formed: the verifiers, not the pre-check, refuse it.
    assert_eq!(precheck(&broken), Ok(()));
}

/// The import path (`verify_with`, several pinned certificates) returns the one that verifies,
/// whichever verifier runs, and names the verifier when none does.
#[test]
fn verify_with_picks_the_pinned_signer_that_verifies() {
    let de = read("dss/tsl/de-tl.xml");
    let right = embedded_signer(&de);
    let wrong = embedded_signer(&read("dss/tsl/eu-lotl.xml"));
    let verifiers: [&dyn XmlSignatureVerifier; 2] = [&Xmlsec1, &RustVerifier];
    for v in verifiers {
        let got = xmlsig::verify_with(v, &de, "de-tl.xml", &[wrong.clone(), right.clone()])
            .unwrap_or_else(|e| panic!("{}: {e}", v.name()));
        assert_eq!(
            got.to_der().unwrap(),
            right.to_der().unwrap(),
            "{}",
            v.name()
        );
        let e = xmlsig::verify_with(v, &de, "de-tl.xml", std::slice::from_ref(&wrong))
            .err()
            .unwrap_or_else(|| panic!("{} accepted the wrong signer", v.name()))
            .to_string();
        assert!(
            e.starts_with(
                "trusted list de-tl.xml: the XML signature does not verify with any pinned signer"
            ) && e.contains(&format!("({}: ", v.name())),
            "{e}"
        );
        let e = xmlsig::verify_with(v, &de, "de-tl.xml", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no pinned signer certificate"), "{e}");
    }
}
