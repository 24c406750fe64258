//! CMS SignedData (RFC 5652 §5) as far as validation needs it, read with our own DER reader
//! because the safe openssl API has no SignerInfo accessors.

use std::borrow::Cow;

use crate::der::{self, DerError, Reader, Result, Tlv, tag};
use crate::oid;

/// ContentInfo: the outermost CMS structure.
#[derive(Debug)]
pub struct ContentInfo<'a> {
    pub content_type: String,
    pub content: Option<Tlv<'a>>,
    pub trailing: usize,
}

/// Bytes after the ContentInfo are tolerated (OpenSSL ignores them too; files padded with
/// zeros exist) and counted in `trailing`: they are not signed, so never used.
pub fn parse_content_info(data: &[u8]) -> Result<ContentInfo<'_>> {
    let outer = Reader::new(data).read()?;
    let trailing = data.len() - outer.raw.len();
    if outer.ident != tag::SEQUENCE {
        return Err(outer.err("ContentInfo must be a SEQUENCE"));
    }
    let mut r = outer.children()?;
    let content_type = r.expect(tag::OID, "contentType")?.oid()?;
    let content = match r.optional(tag::ctx(0))? {
        Some(explicit) => {
            let mut inner = explicit.children()?;
            let c = inner.read()?;
            inner.finish("content")?;
            Some(c)
        }
        None => None,
    };
    r.finish("ContentInfo")?;
    Ok(ContentInfo {
        content_type,
        content,
        trailing,
    })
}

/// An AlgorithmIdentifier; absent and NULL parameters are both `None`.
#[derive(Debug, Clone)]
pub struct AlgorithmId<'a> {
    pub oid: String,
    pub params: Option<Tlv<'a>>,
}

impl<'a> AlgorithmId<'a> {
    pub fn parse(tlv: &Tlv<'a>) -> Result<AlgorithmId<'a>> {
        if tlv.ident != tag::SEQUENCE {
            return Err(tlv.err("AlgorithmIdentifier must be a SEQUENCE"));
        }
        let mut r = tlv.children()?;
        let oid = r.expect(tag::OID, "algorithm")?.oid()?;
        let params = if r.is_empty() {
            None
        } else {
            let p = r.read()?;
            (p.ident != tag::NULL).then_some(p)
        };
        r.finish("AlgorithmIdentifier")?;
        Ok(AlgorithmId { oid, params })
    }
}

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone)]
pub enum SignerId<'a> {
    /// Raw DER of the issuer Name and the serial number's INTEGER content.
    IssuerSerial {
        issuer: &'a [u8],
        serial: &'a [u8],
    },
    SubjectKeyId(Cow<'a, [u8]>),
}

#[derive(Debug, Clone)]
pub struct Attribute<'a> {
    pub oid: String,
    pub values: Vec<Tlv<'a>>,
}

/// The signed attributes (OpenSSL verifies the signature over their encoding).
#[derive(Debug, Clone)]
pub struct SignedAttributes<'a> {
    pub attrs: Vec<Attribute<'a>>,
}

#[derive(Debug, Clone)]
pub struct SignerInfo<'a> {
    pub sid: SignerId<'a>,
    pub digest_algorithm: AlgorithmId<'a>,
    pub signed_attrs: Option<SignedAttributes<'a>>,
    pub signature_algorithm: AlgorithmId<'a>,
    /// Unsigned attributes (timestamps, counter-signatures, validation data) are present.
    pub has_unsigned_attrs: bool,
    /// The whole SignerInfo, to rebuild a single-signer SignedData.
    pub raw: &'a [u8],
}

#[derive(Debug)]
pub struct SignedData<'a> {
    pub econtent_type: String,
    /// Encapsulated content; `None` for a detached signature.
    pub econtent: Option<Cow<'a, [u8]>>,
    /// DER of every X.509 certificate in `certificates` (other choices are skipped).
    pub certificates: Vec<&'a [u8]>,
    pub signers: Vec<SignerInfo<'a>>,
    /// Unsigned bytes after the structure.
    pub trailing: usize,
    raw: RawParts<'a>,
}

/// The encoded pieces of SignedData, to rebuild it with one SignerInfo.
#[derive(Debug)]
struct RawParts<'a> {
    version: &'a [u8],
    digest_algorithms: &'a [u8],
    encap: &'a [u8],
}

/// Parses a ContentInfo that must hold SignedData.
pub fn parse_signed_data(data: &[u8]) -> Result<SignedData<'_>> {
    let ci = parse_content_info(data)?;
    if ci.content_type != oid::SIGNED_DATA {
        return Err(DerError::new(
            0,
            format!(
                "CMS content is {}, not signedData",
                oid::name(&ci.content_type)
            ),
        ));
    }
    let sd = ci
        .content
        .ok_or_else(|| DerError::new(0, "signedData without content"))?;
    if sd.ident != tag::SEQUENCE {
        return Err(sd.err("SignedData must be a SEQUENCE"));
    }
    let mut r = sd.children()?;
    let version_tlv = r.expect(tag::INTEGER, "SignedData version")?;
    version_tlv.small_uint()?;
    let digest_set = r.expect(tag::SET, "digestAlgorithms")?;
    let digest_algorithms = digest_set
        .children()?
        .all()?
        .iter()
        .map(AlgorithmId::parse)
        .collect::<Result<Vec<_>>>()?;
    let encap = r.expect(tag::SEQUENCE, "encapContentInfo")?;
    let (econtent_type, econtent) = parse_encap(&encap)?;
    let certs_tlv = r.optional(tag::ctx(0))?;
    let certificates = match &certs_tlv {
        Some(set) => set
            .children()?
            .all()?
            .into_iter()
            .filter(|c| c.ident == tag::SEQUENCE)
            .map(|c| c.raw)
            .collect(),
        None => Vec::new(),
    };
    r.optional(tag::ctx(1))?; // crls: revocation data comes from RevocationChecker
    let signer_set = r.expect(tag::SET, "signerInfos")?;
    r.finish("SignedData")?;
    let signers = signer_set
        .children()?
        .all()?
        .iter()
        .map(parse_signer_info)
        .collect::<Result<Vec<_>>>()?;
    for s in &signers {
        if !digest_algorithms
            .iter()
            .any(|d| d.oid == s.digest_algorithm.oid)
        {
            return Err(DerError::new(
                sd.offset,
                format!(
                    "digestAlgorithms does not list the signer's digest algorithm {}",
                    oid::name(&s.digest_algorithm.oid)
                ),
            ));
        }
    }
    Ok(SignedData {
        econtent_type,
        econtent,
        certificates,
        signers,
        trailing: ci.trailing,
        raw: RawParts {
            version: version_tlv.raw,
            digest_algorithms: digest_set.raw,
            encap: encap.raw,
        },
    })
}

fn parse_encap<'a>(encap: &Tlv<'a>) -> Result<(String, Option<Cow<'a, [u8]>>)> {
    let mut r = encap.children()?;
    let econtent_type = r.expect(tag::OID, "eContentType")?.oid()?;
    let econtent = match r.optional(tag::ctx(0))? {
        Some(explicit) => {
            let mut inner = explicit.children()?;
            let octets = inner.read()?.octets()?;
            inner.finish("eContent")?;
            Some(octets)
        }
        None => None,
    };
    r.finish("encapContentInfo")?;
    Ok((econtent_type, econtent))
}

fn parse_signer_info<'a>(tlv: &Tlv<'a>) -> Result<SignerInfo<'a>> {
    if tlv.ident != tag::SEQUENCE {
        return Err(tlv.err("SignerInfo must be a SEQUENCE"));
    }
    let mut r = tlv.children()?;
    r.expect(tag::INTEGER, "SignerInfo version")?.small_uint()?;
    let sid_tlv = r.read()?;
    let sid = match sid_tlv.ident {
        tag::SEQUENCE => {
            let mut s = sid_tlv.children()?;
            let issuer = s.expect(tag::SEQUENCE, "issuer Name")?.raw;
            let serial = s.expect(tag::INTEGER, "serialNumber")?.integer_bytes()?;
            s.finish("IssuerAndSerialNumber")?;
            SignerId::IssuerSerial { issuer, serial }
        }
        i if i == tag::ctx_prim(0) || i == tag::ctx(0) => {
            SignerId::SubjectKeyId(sid_tlv.octets_tagged(tag::ctx_prim(0))?)
        }
        other => {
            return Err(sid_tlv.err(format!("SignerIdentifier has unknown tag 0x{other:02x}")));
        }
    };
    let digest_algorithm = AlgorithmId::parse(&r.expect(tag::SEQUENCE, "digestAlgorithm")?)?;
    let signed_attrs = match r.optional(tag::ctx(0))? {
        Some(set) => Some(SignedAttributes {
            attrs: parse_attributes(&set)?,
        }),
        None => None,
    };
    let signature_algorithm = AlgorithmId::parse(&r.expect(tag::SEQUENCE, "signatureAlgorithm")?)?;
    r.read()?.octets()?; // signature value: OpenSSL checks it
    let has_unsigned_attrs = r.optional(tag::ctx(1))?.is_some();
    r.finish("SignerInfo")?;
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs,
        signature_algorithm,
        has_unsigned_attrs,
        raw: tlv.raw,
    })
}

fn parse_attributes<'a>(set: &Tlv<'a>) -> Result<Vec<Attribute<'a>>> {
    let mut out = Vec::new();
    let mut r = set.children()?;
    while !r.is_empty() {
        let attr = r.expect(tag::SEQUENCE, "Attribute")?;
        let mut a = attr.children()?;
        let oid = a.expect(tag::OID, "attrType")?.oid()?;
        let values = a.expect(tag::SET, "attrValues")?.children()?.all()?;
        a.finish("Attribute")?;
        out.push(Attribute { oid, values });
    }
    Ok(out)
}

impl SignedData<'_> {
    /// This SignedData for OpenSSL: without the certificate and CRL sets, and with only
    /// signer `index` if given. Certificates are not signed, so dropping them changes nothing
    /// verified; it spares OpenSSL 3 from decoding them again (its slowest step; we hand it
    /// the signer's certificate from our cache). One signer at a time lets each SignerInfo
    /// get its own verdict, as OpenSSL verifies all of them at once. Inner elements are copied
    /// as sent (BER stays BER).
    pub fn for_openssl(&self, index: Option<usize>) -> Option<Vec<u8>> {
        let mut body = Vec::with_capacity(self.raw.encap.len() + 1024);
        body.extend_from_slice(self.raw.version);
        body.extend_from_slice(self.raw.digest_algorithms);
        body.extend_from_slice(self.raw.encap);
        let signers: Vec<u8> = match index {
            Some(i) => self.signers.get(i)?.raw.to_vec(),
            None => self
                .signers
                .iter()
                .flat_map(|s| s.raw.iter().copied())
                .collect(),
        };
        body.extend_from_slice(&der::encode(tag::SET, &signers));
        let signed_data = der::encode(tag::SEQUENCE, &body);
        let mut ci = der::encode(tag::OID, &signed_data_oid());
        ci.extend_from_slice(&der::encode(tag::ctx(0), &signed_data));
        Some(der::encode(tag::SEQUENCE, &ci))
    }
}

fn signed_data_oid() -> [u8; 9] {
    [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]
}

/// The content type of a CMS blob without validating the rest (to tell signed from encrypted
/// S/MIME parts).
pub fn content_type(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let outer = r.read().ok()?;
    if outer.ident != tag::SEQUENCE {
        return None;
    }
    outer.children().ok()?.read().ok()?.oid().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_counted_not_parsed() {
        let ci = [&der::encode(tag::OID, &signed_data_oid())[..]].concat();
        let mut data = der::encode(tag::SEQUENCE, &ci);
        data.extend_from_slice(&[0, 0, 0]);
        let parsed = parse_content_info(&data).unwrap();
        assert_eq!(parsed.trailing, 3);
        assert!(parsed.content.is_none());
        assert!(
            parse_signed_data(&data)
                .unwrap_err()
                .what
                .contains("without content")
        );
    }

    #[test]
    fn signed_data_oid_matches_constant() {
        assert_eq!(
            der::decode_oid(&signed_data_oid()).unwrap(),
            oid::SIGNED_DATA
        );
    }
}
