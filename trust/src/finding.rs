//! One failed check, and how a list of them becomes the indication.

use crate::report::{Indication, SubIndication};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub indication: Indication,
    pub sub: SubIndication,
    pub message: String,
}

impl Finding {
    /// A finding with the indication EN 319 102-1 gives `sub` by default.
    pub fn new(sub: SubIndication, message: impl Into<String>) -> Finding {
        Finding {
            indication: sub.indication(),
            sub,
            message: message.into(),
        }
    }

    pub fn with(indication: Indication, sub: SubIndication, message: impl Into<String>) -> Finding {
        Finding {
            indication,
            sub,
            message: message.into(),
        }
    }
}

/// EN 319 102-1 §5.3: a TOTAL_FAILED outcome (the signature is proven bad) beats any
/// INDETERMINATE one; otherwise the first failed check in validation order decides.
/// Findings are pushed in validation order.
pub fn decide(findings: &[Finding]) -> (Indication, Option<SubIndication>) {
    findings
        .iter()
        .find(|f| f.indication == Indication::TotalFailed)
        .or_else(|| findings.first())
        .map_or((Indication::TotalPassed, None), |f| {
            (f.indication, Some(f.sub))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_beats_indeterminate_and_order_decides_otherwise() {
        assert_eq!(decide(&[]), (Indication::TotalPassed, None));
        let chain = Finding::new(SubIndication::OutOfBoundsNoPoe, "expired");
        let weak = Finding::new(SubIndication::CryptoConstraintsFailure, "sha1");
        let hash = Finding::new(SubIndication::HashFailure, "changed");
        assert_eq!(
            decide(&[chain.clone(), weak.clone()]),
            (
                Indication::Indeterminate,
                Some(SubIndication::OutOfBoundsNoPoe)
            )
        );
        assert_eq!(
            decide(&[chain, weak, hash]),
            (Indication::TotalFailed, Some(SubIndication::HashFailure))
        );
    }
}
