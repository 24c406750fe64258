//! Signature qualification (eIDAS Art. 32 as the EU DSS validator determines it).
//!
//! The qualification combines the EN 319 102-1 indication with what trusted lists say about the
//! signing certificate (qualified? on a QSCD? for signatures or seals?), at its issuance and at
//! the signing time. Without a trusted list covering the chain DSS answers `N/A` whatever the
//! certificate claims, and so do we: a certificate's own qcStatements are written by its issuer
//! and prove nothing until a supervised list confirms that issuer. What the qcStatements claim
//! is reported separately (`certificate_claim`).

use std::fmt;

use openssl::x509::X509;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::qc::{QcStatements, QcType};
use crate::report::Indication;

/// DSS's SignatureQualification values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualification {
    QeSig,
    QeSeal,
    QesUnknownType,
    AdesigQc,
    AdesealQc,
    AdesQcUnknownType,
    AdeSig,
    AdeSeal,
    AdesUnknownType,
    IndeterminateQeSig,
    IndeterminateQeSeal,
    IndeterminateQesUnknownType,
    IndeterminateAdesigQc,
    IndeterminateAdesealQc,
    IndeterminateAdesQcUnknownType,
    IndeterminateAdeSig,
    IndeterminateAdeSeal,
    IndeterminateAdesUnknownType,
    NotAdesQcQscd,
    NotAdesQc,
    NotAdes,
    NotApplicable,
}

impl Qualification {
    pub fn as_str(self) -> &'static str {
        use Qualification::*;
        match self {
            QeSig => "QESig",
            QeSeal => "QESeal",
            QesUnknownType => "QES?",
            AdesigQc => "AdESig-QC",
            AdesealQc => "AdESeal-QC",
            AdesQcUnknownType => "AdES?-QC",
            AdeSig => "AdESig",
            AdeSeal => "AdESeal",
            AdesUnknownType => "AdES?",
            IndeterminateQeSig => "Indeterminate QESig",
            IndeterminateQeSeal => "Indeterminate QESeal",
            IndeterminateQesUnknownType => "Indeterminate QES?",
            IndeterminateAdesigQc => "Indeterminate AdESig-QC",
            IndeterminateAdesealQc => "Indeterminate AdESeal-QC",
            IndeterminateAdesQcUnknownType => "Indeterminate AdES?-QC",
            IndeterminateAdeSig => "Indeterminate AdESig",
            IndeterminateAdeSeal => "Indeterminate AdESeal",
            IndeterminateAdesUnknownType => "Indeterminate AdES?",
            NotAdesQcQscd => "Not AdES but QC with QSCD",
            NotAdesQc => "Not AdES but QC",
            NotAdes => "Not AdES",
            NotApplicable => "N/A",
        }
    }
}

impl fmt::Display for Qualification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Qualification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// For what a certificate was issued (EN 319 412-5 QcType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertType {
    ESig,
    ESeal,
    Web,
    Unknown,
}

/// What is known about the signing certificate, from a trusted list (or, for
/// `certificate_claim`, from the certificate alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertQualification {
    pub qualified: bool,
    pub qscd: bool,
    pub cert_type: CertType,
}

impl CertQualification {
    /// What the qcStatements claim. Without QcType, a qualified certificate counts as one for
    /// electronic signatures: before eIDAS (Directive 1999/93/EC) qualified certificates were
    /// only issued to natural persons, and EN 319 412-5 made QcType mandatory only later.
    pub fn claimed_by(qc: &QcStatements) -> CertQualification {
        let cert_type = match qc.types.as_slice() {
            [] if qc.compliance => CertType::ESig,
            [QcType::Esign] => CertType::ESig,
            [QcType::Eseal] => CertType::ESeal,
            [QcType::Web] => CertType::Web,
            _ => CertType::Unknown,
        };
        CertQualification {
            qualified: qc.compliance,
            qscd: qc.compliance && qc.sscd,
            cert_type,
        }
    }
}

/// The DSS matrix: indication x certificate qualification -> signature qualification.
pub fn signature_qualification(
    indication: Indication,
    cert: Option<CertQualification>,
) -> Qualification {
    use CertType::*;
    use Qualification::*;
    let Some(c) = cert else {
        return NotApplicable;
    };
    match indication {
        Indication::TotalPassed => match (c.qualified, c.qscd, c.cert_type) {
            (_, _, Web) => NotAdes,
            (true, true, ESig) => QeSig,
            (true, true, ESeal) => QeSeal,
            (true, true, Unknown) => QesUnknownType,
            (true, false, ESig) => AdesigQc,
            (true, false, ESeal) => AdesealQc,
            (true, false, Unknown) => AdesQcUnknownType,
            (false, _, ESig) => AdeSig,
            (false, _, ESeal) => AdeSeal,
            (false, _, Unknown) => AdesUnknownType,
        },
        Indication::Indeterminate => match (c.qualified, c.qscd, c.cert_type) {
            (_, _, Web) => NotAdes,
            (true, true, ESig) => IndeterminateQeSig,
            (true, true, ESeal) => IndeterminateQeSeal,
            (true, true, Unknown) => IndeterminateQesUnknownType,
            (true, false, ESig) => IndeterminateAdesigQc,
            (true, false, ESeal) => IndeterminateAdesealQc,
            (true, false, Unknown) => IndeterminateAdesQcUnknownType,
            (false, _, ESig) => IndeterminateAdeSig,
            (false, _, ESeal) => IndeterminateAdeSeal,
            (false, _, Unknown) => IndeterminateAdesUnknownType,
        },
        Indication::TotalFailed | Indication::NoSignatureFound => {
            match (c.qualified, c.qscd, c.cert_type) {
                (_, _, Web) => NotAdes,
                (true, true, _) => NotAdesQcQscd,
                (true, false, _) => NotAdesQc,
                (false, _, _) => NotAdes,
            }
        }
    }
}

/// Trusted-list knowledge about a certificate chain (part 2: imported ETSI TS 119 612 lists).
pub trait QualificationSource: Send + Sync {
    /// The signing certificate's qualification, combining the list's service status at the
    /// certificate's issuance and at `signing_time` (DSS: QC only if qualified at both, type
    /// and QSCD as at the signing time). `None` when no list covers the chain: then the
    /// qualification is N/A.
    fn certificate_qualification(
        &self,
        chain: &[X509],
        signing_time: OffsetDateTime,
    ) -> Option<CertQualification>;
}

/// No trusted list: every qualification is N/A.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrustedList;

impl QualificationSource for NoTrustedList {
    fn certificate_qualification(
        &self,
        _: &[X509],
        _: OffsetDateTime,
    ) -> Option<CertQualification> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_follows_dss() {
        let qes = CertQualification {
            qualified: true,
            qscd: true,
            cert_type: CertType::ESig,
        };
        let qc_no_qscd = CertQualification { qscd: false, ..qes };
        assert_eq!(
            signature_qualification(Indication::TotalPassed, Some(qes)),
            Qualification::QeSig
        );
        assert_eq!(
            signature_qualification(Indication::Indeterminate, Some(qes)).as_str(),
            "Indeterminate QESig"
        );
        assert_eq!(
            signature_qualification(Indication::TotalFailed, Some(qes)).as_str(),
            "Not AdES but QC with QSCD"
        );
        assert_eq!(
            signature_qualification(Indication::TotalPassed, Some(qc_no_qscd)).as_str(),
            "AdESig-QC"
        );
        assert_eq!(
            signature_qualification(Indication::TotalPassed, None).as_str(),
            "N/A"
        );
        let web = CertQualification {
            cert_type: CertType::Web,
            ..qes
        };
        assert_eq!(
            signature_qualification(Indication::TotalPassed, Some(web)),
            Qualification::NotAdes
        );
    }

    #[test]
    fn claims_from_qc_statements() {
        let mut qc = QcStatements {
            compliance: true,
            ..QcStatements::default()
        };
        let c = CertQualification::claimed_by(&qc);
        assert_eq!(
            (c.qualified, c.qscd, c.cert_type),
            (true, false, CertType::ESig)
        );
        qc.sscd = true;
        qc.types = vec![QcType::Eseal];
        let c = CertQualification::claimed_by(&qc);
        assert_eq!((c.qscd, c.cert_type), (true, CertType::ESeal));
        let none = CertQualification::claimed_by(&QcStatements::default());
        assert_eq!((none.qualified, none.cert_type), (false, CertType::Unknown));
    }
}
