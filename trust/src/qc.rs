//! The qcStatements certificate extension (RFC 3739 §3.2.6, ETSI EN 319 412-5 §4).
//!
//! `QCStatements ::= SEQUENCE OF SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }`.
//! Known statements with malformed contents are errors; unknown statements are kept by OID
//! (a CA may add national ones) and never make the extension unreadable.

use serde::Serialize;

use crate::der::{self, Result, Tlv, tag};
use crate::oid;

/// ETSI EN 319 412-5 §4.2.3 QcType values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QcType {
    Esign,
    Eseal,
    Web,
    #[serde(untagged)]
    Other(String),
}

/// QcLimitValue: the transaction limit, `amount * 10^exponent` in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QcLimit {
    pub currency: String,
    pub amount: u64,
    pub exponent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PdsLocation {
    pub url: String,
    pub language: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QcStatements {
    /// QcCompliance: issued as a qualified certificate (EU).
    pub compliance: bool,
    /// QcSSCD: the private key is in a qualified signature/seal creation device.
    pub sscd: bool,
    /// QcType: esign (natural person), eseal (legal person), web.
    pub types: Vec<QcType>,
    /// QcCClegislation: countries (ISO 3166) whose law the certificate is qualified under.
    pub legislation: Vec<String>,
    pub limit: Option<QcLimit>,
    pub retention_years: Option<u64>,
    pub pds: Vec<PdsLocation>,
    /// RFC 3739 semantics identifiers (id-qcs-pkixQCSyntax-v1/-v2).
    pub semantics: Vec<String>,
    /// Statement OIDs we do not interpret.
    pub other: Vec<String>,
}

/// Parses the extension value (the content of extnValue).
pub fn parse(data: &[u8]) -> Result<QcStatements> {
    let seq = der::parse_single(data, "QCStatements")?;
    if seq.ident != tag::SEQUENCE {
        return Err(seq.err("QCStatements must be a SEQUENCE"));
    }
    let mut out = QcStatements::default();
    for statement in seq.children()?.all()? {
        if statement.ident != tag::SEQUENCE {
            return Err(statement.err("QCStatement must be a SEQUENCE"));
        }
        let mut r = statement.children()?;
        let id = r.expect(tag::OID, "statementId")?.oid()?;
        let info = if r.is_empty() { None } else { Some(r.read()?) };
        r.finish("QCStatement")?;
        apply(&mut out, &id, info.as_ref(), &statement)?;
    }
    Ok(out)
}

fn apply(out: &mut QcStatements, id: &str, info: Option<&Tlv<'_>>, at: &Tlv<'_>) -> Result<()> {
    let need = |what: &str| at.err(format!("{what} without its statementInfo"));
    match id {
        oid::QC_COMPLIANCE => out.compliance = true,
        oid::QC_SSCD => out.sscd = true,
        oid::QC_TYPE => {
            let info = info.ok_or_else(|| need("QcType"))?;
            for t in sequence_of(info, "QcType")? {
                out.types.push(match t.oid()?.as_str() {
                    oid::QC_TYPE_ESIGN => QcType::Esign,
                    oid::QC_TYPE_ESEAL => QcType::Eseal,
                    oid::QC_TYPE_WEB => QcType::Web,
                    other => QcType::Other(other.to_string()),
                });
            }
        }
        oid::QC_CC_LEGISLATION => {
            let info = info.ok_or_else(|| need("QcCClegislation"))?;
            for c in sequence_of(info, "QcCClegislation")? {
                let country = c.string()?;
                if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(c.err(format!("country code {country:?} is not two letters")));
                }
                out.legislation.push(country.to_ascii_uppercase());
            }
        }
        oid::QC_RETENTION_PERIOD => {
            let info = info.ok_or_else(|| need("QcRetentionPeriod"))?;
            out.retention_years = Some(info.small_uint()?);
        }
        oid::QC_LIMIT_VALUE => {
            let info = info.ok_or_else(|| need("QcLimitValue"))?;
            let items = sequence_of(info, "QcLimitValue")?;
            let [currency, amount, exponent] = items.as_slice() else {
                return Err(info.err("QcLimitValue must have currency, amount and exponent"));
            };
            let currency = match currency.ident {
                tag::INTEGER => currency.small_uint()?.to_string(),
                _ => currency.string()?,
            };
            out.limit = Some(QcLimit {
                currency,
                amount: amount.small_uint()?,
                exponent: exponent.small_uint()?,
            });
        }
        oid::QC_PDS => {
            let info = info.ok_or_else(|| need("QcPDS"))?;
            for loc in sequence_of(info, "QcPDS")? {
                let mut r = loc.children()?;
                let url = r.expect(tag::IA5_STRING, "PDS url")?.string()?;
                let language = r.expect(tag::PRINTABLE_STRING, "PDS language")?.string()?;
                r.finish("PdsLocation")?;
                out.pds.push(PdsLocation { url, language });
            }
        }
        oid::QCS_PKIX_SYNTAX_V1 | oid::QCS_PKIX_SYNTAX_V2 => out.semantics.push(id.to_string()),
        other => out.other.push(other.to_string()),
    }
    Ok(())
}

fn sequence_of<'a>(info: &Tlv<'a>, what: &str) -> Result<Vec<Tlv<'a>>> {
    if info.ident != tag::SEQUENCE {
        return Err(info.err(format!("{what} must be a SEQUENCE")));
    }
    info.children()?.all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QcCompliance + QcRetentionPeriod 30: the qcStatements of the D-TRUST QES leaf in
    /// `shared/vectors/dss/cades/Signature-C-DE_CRY-3.p7m` (DSS test data, LGPL-2.1).
    const DTRUST_LEAF: &[u8] = &[
        0x30, 0x17, 0x30, 0x08, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01, 0x30, 0x0b, 0x06,
        0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x03, 0x02, 0x01, 0x1e,
    ];

    /// Built by hand: QcCompliance, QcSSCD, QcType esign, QcCClegislation DE, QcPDS, an
    /// unknown statement with info, and the RFC 3739 v2 semantics id.
    fn full() -> Vec<u8> {
        let oid = |dotted: &[u8]| der::encode(tag::OID, dotted);
        let seq = |parts: &[Vec<u8>]| der::encode(tag::SEQUENCE, &parts.concat());
        let etsi = |last: &[u8]| {
            let mut v = vec![0x04, 0x00, 0x8e, 0x46, 0x01];
            v.extend_from_slice(last);
            v
        };
        seq(&[
            seq(&[oid(&etsi(&[1]))]),
            seq(&[oid(&etsi(&[4]))]),
            seq(&[oid(&etsi(&[6])), seq(&[oid(&etsi(&[6, 1]))])]),
            seq(&[
                oid(&etsi(&[7])),
                seq(&[der::encode(tag::PRINTABLE_STRING, b"DE")]),
            ]),
            seq(&[
                oid(&etsi(&[5])),
                seq(&[seq(&[
                    der::encode(tag::IA5_STRING, b"https://pds.example/en"),
                    der::encode(tag::PRINTABLE_STRING, b"en"),
                ])]),
            ]),
            seq(&[oid(&[0x2a, 0x03]), der::encode(tag::UTF8_STRING, b"x")]),
            seq(&[oid(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0b, 0x02])]),
        ])
    }

    #[test]
    fn dtrust_leaf() {
        let qc = parse(DTRUST_LEAF).unwrap();
        assert!(qc.compliance);
        assert!(!qc.sscd);
        assert!(qc.types.is_empty());
        assert_eq!(qc.retention_years, Some(30));
    }

    #[test]
    fn every_statement_we_know() {
        let qc = parse(&full()).unwrap();
        assert!(qc.compliance && qc.sscd);
        assert_eq!(qc.types, vec![QcType::Esign]);
        assert_eq!(qc.legislation, vec!["DE".to_string()]);
        assert_eq!(qc.pds[0].language, "en");
        assert_eq!(qc.other, vec!["1.2.3".to_string()]);
        assert_eq!(qc.semantics, vec![oid::QCS_PKIX_SYNTAX_V2.to_string()]);
    }

    #[test]
    fn malformed_known_statements_are_errors() {
        // QcType whose info is an INTEGER, not a SEQUENCE OF OID.
        let bad = der::encode(
            tag::SEQUENCE,
            &der::encode(
                tag::SEQUENCE,
                &[
                    der::encode(tag::OID, &[0x04, 0x00, 0x8e, 0x46, 0x01, 0x06]),
                    der::encode(tag::INTEGER, &[1]),
                ]
                .concat(),
            ),
        );
        let e = parse(&bad).unwrap_err();
        assert!(e.what.contains("QcType"), "{e}");
        // Trailing garbage after the SEQUENCE.
        let mut trailing = DTRUST_LEAF.to_vec();
        trailing.push(0);
        assert!(parse(&trailing).is_err());
    }

    /// Fuzz-ish: random bytes, every truncation and every single-byte corruption of valid
    /// input must give Ok or Err, never a panic or a hang.
    #[test]
    fn hostile_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse(&data);
        }
        let valid = full();
        for cut in 0..valid.len() {
            assert!(parse(&valid[..cut]).is_err(), "truncated at {cut} accepted");
        }
        for i in 0..valid.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut v = valid.clone();
                v[i] ^= flip;
                let _ = parse(&v);
            }
        }
    }
}
