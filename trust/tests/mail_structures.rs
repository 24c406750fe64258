//! Where signatures hide in a mail: signed attachments beside their documents, enveloping
//! attachments, forwarded messages, encrypted parts, and the limits on hostile mail.

mod common;

use common::pki::{self, Party};
use common::{anchors, read, summary, verifier};
use demail_trust::{
    Indication, SignatureKind, SubIndication, ValidationModel, Verifier, VerifyOptions,
};
use openssl::base64::encode_block;

struct Att<'a> {
    name: &'a str,
    ctype: &'a str,
    /// (Content-Transfer-Encoding, encoded body)
    body: (&'a str, String),
}

fn att<'a>(name: &'a str, ctype: &'a str, data: &[u8]) -> Att<'a> {
    Att {
        name,
        ctype,
        body: ("base64", encode_block(data)),
    }
}

fn mixed(from: &str, atts: &[Att<'_>]) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: poststelle@magdeburg.example\r\nSubject: Antrag\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: text/plain\r\n\r\nSiehe Anlagen.\r\n"
    );
    for a in atts {
        m.push_str(&format!(
            "--mix\r\nContent-Type: {}; name=\"{}\"\r\nContent-Transfer-Encoding: {}\r\n\
             Content-Disposition: attachment; filename=\"{}\"\r\n\r\n{}\r\n",
            a.ctype, a.name, a.body.0, a.name, a.body.1
        ));
    }
    m.push_str("--mix--\r\n");
    m.into_bytes()
}

struct Pki {
    ca: Party,
    signer: Party,
}

fn pki() -> Pki {
    let ca = pki::ca();
    let signer = pki::issue(&pki::Spec::default(), Some(&ca));
    Pki { ca, signer }
}

fn v(p: &Pki) -> Verifier {
    Verifier::new(vec![p.ca.cert.clone()], VerifyOptions::default()).unwrap()
}

const PDF: &[u8] = b"%PDF-1.4\n% not really a PDF, but bytes are bytes\n%%EOF\n";

#[test]
fn detached_signature_beside_its_document() {
    let p = pki();
    let sig = pki::sign(&p.signer, &[&p.ca.cert], PDF, true);
    // Named after the document.
    let mail = mixed(
        "buerger@example.org",
        &[
            att("antrag.pdf", "application/pdf", PDF),
            att("antrag.pdf.p7s", "application/pkcs7-signature", &sig),
        ],
    );
    let r = v(&p).verify_mail(&mail);
    assert_eq!(r.signatures.len(), 1, "{}", summary(&r));
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{}", summary(&r));
    assert_eq!(s.signed.kind, SignatureKind::DetachedAttachment);
    assert_eq!(s.signed.filename.as_deref(), Some("antrag.pdf"));
    assert_eq!(s.signed.section, "2");
    // Named otherwise: found by its digest.
    let mail = mixed(
        "buerger@example.org",
        &[
            att("notes.txt", "text/plain", b"unrelated"),
            att("antrag.pdf", "application/pdf", PDF),
            att("signatur.p7s", "application/octet-stream", &sig),
        ],
    );
    let r = v(&p).verify_mail(&mail);
    assert_eq!(r.indication(), Indication::TotalPassed, "{}", summary(&r));
    assert_eq!(r.signatures[0].signed.section, "3");
}

#[test]
fn changed_or_missing_document() {
    let p = pki();
    let sig = pki::sign(&p.signer, &[&p.ca.cert], PDF, true);
    let mut changed = PDF.to_vec();
    changed[3] = b'X';
    let by_name = mixed(
        "b@example.org",
        &[
            att("antrag.pdf", "application/pdf", &changed),
            att("antrag.pdf.p7s", "application/pkcs7-signature", &sig),
        ],
    );
    let r = v(&p).verify_mail(&by_name);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
    let no_match = mixed(
        "b@example.org",
        &[
            att("other.pdf", "application/pdf", &changed),
            att("sig.p7s", "application/pkcs7-signature", &sig),
        ],
    );
    let r = v(&p).verify_mail(&no_match);
    let s = &r.signatures[0];
    assert_eq!(s.sub_indication, Some(SubIndication::SignedDataNotFound));
    assert!(s.errors[0].contains("sig.p7s"), "{:?}", s.errors);
    // A signature file that is the whole body.
    let lone = format!(
        "From: b@example.org\r\nContent-Type: application/pkcs7-signature; name=x.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        encode_block(&sig)
    );
    let r = v(&p).verify_mail(lone.as_bytes());
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::SignedDataNotFound)
    );
}

#[test]
fn documents_are_hashed_as_transmitted_not_charset_converted() {
    // A Latin-1 text file in quoted-printable: the signature covers the Latin-1 bytes.
    let p = pki();
    let latin1 = b"Gr\xfc\xdfe aus M\xfcnchen\r\n";
    let sig = pki::sign(&p.signer, &[&p.ca.cert], latin1, true);
    let mail = mixed(
        "b@example.org",
        &[
            Att {
                name: "brief.txt",
                ctype: "text/plain; charset=iso-8859-1",
                body: (
                    "quoted-printable",
                    "Gr=FC=DFe aus M=FCnchen".to_string() + "\r\n",
                ),
            },
            att("brief.txt.p7s", "application/pkcs7-signature", &sig),
        ],
    );
    let r = v(&p).verify_mail(&mail);
    assert_eq!(r.indication(), Indication::TotalPassed, "{}", summary(&r));
}

#[test]
fn enveloping_attachment_inside_a_signed_mail() {
    let p = pki();
    let p7m = pki::sign(&p.signer, &[&p.ca.cert], PDF, false);
    let inner = String::from_utf8(mixed(
        "erika@example.org",
        &[att(
            "antrag.pdf.p7m",
            "application/pkcs7-mime; smime-type=signed-data",
            &p7m,
        )],
    ))
    .unwrap();
    // Sign the multipart/mixed entity (its headers from Content-Type on) with S/MIME.
    // The CRLF before the next boundary belongs to the delimiter, not to the signed part.
    let entity_start = inner.find("MIME-Version").unwrap();
    let entity = inner[entity_start..].trim_end_matches("\r\n");
    let sig = pki::sign(&p.signer, &[&p.ca.cert], entity.as_bytes(), true);
    let mail = format!(
        "From: erika@example.org\r\nTo: poststelle@magdeburg.example\r\nSubject: s\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/signed; \
         protocol=\"application/x-pkcs7-signature\"; micalg=sha-256; boundary=\"outer\"\r\n\r\n\
         --outer\r\n{}\r\n--outer\r\nContent-Type: application/x-pkcs7-signature\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer--\r\n",
        entity,
        encode_block(&sig)
    );
    let r = v(&p).verify_mail(mail.as_bytes());
    assert_eq!(r.signatures.len(), 2, "{}", summary(&r));
    assert_eq!(r.signatures[0].signed.kind, SignatureKind::MultipartSigned);
    assert_eq!(
        r.signatures[1].signed.kind,
        SignatureKind::EnvelopingAttachment
    );
    assert_eq!(r.signatures[1].signed.section, "1.2");
    assert_eq!(r.indication(), Indication::TotalPassed, "{}", summary(&r));
}

#[test]
fn forwarded_signed_mail_is_checked_against_its_own_from() {
    let tb = read("thunderbird-smime/alice.dsig.SHA256.multipart.eml");
    let mail = [
        &b"From: bob@example.com\r\nTo: poststelle@magdeburg.example\r\nSubject: Fwd\r\n\
           MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n\
           --fwd\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
           --fwd\r\nContent-Type: message/rfc822\r\n\r\n"[..],
        &tb,
        b"\r\n--fwd--\r\n",
    ]
    .concat();
    let v = verifier(
        anchors(&["thunderbird-smime/TestCA.pem"]),
        "2026-06-01T00:00:00Z",
        ValidationModel::Chain,
    );
    let r = v.verify_mail(&mail);
    assert_eq!(r.signatures.len(), 1, "{}", summary(&r));
    assert_eq!(
        r.signatures[0].indication,
        Indication::TotalPassed,
        "{}",
        summary(&r)
    );
    assert_eq!(r.signatures[0].signed.section, "2.1");
    // The same, the forwarded message base64-encoded (mail-parser parses it separately).
    let encoded = [
        &b"From: bob@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n\
           Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n\
           --fwd\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"[..],
        encode_block(&tb).as_bytes(),
        b"\r\n--fwd--\r\n",
    ]
    .concat();
    let r = v.verify_mail(&encoded);
    assert_eq!(r.indication(), Indication::TotalPassed, "{}", summary(&r));
    assert_eq!(r.signatures[0].signed.section, "1.1");
}

#[test]
fn encrypted_parts_are_noted_not_inspected() {
    let v = verifier(
        anchors(&["thunderbird-smime/TestCA.pem"]),
        "2026-06-01T00:00:00Z",
        ValidationModel::Chain,
    );
    let r = v.verify_mail(&read("thunderbird-smime/alice.env.eml"));
    assert!(r.signatures.is_empty());
    assert_eq!(r.indication(), Indication::NoSignatureFound);
    assert!(r.notes[0].contains("envelopedData"), "{:?}", r.notes);
}

#[test]
fn the_number_of_signatures_checked_is_bounded() {
    let p = pki();
    let sig = pki::sign(&p.signer, &[&p.ca.cert], PDF, true);
    let atts: Vec<Att<'_>> = (0..40)
        .map(|_| att("x.p7s", "application/pkcs7-signature", &sig))
        .collect();
    let mut with_doc = vec![att("x", "application/pdf", PDF)];
    with_doc.extend(atts);
    let r = v(&p).verify_mail(&mixed("b@example.org", &with_doc));
    assert_eq!(r.signatures.len(), 16);
    assert!(
        r.notes.iter().any(|n| n.contains("more than 16")),
        "{:?}",
        r.notes
    );
}
