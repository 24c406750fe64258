//! The signed attributes validation looks at: content type, message digest, signing time and
//! the ESS signing-certificate(-v2) reference (RFC 5652 §11, RFC 2634 §5.4, RFC 5035).

use time::OffsetDateTime;

use crate::cms::{AlgorithmId, SignedAttributes};
use crate::der::{DerError, Result, Tlv, tag};
use crate::oid;

/// One certificate reference from an ESS signing-certificate attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EssCertId {
    /// Dotted OID of the hash over the certificate's DER.
    pub hash_algorithm: String,
    pub hash: Vec<u8>,
    /// INTEGER content of the serial in `issuerSerial`, when given.
    pub serial: Option<Vec<u8>>,
    /// 1 for signing-certificate, 2 for signing-certificate-v2.
    pub version: u8,
}

#[derive(Debug, Clone, Default)]
pub struct SignedAttrValues {
    pub content_type: Option<String>,
    pub message_digest: Option<Vec<u8>>,
    pub signing_time: Option<OffsetDateTime>,
    /// The first ESSCertID(v2) of each signing-certificate attribute: v2 first, then v1.
    pub signing_certificate: Vec<EssCertId>,
}

/// Extracts the typed values. Attributes that RFC 5652 and CAdES allow only once with one value
/// are refused when repeated: a verifier and a viewer must not pick different ones.
pub fn typed(attrs: &SignedAttributes<'_>) -> Result<SignedAttrValues> {
    let mut out = SignedAttrValues::default();
    let mut seen: Vec<&str> = Vec::new();
    for a in &attrs.attrs {
        let single = [
            oid::CONTENT_TYPE,
            oid::MESSAGE_DIGEST,
            oid::SIGNING_TIME,
            oid::SIGNING_CERTIFICATE,
            oid::SIGNING_CERTIFICATE_V2,
        ];
        let Some(known) = single.iter().find(|o| **o == a.oid) else {
            continue;
        };
        let here = a.values.first().map_or(0, |v| v.offset);
        if seen.contains(known) {
            return Err(DerError::new(
                here,
                format!("signed attribute {} occurs more than once", label(known)),
            ));
        }
        seen.push(known);
        let [value] = a.values.as_slice() else {
            return Err(DerError::new(
                here,
                format!(
                    "signed attribute {} must have exactly one value",
                    label(known)
                ),
            ));
        };
        match *known {
            oid::CONTENT_TYPE => out.content_type = Some(value.oid()?),
            oid::MESSAGE_DIGEST => out.message_digest = Some(value.octets()?.into_owned()),
            oid::SIGNING_TIME => out.signing_time = Some(value.time()?),
            oid::SIGNING_CERTIFICATE => out.signing_certificate.push(first_ess_cert_id(value, 1)?),
            _ => out
                .signing_certificate
                .insert(0, first_ess_cert_id(value, 2)?),
        }
    }
    Ok(out)
}

fn label(oid: &str) -> &'static str {
    match oid {
        oid::CONTENT_TYPE => "contentType",
        oid::MESSAGE_DIGEST => "messageDigest",
        oid::SIGNING_TIME => "signingTime",
        oid::SIGNING_CERTIFICATE => "signingCertificate",
        _ => "signingCertificateV2",
    }
}

/// SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), policies OPTIONAL }.
/// The first entry identifies the signing certificate; the others only help path building.
fn first_ess_cert_id(value: &Tlv<'_>, version: u8) -> Result<EssCertId> {
    if value.ident != tag::SEQUENCE {
        return Err(value.err("SigningCertificate must be a SEQUENCE"));
    }
    let mut r = value.children()?;
    let certs = r.expect(tag::SEQUENCE, "certs")?;
    let mut ids = certs.children()?;
    let first = ids.expect(tag::SEQUENCE, "ESSCertID")?;
    let mut e = first.children()?;
    let hash_algorithm = if version == 2 && e.peek_ident() == Some(tag::SEQUENCE) {
        AlgorithmId::parse(&e.read()?)?.oid
    } else if version == 2 {
        oid::SHA256.to_string()
    } else {
        oid::SHA1.to_string()
    };
    let hash = e
        .expect(tag::OCTET_STRING, "certHash")?
        .octets()?
        .into_owned();
    let serial = match e.optional(tag::SEQUENCE)? {
        Some(issuer_serial) => {
            let mut s = issuer_serial.children()?;
            s.expect(tag::SEQUENCE, "GeneralNames")?;
            let serial = s.expect(tag::INTEGER, "serialNumber")?.integer_bytes()?;
            Some(serial.to_vec())
        }
        None => None,
    };
    e.finish("ESSCertID")?;
    Ok(EssCertId {
        hash_algorithm,
        hash,
        serial,
        version,
    })
}
