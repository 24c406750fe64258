//! Which subject tag a clerk sees on inbound mail, and that nobody else can show one: the
//! rules behind `[tags]`.
//!
//! A subject is compared with the tags the way a clerk reads it (see `fold`): RFC 2047 words
//! decoded, NFKC, case folded, invisible and bidi control characters dropped, white space and
//! punctuation ignored, look-alike letters merged. Every look-alike of a configured tag is
//! then *removed* (not marked): the clerk never sees tag-like text we did not set, and a
//! cleaned subject cleans to itself. A bracketed group holding a look-alike goes as a whole
//! (`[QES gültig: Max]`, `【Signatur ungültig】`), else the words alone. A tag the mail earned
//! is put in front of the cleaned subject.

mod fold;
pub use fold::decode_encoded_words;

use crate::config::Tags;

/// Marks where the signer's name goes in `qes_valid_attachment`.
pub const SIGNER_PLACEHOLDER: &str = "{signer}";

/// Cleaning that still finds a look-alike after this many rounds (nested forgeries like
/// `[QES [QES gültig] gültig]`) gives up and drops the subject text.
const MAX_ROUNDS: usize = 8;

/// Longest signer name put into a tag (names come from certificates).
const MAX_SIGNER: usize = 64;
/// One signature's result, as far as the clerk-facing tag is concerned. Declared in the order
/// in which a signature decides (the derived `Ord`, see `decisive_signature`): a failed one
/// before an indeterminate one, before a QES (when all passed, the QES is what the mail
/// earns), before any other pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// What a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// The message itself: its body is the signed content.
    Message,
    /// An attachment or an enclosed message, signed by `signer` (the certificate's common
    /// name, else what names the holder): a lifted document, not necessarily the sender's.
    Attachment { signer: String },
}

/// One signature as the tag rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub outcome: SignatureOutcome,
    pub signed: Signed,
}

/// Which signature decides for the mail (its tag and its recorded result): the first of those
/// that rank first in `SignatureOutcome`'s order. None without signatures.
pub fn decisive_signature(signatures: &[Signature]) -> Option<usize> {
    signatures
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.outcome)
        .map(|(i, _)| i)
}

/// The default `qes_valid_attachment`: `qes_valid` with `: {signer}` before its closing
/// bracket (`[QES gültig]` -> `[QES gültig: {signer}]`), or after it if it has none.
pub fn attachment_template(qes_valid: &str) -> String {
    if qes_valid.is_empty() {
        return String::new();
    }
    match qes_valid.strip_suffix(']') {
        Some(inner) => format!("{inner}: {SIGNER_PLACEHOLDER}]"),
        None => format!("{qes_valid}: {SIGNER_PLACEHOLDER}"),
    }
}

impl Tags {
    /// Exactly one tag for a signed mail (None when it has no signature): the decisive
    /// outcome's, so a QES tag only when every signature passed (that document meets the
    /// written form). A QES on the message itself gives `qes_valid`; one only on attachments
    /// gives `qes_valid_attachment` naming its signers, so a lifted signed document is not
    /// taken for a signed request. An empty configured tag means no tag.
    pub fn for_signatures(&self, signatures: &[Signature]) -> Option<String> {
        use SignatureOutcome::*;
        let qes = || signatures.iter().filter(|s| s.outcome == PassedQes);
        let tag = match signatures[decisive_signature(signatures)?].outcome {
            Failed => self.signature_invalid.clone(),
            Indeterminate => self.signature_indeterminate.clone(),
            Passed => self.signed_not_qualified.clone(),
            PassedQes if qes().any(|s| s.signed == Signed::Message) => self.qes_valid.clone(),
            PassedQes => {
                let mut names: Vec<String> = Vec::new();
                for s in qes() {
                    if let Signed::Attachment { signer } = &s.signed {
                        let name = self.signer_name(signer);
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                self.qes_valid_attachment
                    .replace(SIGNER_PLACEHOLDER, &names.join(", "))
            }
        };
        (!tag.is_empty()).then_some(tag)
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

    /// The subject a clerk is shown for the decoded `subject`: every look-alike of our tags
    /// removed, then `earned` (the tag this mail earned, if any) in front. None when the
    /// subject stays exactly as it is.
    pub fn subject(&self, subject: &str, earned: Option<&str>) -> Option<String> {
        let cleaned = self.defuse(subject);
        let out = match earned.filter(|t| !t.is_empty()) {
            // Trimmed as cleaning trims the text beside a removed tag, so that the result
            // cleans to itself.
            Some(t) => match cleaned.trim_matches(fold::is_space) {
                "" => t.to_string(),
                rest => format!("{t} {rest}"),
            },
            None => cleaned,
        };
        (out != subject).then_some(out)
    }

    /// What is compared: the folded text of every configured tag, and of the fixed parts of
    /// the attachment tag.
    fn patterns(&self) -> Vec<Vec<char>> {
        let mut texts: Vec<&str> = vec![
            &self.authoritative,
            &self.qes_valid,
            &self.signed_not_qualified,
            &self.signature_invalid,
            &self.signature_indeterminate,
        ];
        texts.extend(self.qes_valid_attachment.split(SIGNER_PLACEHOLDER));
        let mut patterns: Vec<Vec<char>> = Vec::new();
        for core in texts.into_iter().map(fold::core) {
            if !core.is_empty() && !patterns.contains(&core) {
                patterns.push(core);
            }
        }
        patterns
    }

    /// `text` without encoded-words left over, invisible characters and look-alikes.
    fn defuse(&self, text: &str) -> String {
        let patterns = self.patterns();
        // Invisible characters go before each decoding too: one inside `=?utf-8?q?...?=`
        // would otherwise hide an encoded-word that appears once it is dropped. Each decoding
        // shrinks the text, so this ends; a subject still encoded after many rounds is dropped.
        let visible =
            |s: &str| -> String { s.chars().filter(|c| !fold::is_invisible(*c)).collect() };
        let mut text = visible(text);
        let mut rounds = 0;
        loop {
            let decoded = visible(&fold::decode_encoded_words(&text));
            if decoded == text {
                break;
            }
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return String::new();
            }
            text = decoded;
        }
        for _ in 0..MAX_ROUNDS {
            let found = find(&text, &patterns);
            if found.is_empty() {
                return text;
            }
            text = cut(&text, &found);
        }
        if find(&text, &patterns).is_empty() {
            text
        } else {
            String::new()
        }
    }

    /// A certificate's name as it may stand inside our tag: visible characters only, no
    /// brackets (it must not close our tag and open a forged one), no look-alike of a tag,
    /// one line, bounded.
    fn signer_name(&self, raw: &str) -> String {
        let mut name = self.plain_name(raw);
        if name.chars().count() > MAX_SIGNER {
            let cut: String = name.chars().take(MAX_SIGNER).collect();
            name = self.plain_name(&format!("{cut}…"));
        }
        if name.is_empty() {
            "?".to_string()
        } else {
            name
        }
    }

    /// `raw` without look-alikes and brackets, on one line, single-spaced: cleaned and
    /// stripped until neither changes it, since each can undo the other (cleaning decodes
    /// encoded-words, which may hold brackets; dropping a bracket or cutting the name short
    /// may complete an encoded-word or a look-alike). A name that does not settle is dropped.
    fn plain_name(&self, raw: &str) -> String {
        let strip = |text: String| -> String {
            let plain: String = text
                .chars()
                .filter(|c| !fold::is_opener(*c) && !fold::is_closer(*c))
                .map(|c| if fold::is_space(c) { ' ' } else { c })
                .collect();
            plain
                .split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut name = raw.to_string();
        for _ in 0..MAX_ROUNDS {
            let next = strip(self.defuse(&name));
            if next == name {
                return name;
            }
            name = next;
        }
        String::new()
    }
}

/// Byte ranges of `text` holding a look-alike of one of `patterns`, each widened to its
/// bracketed group, merged, in order. A look-alike starts and ends at a word boundary (a short
/// tag like `[OK]` must not eat `Bookings`).
fn find(text: &str, patterns: &[Vec<char>]) -> Vec<(usize, usize)> {
    let units = fold::units(text);
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let hit = patterns.iter().find(|p| {
            let end = i + p.len();
            end <= units.len()
                && (i == 0 || units[i].gap_before)
                && (end == units.len() || units[end].gap_before)
                && units[i..end].iter().zip(p.iter()).all(|(u, c)| u.c == *c)
        });
        match hit {
            Some(p) => {
                let (start, end) = (units[i].start, units[i + p.len() - 1].end);
                found.push(group(text, start, end));
                i += p.len();
            }
            None => i += 1,
        }
    }
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in found {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// `start..end` widened to the innermost brackets around it, if it has both.
fn group(text: &str, start: usize, end: usize) -> (usize, usize) {
    let open = text[..start]
        .char_indices()
        .rev()
        .find(|(_, c)| fold::is_opener(*c) || fold::is_closer(*c))
        .filter(|(_, c)| fold::is_opener(*c))
        .map(|(i, _)| i);
    let close = text[end..]
        .char_indices()
        .find(|(_, c)| fold::is_opener(*c) || fold::is_closer(*c))
        .filter(|(_, c)| fold::is_closer(*c))
        .map(|(i, c)| end + i + c.len_utf8());
    match (open, close) {
        (Some(o), Some(c)) => (o, c),
        _ => (start, end),
    }
}

/// `text` without `ranges`; the pieces left are joined by one space.
fn cut(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut pieces = Vec::with_capacity(ranges.len() + 1);
    let mut pos = 0;
    for &(s, e) in ranges {
        pieces.push(&text[pos..s]);
        pos = e;
    }
    pieces.push(&text[pos..]);
    pieces
        .iter()
        .map(|p| p.trim_matches(fold::is_space))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::SignatureOutcome::*;
    use super::{Signature, Signed, attachment_template, decisive_signature};
    use crate::config::Tags;

    fn tags() -> Tags {
        Tags::default()
    }

    fn on_message(outcomes: &[super::SignatureOutcome]) -> Vec<Signature> {
        outcomes
            .iter()
            .map(|&outcome| Signature {
                outcome,
                signed: Signed::Message,
            })
            .collect()
    }

    fn attached(outcome: super::SignatureOutcome, signer: &str) -> Signature {
        Signature {
            outcome,
            signed: Signed::Attachment {
                signer: signer.into(),
            },
        }
    }

    #[test]
    fn the_worst_signature_decides_and_a_qes_needs_all_others_passed() {
        let t = tags();
        let tag = |o: &[super::SignatureOutcome]| t.for_signatures(&on_message(o));
        assert_eq!(tag(&[]), None);
        assert_eq!(tag(&[PassedQes]).as_deref(), Some("[QES gültig]"));
        assert_eq!(tag(&[Passed]).as_deref(), Some("[signiert, keine QES]"));
        assert_eq!(tag(&[Passed, PassedQes]).as_deref(), Some("[QES gültig]"));
        assert_eq!(
            tag(&[PassedQes, Indeterminate]).as_deref(),
            Some("[Signatur unbestimmt]")
        );
        assert_eq!(
            tag(&[Indeterminate, Failed, PassedQes]).as_deref(),
            Some("[Signatur ungültig]")
        );
    }

    /// The one ranking behind the tag and the recorded result, pinned for every pair.
    #[test]
    fn the_ranking_of_outcomes_is_failed_indeterminate_qes_passed() {
        let order = [Failed, Indeterminate, PassedQes, Passed];
        for (i, &a) in order.iter().enumerate() {
            for (j, &b) in order.iter().enumerate() {
                assert_eq!(a.cmp(&b), i.cmp(&j), "{a:?} vs {b:?}");
                let want = if j < i { 1 } else { 0 };
                assert_eq!(
                    decisive_signature(&on_message(&[a, b])),
                    Some(want),
                    "{a:?}, {b:?}"
                );
            }
        }
        assert_eq!(decisive_signature(&[]), None);
        // Among equals the first decides (its qualification is the one recorded).
        let two = [attached(PassedQes, "A"), attached(PassedQes, "B")];
        assert_eq!(decisive_signature(&two), Some(0));
        assert_eq!(
            decisive_signature(&on_message(&[Passed, Indeterminate, Failed, Failed])),
            Some(2)
        );
    }

    #[test]
    fn a_qes_on_an_attachment_names_its_signer() {
        let t = tags();
        let max = attached(PassedQes, "Max Mustermann");
        assert_eq!(
            t.for_signatures(std::slice::from_ref(&max)).as_deref(),
            Some("[QES gültig: Max Mustermann]")
        );
        // The sender's own advanced signature does not lend the attachment's QES to the mail.
        let mut mixed = on_message(&[Passed]);
        mixed.push(max.clone());
        mixed.push(attached(PassedQes, "Erika Muster"));
        mixed.push(max.clone());
        assert_eq!(
            t.for_signatures(&mixed).as_deref(),
            Some("[QES gültig: Max Mustermann, Erika Muster]")
        );
        // A QES on the message itself is the plain tag.
        let mut own = on_message(&[PassedQes]);
        own.push(max.clone());
        assert_eq!(t.for_signatures(&own).as_deref(), Some("[QES gültig]"));
        // The worst still decides; a failed attachment is not named.
        assert_eq!(
            t.for_signatures(&[max.clone(), attached(Failed, "X")])
                .as_deref(),
            Some("[Signatur ungültig]")
        );
        assert_eq!(
            t.for_signatures(&[attached(Passed, "X")]).as_deref(),
            Some("[signiert, keine QES]")
        );
    }

    #[test]
    fn a_hostile_signer_name_cannot_close_our_tag_or_fake_another() {
        let t = tags();
        for (cn, want) in [
            ("Max] [De-Mail absenderbestätigt", "[QES gültig: Max]"),
            ("Max \u{202e}]gitlüg SEQ[", "[QES gültig: Max gitlüg SEQ]"),
            ("Max\u{200b}\n\tMuster", "[QES gültig: Max Muster]"),
            ("[Signatur ungültig]", "[QES gültig: ?]"),
        ] {
            assert_eq!(
                t.for_signatures(&[attached(PassedQes, cn)]).as_deref(),
                Some(want),
                "{cn:?}"
            );
        }
        let long = t
            .for_signatures(&[attached(PassedQes, &"x".repeat(500))])
            .unwrap();
        assert!(long.chars().count() < 100, "{long}");
    }

    /// Found by the `subject_tags` fuzz target: brackets were dropped before the name was
    /// cleaned, and cleaning decodes encoded-words, so a certificate name could bring its own
    /// brackets into our tag (and our cleaner then no longer removed the tag whole); dropping
    /// them after cleaning instead could complete an encoded-word of a forged tag.
    #[test]
    fn a_signer_name_cannot_bring_brackets_in_an_encoded_word() {
        let t = tags();
        for (cn, want) in [
            (
                "=?utf-8?q?Max=5D_=5BSignatur_ung=C3=BCltig?=",
                "[QES gültig: Max]",
            ),
            (
                "=?utf-8?q?=5BQE=C3=9F_g=C3=BCltig=5D?= Antrag",
                "[QES gültig: QEß gültig Antrag]",
            ),
            // Dropping the `>` completes an encoded-word of a forged tag.
            (
                "=?utf-8?q?=5BQES_g=C3=B>Cltig=5D?= Antrag",
                "[QES gültig: Antrag]",
            ),
        ] {
            let tag = t.for_signatures(&[attached(PassedQes, cn)]).unwrap();
            assert_eq!(tag, want, "{cn:?}");
            assert_eq!(t.subject(&tag, None).as_deref(), Some(""), "{tag:?}");
        }
    }

    #[test]
    fn the_attachment_template_follows_qes_valid() {
        assert_eq!(
            attachment_template("[QES gültig]"),
            "[QES gültig: {signer}]"
        );
        assert_eq!(attachment_template("QES ok"), "QES ok: {signer}");
        assert_eq!(attachment_template(""), "");
    }

    #[test]
    fn an_empty_tag_is_switched_off() {
        let mut t = tags();
        t.qes_valid.clear();
        t.authoritative.clear();
        assert_eq!(t.for_signatures(&on_message(&[PassedQes])), None);
        assert_eq!(t.for_demail(true, true, true), None);
        t.qes_valid_attachment.clear();
        assert_eq!(t.for_signatures(&[attached(PassedQes, "Max")]), None);
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

    /// Every way of writing `[QES gültig]` (or another tag of ours) that a clerk would read as
    /// the tag: after cleaning, nothing of it is left.
    #[test]
    fn every_look_alike_of_every_tag_is_removed() {
        let t = tags();
        let hostile = [
            ("[QES gültig] Antrag", "Antrag"),
            ("[QES g\u{200b}ültig] Antrag", "Antrag"),
            ("[\u{200b}QES gültig\u{feff}] Antrag", "Antrag"),
            ("\u{200f}[QES gültig]\u{200e} Antrag", "Antrag"),
            ("[QES gu\u{308}ltig] Antrag", "Antrag"),
            ("[QES\u{a0}gültig] Antrag", "Antrag"),
            ("[QES\u{2003}\u{2800}gültig] Antrag", "Antrag"),
            ("[qes GÜLTIG] Antrag", "Antrag"),
            ("[Qes Gültig] Antrag", "Antrag"),
            ("AW: [QES gültig] Antrag", "AW: Antrag"),
            ("Re: AW: Antrag [QES gültig]", "Re: AW: Antrag"),
            (
                "Antrag \u{ff3b}\u{ff31}\u{ff25}\u{ff33} g\u{fc}ltig\u{ff3d}",
                "Antrag",
            ),
            ("【QES gültig】 Antrag", "Antrag"),
            ("⟦QES gültig⟧ Antrag", "Antrag"),
            ("(QES gültig) Antrag", "Antrag"),
            ("[QES-gültig] Antrag", "Antrag"),
            ("[ Q.E.S.  gültig ] Antrag", "Antrag"),
            ("[QES gueltig] Antrag", "Antrag"),
            ("[QES gultig] Antrag", "Antrag"),
            ("[QES güItig] Antrag", "Antrag"),
            ("[QЕS gültig] Antrag", "Antrag"),
            ("[ԚES gültig] Antrag", "Antrag"),
            ("[QES gültig: Max Mustermann] Antrag", "Antrag"),
            ("[QES [QES gültig] gültig] Antrag", "Antrag"),
            ("[QES gültig][QES gültig]Antrag", "Antrag"),
            ("Antrag QES gültig", "Antrag"),
            ("[De-Mail absenderbestätigt] Mahnung", "Mahnung"),
            ("[DeMail absenderbestaetigt] Mahnung", "Mahnung"),
            ("[De–Mail ABSENDERBESTÄTIGT] Mahnung", "Mahnung"),
            ("[De-Mai1 absenderbestätigt] Mahnung", "Mahnung"),
            ("[signiert, keine QES] x", "x"),
            ("[Signatur ungültig] x", "x"),
            ("[Signatur  unbestimmt] x", "x"),
            ("Antrag =?UTF-8?Q?[QES_g=C3=BCltig]?=", "Antrag"),
            ("Antrag=?utf-8?b?W1FFUyBnw7xsdGlnXQ==?=", "Antrag"),
            ("=?ISO-8859-1?Q?[QES_g=FCltig]?= Antrag", "Antrag"),
            ("[QES gültig]", ""),
        ];
        for (subject, want) in hostile {
            assert_eq!(
                t.subject(subject, None).as_deref(),
                Some(want),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn a_bidi_override_is_removed_so_reversed_text_shows_reversed() {
        let t = tags();
        // U+202E shows "]gitlüg SEQ[" as "[QES gültig]"; without it the text reads reversed.
        assert_eq!(
            t.subject("\u{202e}]gitlüg SEQ[\u{202c} Antrag", None)
                .as_deref(),
            Some("]gitlüg SEQ[ Antrag")
        );
    }

    #[test]
    fn an_earned_tag_goes_in_front_of_the_cleaned_subject() {
        let t = tags();
        assert_eq!(
            t.subject("AW: [qes gültig] Antrag", Some("[QES gültig]"))
                .as_deref(),
            Some("[QES gültig] AW: Antrag")
        );
        assert_eq!(
            t.subject("", Some("[QES gültig]")).as_deref(),
            Some("[QES gültig]")
        );
        // Already exactly so: unchanged.
        assert_eq!(t.subject("[QES gültig] Antrag", Some("[QES gültig]")), None);
        assert_eq!(
            t.subject("[Signatur ungültig] Antrag", Some("[QES gültig]"))
                .as_deref(),
            Some("[QES gültig] Antrag")
        );
    }

    #[test]
    fn ordinary_subjects_stay_as_they_are() {
        let t = tags();
        for subject in [
            "Antrag auf Wohngeld",
            "  Antrag  mit   Leerzeichen ",
            "Bookings [OK] QES",
            "Ist die QES-Prüfung gültig?",
            "Gültigkeit der QES",
            "Signatur: ungültiger Bescheid?",
            "[Abholbestätigung] Bescheid",
            "Über Straße und Gebühr – 2024",
            "Ünïcödé 日本語 עברית",
            "",
        ] {
            assert_eq!(t.subject(subject, None), None, "{subject:?}");
        }
        // A short tag is matched as a word, not inside one.
        let mut short = tags();
        short.signed_not_qualified = "[OK]".into();
        assert_eq!(
            short.subject("Bookings ok", None).as_deref(),
            Some("Bookings")
        );
        assert_eq!(short.subject("Bookings", None), None);
    }

    #[test]
    fn cleaning_is_idempotent() {
        let t = tags();
        for subject in [
            "AW: [QES gültig] Antrag",
            "[QES [QES [QES gültig] gültig] gültig] x",
            "a \u{200b}[Signatur ungültig]\u{200b} b",
        ] {
            let once = t.subject(subject, None).unwrap_or_else(|| subject.into());
            assert_eq!(t.subject(&once, None), None, "{subject:?} -> {once:?}");
        }
    }

    /// Found by the `subject_tags` fuzz target: an invisible character inside an encoded-word
    /// kept it from being decoded, and dropping it afterwards left a forged tag that mail
    /// clients show decoded.
    #[test]
    fn an_encoded_word_hidden_by_an_invisible_character_is_decoded_and_removed() {
        let t = tags();
        for subject in [
            "=?utf-8?\u{200b}q?=5BQES_g=C3=BCltig=5D?= Antrag",
            "=?utf-8?q?=5BQES_g=C3=BCltig=5D?\u{200b}= Antrag",
            "=\u{feff}?utf-8?b?W1FFUyBnw7xsdGlnXQ==?= Antrag",
        ] {
            assert_eq!(
                t.subject(subject, None).as_deref(),
                Some("Antrag"),
                "{subject:?}"
            );
        }
    }

    /// Found by the `subject_tags` fuzz target: white space at the end of a subject stayed
    /// behind the earned tag, and the next cleaning trimmed it, so the subject changed again.
    #[test]
    fn an_earned_tag_leaves_a_subject_that_cleans_to_itself() {
        let t = tags();
        for subject in ["\u{fffd}QES ", "Antrag\t", " Antrag \u{a0}", " "] {
            let once = t.subject(subject, Some("[QES gültig]")).unwrap();
            assert_eq!(
                t.subject(&once, Some("[QES gültig]")),
                None,
                "{subject:?} -> {once:?}"
            );
        }
        assert_eq!(
            t.subject("Antrag ", Some("[QES gültig]")).as_deref(),
            Some("[QES gültig] Antrag")
        );
    }

    #[test]
    fn deep_nesting_gives_up_on_the_text() {
        let t = tags();
        let mut s = "[QES gültig]".to_string();
        for _ in 0..20 {
            s = format!("[QES {s} gültig]");
        }
        // Eight rounds are not enough for 21 levels: the text goes, nothing tag-like is left.
        assert_eq!(t.subject(&format!("{s} Antrag"), None).as_deref(), Some(""));
        assert_eq!(
            t.subject("[QES [QES [QES gültig] gültig] gültig] Antrag", None)
                .as_deref(),
            Some("Antrag")
        );
        let deep = format!("{} x", "QES ".repeat(20) + &" gültig".repeat(20));
        let cleaned = t.subject(&deep, None).unwrap();
        assert_eq!(t.subject(&cleaned, None), None, "{cleaned}");
    }
}
