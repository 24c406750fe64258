//! Which subject tag a clerk sees on inbound mail: the rules behind `[tags]`.

use crate::config::Tags;

/// One signature's result, as far as the clerk-facing tag is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureOutcome {
    /// TOTAL_FAILED.
    Failed,
    /// INDETERMINATE (e.g. revocation unknown, no chain to a trust anchor).
    Indeterminate,
    /// TOTAL_PASSED and qualification QESig.
    PassedQes,
    /// TOTAL_PASSED, any other qualification.
    Passed,
}

impl Tags {
    /// Every tag of ours: nobody else may put one at the start of a subject.
    pub fn all(&self) -> [&str; 5] {
        [
            &self.authoritative,
            &self.qes_valid,
            &self.signed_not_qualified,
            &self.signature_invalid,
            &self.signature_indeterminate,
        ]
    }

    /// Exactly one tag for a signed mail (None when it has no signature): the worst outcome
    /// decides; when every signature passed, `qes_valid` if one of them is a QES (that
    /// document meets the written form). An empty configured tag means no tag.
    pub fn for_signatures(&self, outcomes: &[SignatureOutcome]) -> Option<&str> {
        use SignatureOutcome::*;
        let tag = if outcomes.is_empty() {
            return None;
        } else if outcomes.contains(&Failed) {
            &self.signature_invalid
        } else if outcomes.contains(&Indeterminate) {
            &self.signature_indeterminate
        } else if outcomes.contains(&PassedQes) {
            &self.qes_valid
        } else {
            &self.signed_not_qualified
        };
        (!tag.is_empty()).then_some(tag.as_str())
    }

    /// The absenderbestätigt tag replaces the written form, so only a De-Mail that claims it
    /// (`X-de-mail-authoritative: yes`), whose qualified provider signature verifies, and whose
    /// signature covers that claim earns it.
    pub fn for_demail(
        &self,
        claimed: bool,
        qualified_verified: bool,
        claim_signed: bool,
    ) -> Option<&str> {
        let earned = claimed && qualified_verified && claim_signed;
        (earned && !self.authoritative.is_empty()).then_some(self.authoritative.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::SignatureOutcome::*;
    use crate::config::Tags;

    fn tags() -> Tags {
        Tags {
            authoritative: "[De-Mail absenderbestätigt]".into(),
            qes_valid: "[QES gültig]".into(),
            signed_not_qualified: "[signiert, keine QES]".into(),
            signature_invalid: "[Signatur ungültig]".into(),
            signature_indeterminate: "[Signatur unbestimmt]".into(),
        }
    }

    #[test]
    fn the_worst_signature_decides_and_a_qes_needs_all_others_passed() {
        let t = tags();
        assert_eq!(t.for_signatures(&[]), None);
        assert_eq!(t.for_signatures(&[PassedQes]), Some("[QES gültig]"));
        assert_eq!(t.for_signatures(&[Passed]), Some("[signiert, keine QES]"));
        assert_eq!(t.for_signatures(&[Passed, PassedQes]), Some("[QES gültig]"));
        assert_eq!(
            t.for_signatures(&[PassedQes, Indeterminate]),
            Some("[Signatur unbestimmt]")
        );
        assert_eq!(
            t.for_signatures(&[Indeterminate, Failed, PassedQes]),
            Some("[Signatur ungültig]")
        );
    }

    #[test]
    fn an_empty_tag_is_switched_off() {
        let mut t = tags();
        t.qes_valid.clear();
        t.authoritative.clear();
        assert_eq!(t.for_signatures(&[PassedQes]), None);
        assert_eq!(t.for_demail(true, true, true), None);
    }

    #[test]
    fn absenderbestaetigt_only_when_claimed_qualified_and_signed() {
        let t = tags();
        assert_eq!(
            t.for_demail(true, true, true),
            Some("[De-Mail absenderbestätigt]")
        );
        assert_eq!(t.for_demail(false, true, true), None);
        assert_eq!(t.for_demail(true, false, true), None);
        assert_eq!(t.for_demail(true, true, false), None);
    }
}
