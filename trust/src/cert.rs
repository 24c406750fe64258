//! X.509 certificates: the openssl object for chains and crypto, plus the fields we read
//! ourselves (validity as `time` values, extensions by OID, the raw issuer and serial that a
//! SignerInfo refers to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::X509;
use serde::Serialize;
use time::OffsetDateTime;

use crate::cms::{AlgorithmId, SignerId};
use crate::der::{self, DerError, Result, tag};
use crate::oid;
use crate::qc::{self, QcStatements};

#[derive(Debug, Clone)]
pub struct Extension {
    pub oid: String,
    pub value: Vec<u8>,
}

/// A certificate with the fields validation needs; cheap to clone (shared).
#[derive(Clone)]
pub struct Cert(Arc<CertData>);

impl std::ops::Deref for Cert {
    type Target = CertData;

    fn deref(&self) -> &CertData {
        &self.0
    }
}

pub struct CertData {
    pub x509: X509,
    pub der: Vec<u8>,
    /// SHA-256 of `der`.
    pub fingerprint: [u8; 32],
    pub serial: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Dotted OID of the algorithm the issuer signed this certificate with.
    pub signature_algorithm: String,
    pub signature_params: Option<Vec<u8>>,
    pub extensions: Vec<Extension>,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert")
            .field("subject", &self.display_name())
            .finish()
    }
}

impl Cert {
    /// Parses DER; `openssl` must accept it too, so both sides see the same certificate.
    pub fn from_der(data: &[u8]) -> Result<Cert> {
        let x509 = X509::from_der(data)
            .map_err(|e| DerError::new(0, format!("OpenSSL rejects the certificate: {e}")))?;
        let outer = der::parse_single(data, "Certificate")?;
        let mut c = outer.children()?;
        let tbs = c.expect(tag::SEQUENCE, "tbsCertificate")?;
        let sig_alg = AlgorithmId::parse(&c.expect(tag::SEQUENCE, "signatureAlgorithm")?)?;
        let mut t = tbs.children()?;
        t.optional(tag::ctx(0))?;
        let serial = t
            .expect(tag::INTEGER, "serialNumber")?
            .integer_bytes()?
            .to_vec();
        t.expect(tag::SEQUENCE, "signature")?;
        let issuer_raw = t.expect(tag::SEQUENCE, "issuer")?.raw.to_vec();
        let validity = t.expect(tag::SEQUENCE, "validity")?;
        let mut v = validity.children()?;
        let not_before = v.read()?.time()?;
        let not_after = v.read()?.time()?;
        t.expect(tag::SEQUENCE, "subject")?;
        t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?;
        t.optional(tag::ctx_prim(1))?;
        t.optional(tag::ctx_prim(2))?;
        let mut extensions = Vec::new();
        if let Some(exts) = t.optional(tag::ctx(3))? {
            let mut seq = exts.children()?;
            let list = seq.expect(tag::SEQUENCE, "Extensions")?;
            for ext in list.children()?.all()? {
                let mut e = ext.children()?;
                let oid = e.expect(tag::OID, "extnID")?.oid()?;
                if let Some(critical) = e.optional(tag::BOOLEAN)? {
                    critical.boolean()?;
                }
                let value = e.expect(tag::OCTET_STRING, "extnValue")?.content.to_vec();
                e.finish("Extension")?;
                extensions.push(Extension { oid, value });
            }
        }
        Ok(Cert(Arc::new(CertData {
            x509,
            der: data.to_vec(),
            fingerprint: openssl::sha::sha256(data),
            serial,
            issuer_raw,
            not_before,
            not_after,
            signature_algorithm: sig_alg.oid,
            signature_params: sig_alg.params.map(|p| p.raw.to_vec()),
            extensions,
        })))
    }

    pub fn from_x509(x509: &X509) -> Result<Cert> {
        let der = x509
            .to_der()
            .map_err(|e| DerError::new(0, format!("certificate cannot be encoded: {e}")))?;
        Cert::from_der(&der)
    }

    pub fn extension(&self, oid: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    pub fn valid_at(&self, t: OffsetDateTime) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    pub fn matches(&self, sid: &SignerId<'_>) -> bool {
        match sid {
            SignerId::IssuerSerial { issuer, serial } => {
                self.serial == *serial && self.issuer_raw == *issuer
            }
            SignerId::SubjectKeyId(id) => self.subject_key_id().as_deref() == Some(id.as_ref()),
        }
    }

    fn subject_key_id(&self) -> Option<Vec<u8>> {
        let ext = self.extension(oid::SUBJECT_KEY_IDENTIFIER)?;
        let tlv = der::parse_single(&ext.value, "SubjectKeyIdentifier").ok()?;
        tlv.octets().ok().map(|c| c.into_owned())
    }

    /// Hash of the DER with the digest named by `oid` (for ESS references).
    pub fn digest(&self, digest_oid: &str) -> Option<Vec<u8>> {
        let md = digest_by_oid(digest_oid)?;
        hash(md, &self.der).ok().map(|d| d.to_vec())
    }

    pub fn sha256_hex(&self) -> String {
        hex(&self.fingerprint)
    }

    pub fn common_name(&self) -> Option<String> {
        name_entry(self.x509.subject_name(), Nid::COMMONNAME)
    }

    /// E-mail addresses from subjectAltName and from the subject's emailAddress.
    pub fn emails(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .x509
            .subject_alt_names()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.email().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for entry in self
            .x509
            .subject_name()
            .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
        {
            if let Ok(s) = entry.data().to_string()
                && !out.iter().any(|o| o.eq_ignore_ascii_case(&s))
            {
                out.push(s);
            }
        }
        out
    }

    /// The subject as one line (`CN=..., O=..., C=...`, most specific first).
    pub fn subject_line(&self) -> String {
        name_line(self.x509.subject_name())
    }

    pub fn issuer_line(&self) -> String {
        name_line(self.x509.issuer_name())
    }

    /// The CN, or the whole subject when there is no CN.
    pub fn display_name(&self) -> String {
        self.common_name().unwrap_or_else(|| self.subject_line())
    }

    /// keyUsage bits (bit 0 = digitalSignature, 1 = nonRepudiation, ...), if present.
    pub fn key_usage(&self) -> Result<Option<u16>> {
        let Some(ext) = self.extension(oid::KEY_USAGE) else {
            return Ok(None);
        };
        let tlv = der::parse_single(&ext.value, "KeyUsage")?;
        let (_, bits) = tlv.bit_string()?;
        let mut v = 0u16;
        for (i, byte) in bits.iter().take(2).enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    v |= 1 << (i * 8 + bit);
                }
            }
        }
        Ok(Some(v))
    }

    pub fn qc_statements(&self) -> Result<Option<QcStatements>> {
        match self.extension(oid::QC_STATEMENTS) {
            Some(ext) => qc::parse(&ext.value).map(Some),
            None => Ok(None),
        }
    }

    /// Key algorithm and size, e.g. ("RSA", 2048); `None` when OpenSSL cannot read the key
    /// (a DSA key inheriting its parameters, an unknown curve).
    pub fn key_info(&self) -> Option<(&'static str, u32)> {
        let key = self.x509.public_key().ok()?;
        let kind = match key.id() {
            Id::RSA => "RSA",
            Id::RSA_PSS => "RSA-PSS",
            Id::DSA => "DSA",
            Id::EC => "EC",
            Id::ED25519 => "Ed25519",
            Id::ED448 => "Ed448",
            _ => "unknown",
        };
        Some((kind, key.bits()))
    }

    pub fn summary(&self) -> CertSummary {
        CertSummary {
            subject: self.subject_line(),
            issuer: self.issuer_line(),
            serial: hex(&self.serial),
            not_before: self.not_before,
            not_after: self.not_after,
            sha256: self.sha256_hex(),
        }
    }
}

/// What a report shows of each certificate in the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub sha256: String,
}

pub fn digest_by_oid(digest_oid: &str) -> Option<MessageDigest> {
    Some(match digest_oid {
        oid::MD5 => MessageDigest::md5(),
        oid::SHA1 => MessageDigest::sha1(),
        oid::SHA224 => MessageDigest::sha224(),
        oid::SHA256 => MessageDigest::sha256(),
        oid::SHA384 => MessageDigest::sha384(),
        oid::SHA512 => MessageDigest::sha512(),
        oid::SHA3_224 => MessageDigest::sha3_224(),
        oid::SHA3_256 => MessageDigest::sha3_256(),
        oid::SHA3_384 => MessageDigest::sha3_384(),
        oid::SHA3_512 => MessageDigest::sha3_512(),
        oid::RIPEMD160 => MessageDigest::ripemd160(),
        _ => return None,
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn name_entry(name: &openssl::x509::X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

fn name_line(name: &openssl::x509::X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}

/// Parsed certificates by content. OpenSSL 3 spends most of a verification decoding
/// certificates (public keys go through its provider decoders), and the same CA certificates
/// arrive with every signature their signers make.
pub struct CertCache {
    map: Mutex<HashMap<[u8; 32], Cert>>,
    capacity: usize,
}

impl CertCache {
    pub fn new(capacity: usize) -> CertCache {
        CertCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn parse(&self, der: &[u8]) -> Result<Cert> {
        let key = openssl::sha::sha256(der);
        if let Ok(map) = self.map.lock()
            && let Some(c) = map.get(&key)
        {
            return Ok(c.clone());
        }
        let cert = Cert::from_der(der)?;
        if let Ok(mut map) = self.map.lock() {
            // Crude but bounded: a full cache starts over.
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(key, cert.clone());
        }
        Ok(cert)
    }
}
