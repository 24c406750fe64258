//! The qualification decision (ETSI TS 119 615 as DSS applies it): the list's service status at
//! the certificate's issuance and at the signing time, and the qualifiers of the matching
//! `QualificationElement`s, which override what the certificate's qcStatements claim.

use openssl::x509::X509;
use time::OffsetDateTime;
use time::macros::datetime;

use super::model::{Assert, Criteria, QualificationRule};
use crate::cert::Cert;
use crate::der::{self, tag};
use crate::qc::{QcStatements, QcType};
use crate::qualify::{CertQualification, CertType};

/// eIDAS applies from this day; before it the Directive 1999/93/EC statuses count as granted.
pub const EIDAS: OffsetDateTime = datetime!(2016-07-01 00:00 UTC);
const STATUS_PREFIX: &str = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/";
const CERTIFICATE_POLICIES: &str = "2.5.29.32";

/// One status period of a service, with its start parsed.
#[derive(Debug, Clone)]
pub struct Period {
    pub start: OffsetDateTime,
    pub status: String,
    pub rules: Vec<QualificationRule>,
    pub additional: Vec<String>,
}

/// Status periods of one CA/QC service, newest first.
pub type History = [Period];

/// Granted at `at`: `granted`, or before eIDAS one of the supervision/accreditation statuses
/// (as DSS maps them).
pub fn is_granted(status: &str, at: OffsetDateTime) -> bool {
    match status.strip_prefix(STATUS_PREFIX).unwrap_or(status) {
        "granted" => true,
        "undersupervision" | "accredited" | "supervisionincessation" => at < EIDAS,
        _ => false,
    }
}

/// The period in force at `at` (the newest that started at or before it).
pub fn period_at(history: &History, at: OffsetDateTime) -> Option<&Period> {
    history.iter().find(|p| p.start <= at)
}

/// What the matching services say about `leaf` (issued by `ca`, the certificate the services
/// are identified by). `histories` holds one entry per matching service.
pub fn decide(
    histories: &[&History],
    leaf: &Cert,
    ca: &X509,
    signing_time: OffsetDateTime,
) -> CertQualification {
    let qc = leaf.qc_statements().ok().flatten().unwrap_or_default();
    let policies = policies(leaf);
    let at = |t: OffsetDateTime| at_time(histories, leaf, ca, &qc, &policies, t);
    let issued = at(leaf.not_before);
    let signed = at(signing_time);
    // DSS: qualified only if qualified both at issuance and at signing; QSCD and type as at
    // the signing time.
    let qualified = issued.qualified && signed.qualified;
    CertQualification {
        qualified,
        qscd: qualified && signed.qscd,
        cert_type: signed.cert_type,
    }
}

fn at_time(
    histories: &[&History],
    leaf: &Cert,
    ca: &X509,
    qc: &QcStatements,
    policies: &[String],
    t: OffsetDateTime,
) -> CertQualification {
    let mut qualifiers: Vec<&str> = Vec::new();
    let mut additional: Vec<&str> = Vec::new();
    let mut granted = false;
    for h in histories {
        let Some(p) = period_at(h, t) else { continue };
        if !is_granted(&p.status, t) {
            continue;
        }
        granted = true;
        additional.extend(p.additional.iter().map(String::as_str));
        for r in &p.rules {
            if matches(&r.criteria, leaf, ca, policies) {
                qualifiers.extend(r.qualifiers.iter().map(String::as_str));
            }
        }
    }
    let has = |q: &str| qualifiers.contains(&q);
    let qualified = granted && !has("NotQualified") && (qc.compliance || has("QCStatement"));
    let with = has("QCWithSSCD") || has("QCWithQSCD") || has("QCQSCDManagedOnBehalf");
    let without = has("QCNoSSCD") || has("QCNoQSCD");
    let qscd = match (with, without) {
        (true, false) => true,
        (false, true) | (true, true) => false,
        (false, false) => qc.sscd,
    };
    CertQualification {
        qualified,
        qscd: qualified && qscd,
        cert_type: cert_type(qc, &qualifiers, &additional, t),
    }
}

/// Qualifiers first, then the certificate's QcType, then the service's
/// AdditionalServiceInformation; before eIDAS a qualified certificate without QcType was one
/// for a natural person's signature (the Directive knew no seals), and `QCForLegalPerson`
/// means a seal.
fn cert_type(
    qc: &QcStatements,
    qualifiers: &[&str],
    additional: &[&str],
    t: OffsetDateTime,
) -> CertType {
    let from_qualifiers: Vec<CertType> = qualifiers
        .iter()
        .filter_map(|q| match *q {
            "QCForESig" => Some(CertType::ESig),
            "QCForESeal" | "QCForLegalPerson" => Some(CertType::ESeal),
            "QCForWSA" => Some(CertType::Web),
            _ => None,
        })
        .collect();
    match from_qualifiers.as_slice() {
        [one, rest @ ..] if rest.iter().all(|r| r == one) => return *one,
        [_, ..] => return CertType::Unknown,
        [] => {}
    }
    match qc.types.as_slice() {
        [QcType::Esign] => return CertType::ESig,
        [QcType::Eseal] => return CertType::ESeal,
        [QcType::Web] => return CertType::Web,
        [_, ..] => return CertType::Unknown,
        [] => {}
    }
    if t < EIDAS {
        return CertType::ESig;
    }
    let uses: Vec<&str> = additional
        .iter()
        .filter_map(|u| u.rsplit('/').next())
        .filter(|u| {
            matches!(
                *u,
                "ForeSignatures" | "ForeSeals" | "ForWebSiteAuthentication"
            )
        })
        .collect();
    match uses.as_slice() {
        ["ForeSignatures"] => CertType::ESig,
        ["ForeSeals"] => CertType::ESeal,
        ["ForWebSiteAuthentication"] => CertType::Web,
        _ => CertType::Unknown,
    }
}

/// TS 119 612 5.5.9.2: criteria apply to the certificate being assessed. One exception, for
/// the German lists of the SigG era: their `KeyUsage` criteria demand `keyCertSign` = true,
/// which no signing certificate can have; the Bundesnetzagentur used them to point at the
/// listed CA certificate itself, so such a criterion is checked against `ca`.
fn matches(c: &Criteria, leaf: &Cert, ca: &X509, policies: &[String]) -> bool {
    let ca_cert = || Cert::from_x509(ca).ok();
    let key_usage = c.key_usage.iter().map(|bits| {
        let for_ca = bits.iter().any(|(b, v)| b == "keyCertSign" && *v);
        let usage = if for_ca {
            ca_cert().and_then(|c| c.key_usage().ok().flatten())
        } else {
            leaf.key_usage().ok().flatten()
        };
        bits.iter().all(|(bit, want)| match bit_index(bit) {
            Some(i) => (usage.unwrap_or(0) >> i & 1 == 1) == *want,
            None => false,
        })
    });
    let policy = c
        .policy_sets
        .iter()
        .map(|set| set.iter().all(|oid| policies.contains(oid)));
    let nested = c.nested.iter().map(|n| matches(n, leaf, ca, policies));
    let unsupported = c.unsupported.iter().map(|_| false);
    let mut results = key_usage.chain(policy).chain(nested).chain(unsupported);
    match c.assert {
        Assert::All => results.all(|r| r),
        Assert::AtLeastOne => results.any(|r| r),
        Assert::None => !results.any(|r| r),
    }
}

fn bit_index(name: &str) -> Option<u16> {
    const BITS: [&str; 9] = [
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "crlSign",
        "encipherOnly",
        "decipherOnly",
    ];
    BITS.iter().position(|b| *b == name).map(|i| i as u16)
}

/// The certificate's policy OIDs (an unreadable extension counts as none).
fn policies(cert: &Cert) -> Vec<String> {
    let Some(ext) = cert.extension(CERTIFICATE_POLICIES) else {
        return Vec::new();
    };
    let read = || -> der::Result<Vec<String>> {
        let seq = der::parse_single(&ext.value, "certificatePolicies")?;
        let mut out = Vec::new();
        for info in seq.children()?.all()? {
            out.push(
                info.children()?
                    .expect(tag::OID, "policyIdentifier")?
                    .oid()?,
            );
        }
        Ok(out)
    };
    read().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn pre_eidas_statuses_count_until_july_2016() {
        let s = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/undersupervision";
        assert!(is_granted(s, t("2016-06-30T23:59:59Z")));
        assert!(!is_granted(s, t("2016-07-01T00:00:00Z")));
        assert!(is_granted(
            "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted",
            t("2020-01-01T00:00:00Z")
        ));
        assert!(!is_granted(
            "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn",
            t("2020-01-01T00:00:00Z")
        ));
        assert!(!is_granted(
            "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/supervisionceased",
            t("2010-01-01T00:00:00Z")
        ));
    }

    #[test]
    fn period_is_the_newest_started() {
        let p = |start: &str, status: &str| Period {
            start: t(start),
            status: status.to_string(),
            rules: Vec::new(),
            additional: Vec::new(),
        };
        let h = vec![
            p("2017-01-01T00:00:00Z", "withdrawn"),
            p("2016-07-01T00:00:00Z", "granted"),
            p("2001-01-01T00:00:00Z", "accredited"),
        ];
        assert_eq!(
            period_at(&h, t("2000-01-01T00:00:00Z")).map(|p| p.status.as_str()),
            None
        );
        assert_eq!(
            period_at(&h, t("2010-01-01T00:00:00Z")).unwrap().status,
            "accredited"
        );
        assert_eq!(
            period_at(&h, t("2016-07-01T00:00:00Z")).unwrap().status,
            "granted"
        );
        assert_eq!(
            period_at(&h, t("2030-01-01T00:00:00Z")).unwrap().status,
            "withdrawn"
        );
    }

    #[test]
    fn qualifiers_decide_the_type() {
        let qc = QcStatements {
            compliance: true,
            ..QcStatements::default()
        };
        let late = t("2020-01-01T00:00:00Z");
        assert_eq!(cert_type(&qc, &["QCForESeal"], &[], late), CertType::ESeal);
        assert_eq!(
            cert_type(&qc, &["QCForESeal", "QCForESig"], &[], late),
            CertType::Unknown
        );
        assert_eq!(
            cert_type(&qc, &[], &[], t("2014-01-01T00:00:00Z")),
            CertType::ESig
        );
        assert_eq!(cert_type(&qc, &[], &[], late), CertType::Unknown);
        assert_eq!(
            cert_type(
                &qc,
                &[],
                &["http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures"],
                late
            ),
            CertType::ESig
        );
    }
}
