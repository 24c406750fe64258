//! Certificates for the revocation tests: a CA from `common::pki`, signers whose AIA names an
//! OCSP responder, a delegated OCSP responder certificate, and the OpenSSL `index.txt` lines
//! that `openssl ocsp` and `openssl ca -gencrl` read.
#![allow(dead_code)]

use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509Extension, X509NameBuilder};
use time::{Duration, OffsetDateTime};

use crate::common::pki::Party;

pub const SIGNER_EMAIL: &str = "erika@example.org";

/// A certificate issued by `ca` with this serial; `ocsp_url` goes into the AIA; `responder`
/// makes it a delegated OCSP responder (extendedKeyUsage id-kp-OCSPSigning) instead of a
/// signer.
pub fn issue(ca: &Party, cn: &str, serial: u32, ocsp_url: Option<&str>, responder: bool) -> Party {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("C", "DE").unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(serial).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&asn1(Duration::days(-30))).unwrap();
    b.set_not_after(&asn1(Duration::days(365))).unwrap();
    b.append_extension(BasicConstraints::new().critical().build().unwrap())
        .unwrap();
    if responder {
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .other("OCSPSigning")
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        let ku = KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()
            .unwrap();
        b.append_extension(ku).unwrap();
        let san = SubjectAlternativeName::new()
            .email(SIGNER_EMAIL)
            .build(&b.x509v3_context(Some(&ca.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    if let Some(url) = ocsp_url {
        b.append_extension(aia(url)).unwrap();
    }
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    Party {
        cert: b.build(),
        key,
    }
}

/// authorityInfoAccess with one id-ad-ocsp URI (RFC 5280 §4.2.2.1).
fn aia(url: &str) -> X509Extension {
    let enc = demail_trust::der::encode;
    let ocsp = enc(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
    let uri = enc(0x86, url.as_bytes());
    let der = enc(0x30, &enc(0x30, &[ocsp, uri].concat()));
    let oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.1").unwrap();
    X509Extension::new_from_der(&oid, false, &Asn1OctetString::new_from_bytes(&der).unwrap())
        .unwrap()
}

pub fn asn1(offset: Duration) -> Asn1Time {
    Asn1Time::from_unix((OffsetDateTime::now_utc() + offset).unix_timestamp()).unwrap()
}

/// OpenSSL's CA database time (UTCTime, `YYMMDDHHMMSSZ`).
fn db_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year repr:last_two][month][day][hour][minute][second]Z"
    );
    t.format(&f).unwrap()
}

/// How `index.txt` lists a certificate.
pub enum Entry {
    Valid,
    /// Revoked this long from now (negative: in the past), with an optional CRLReason name.
    Revoked(Duration, Option<&'static str>),
}

/// One `index.txt` line: status, expiry, revocation time[,reason], serial (upper-case hex,
/// as OpenSSL's BN_bn2hex writes it), file name, subject.
pub fn index_line(party: &Party, entry: &Entry) -> String {
    let cert = &party.cert;
    let serial = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    let expiry = OffsetDateTime::now_utc() + Duration::days(365);
    let subject: String = cert
        .subject_name()
        .entries()
        .map(|e| {
            format!(
                "/{}={}",
                e.object().nid().short_name().unwrap(),
                e.data().to_string().unwrap()
            )
        })
        .collect();
    let (status, revoked) = match entry {
        Entry::Valid => ("V", String::new()),
        Entry::Revoked(offset, reason) => {
            let t = db_time(OffsetDateTime::now_utc() + *offset);
            ("R", reason.map_or(t.clone(), |r| format!("{t},{r}")))
        }
    };
    format!(
        "{status}\t{}\t{revoked}\t{serial}\tunknown\t{subject}\n",
        db_time(expiry)
    )
}

pub fn write_pem(dir: &Path, name: &str, party: &Party) {
    std::fs::write(
        dir.join(format!("{name}.pem")),
        party.cert.to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        party.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
}
