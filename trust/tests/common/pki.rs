//! A throw-away PKI made with real OpenSSL for the tests: a CA, signers with the extensions a
//! test needs (qcStatements, e-mail, key usage), and CMS signatures made by OpenSSL.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509Extension, X509NameBuilder};
use time::{Duration, OffsetDateTime};

pub struct Party {
    pub cert: X509,
    pub key: PKey<Private>,
}

pub struct Spec<'a> {
    pub cn: &'a str,
    pub email: Option<&'a str>,
    pub bits: u32,
    /// Validity relative to now.
    pub from: Duration,
    pub until: Duration,
    pub ca: bool,
    /// keyUsage digitalSignature + nonRepudiation (CA: keyCertSign + cRLSign); when false,
    /// keyEncipherment only.
    pub signing_usage: bool,
    pub qc_statements: Option<Vec<u8>>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            cn: "Erika Mustermann",
            email: Some("erika@example.org"),
            bits: 2048,
            from: Duration::days(-30),
            until: Duration::days(365),
            ca: false,
            signing_usage: true,
            qc_statements: None,
        }
    }
}

fn asn1_time(offset: Duration) -> Asn1Time {
    Asn1Time::from_unix((OffsetDateTime::now_utc() + offset).unix_timestamp()).unwrap()
}

/// Issues a certificate for `spec`, signed by `issuer` (self-signed when `None`).
pub fn issue(spec: &Spec<'_>, issuer: Option<&Party>) -> Party {
    let key = PKey::from_rsa(Rsa::generate(spec.bits).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("C", "DE").unwrap();
    name.append_entry_by_text("O", "demail-gateway tests")
        .unwrap();
    name.append_entry_by_text("CN", spec.cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_serial()).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&asn1_time(spec.from)).unwrap();
    b.set_not_after(&asn1_time(spec.until)).unwrap();
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    let ku = match (spec.signing_usage, spec.ca) {
        (false, _) => KeyUsage::new()
            .critical()
            .key_encipherment()
            .build()
            .unwrap(),
        (true, true) => KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
        (true, false) => KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()
            .unwrap(),
    };
    b.append_extension(ku).unwrap();
    if let Some(mail) = spec.email {
        let san = SubjectAlternativeName::new()
            .email(mail)
            .build(&b.x509v3_context(issuer.map(|i| &*i.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    if let Some(qc) = &spec.qc_statements {
        let oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.3").unwrap();
        let value = Asn1OctetString::new_from_bytes(qc).unwrap();
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).unwrap())
            .unwrap();
    }
    let signing_key = issuer.map_or(&key, |i| &i.key);
    b.sign(signing_key, MessageDigest::sha256()).unwrap();
    Party {
        cert: b.build(),
        key,
    }
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_be_bytes(b) >> 1
}

pub fn ca() -> Party {
    issue(
        &Spec {
            cn: "Test QTSP CA",
            email: None,
            ca: true,
            from: Duration::days(-3650),
            until: Duration::days(3650),
            ..Spec::default()
        },
        None,
    )
}

/// A CMS signature by `signer` over `data` (with the CA certificate included), DER.
pub fn sign(signer: &Party, chain: &[&X509], data: &[u8], detached: bool) -> Vec<u8> {
    let mut certs = Stack::new().unwrap();
    for c in chain {
        certs.push((*c).clone()).unwrap();
    }
    let mut flags = CMSOptions::BINARY;
    if detached {
        flags |= CMSOptions::DETACHED;
    }
    let cms = CmsContentInfo::sign(
        Some(&signer.cert),
        Some(&signer.key),
        Some(&certs),
        Some(data),
        flags,
    )
    .unwrap();
    cms.to_der().unwrap()
}

/// qcStatements DER: QcCompliance, QcSSCD, QcType esign, QcCClegislation DE.
pub fn qes_statements() -> Vec<u8> {
    let enc = demail_trust::der::encode;
    let oid = |last: &[u8]| {
        let mut v = vec![0x04, 0x00, 0x8e, 0x46, 0x01];
        v.extend_from_slice(last);
        enc(0x06, &v)
    };
    let seq = |parts: &[Vec<u8>]| enc(0x30, &parts.concat());
    seq(&[
        seq(&[oid(&[1])]),
        seq(&[oid(&[4])]),
        seq(&[oid(&[6]), seq(&[oid(&[6, 1])])]),
        seq(&[oid(&[7]), seq(&[enc(0x13, b"DE")])]),
    ])
}

/// A multipart/signed mail as a client sends it (CRLF), signed by `signer`.
pub fn smime_mail(signer: &Party, ca: &X509, from: &str, date: &str, text: &str) -> Vec<u8> {
    let part = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n");
    let sig = sign(signer, &[ca], part.as_bytes(), true);
    format!(
        "From: {from}\r\nTo: poststelle@magdeburg.example\r\nDate: {date}\r\n\
         Subject: Antrag\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"sig\"\r\n\r\n\
         --sig\r\n{part}\r\n--sig\r\n\
         Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=smime.p7s\r\n\r\n{}\r\n--sig--\r\n",
        openssl::base64::encode_block(&sig)
    )
    .into_bytes()
}

/// RFC 5322 date of now + `offset`.
pub fn mail_date(offset: Duration) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    (OffsetDateTime::now_utc() + offset).format(&fmt).unwrap()
}
