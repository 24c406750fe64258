//! Clerk-facing option tags in the subject (`[Abholbestätigung]`, ...).
//!
//! Expects the decoded subject (RFC 2047 already undone by the caller).

use crate::options::DeMailOption;

/// Tag spellings after folding (lower case, umlauts as ae/oe/ue).
const TAGS: &[(&str, DeMailOption)] = &[
    ("versandbestaetigung", DeMailOption::Dispatch),
    ("eingangsbestaetigung", DeMailOption::Receipt),
    ("abholbestaetigung", DeMailOption::Retrieve),
    ("persoenlich", DeMailOption::Private),
    ("absenderbestaetigt", DeMailOption::Authoritative),
];

/// Lower-cases and spells umlauts as ae/oe/ue (precomposed or with a combining diaeresis), so
/// `[Abholbestätigung]` and `[ABHOLBESTAETIGUNG]` compare equal.
fn fold(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len() + 4);
    for c in tag.trim().chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            '\u{308}' if out.ends_with(['a', 'o', 'u']) => out.push('e'),
            _ => out.push(c),
        }
    }
    out
}

/// Recognised options and the subject without their tags (unchanged when none were found).
/// Taking a tag out can join the text around it into another (`[Abhol[persönlich]bestätigung]`),
/// so this repeats until none is left; each round shortens the subject.
pub(super) fn extract(subject: &str) -> (Vec<DeMailOption>, Option<String>) {
    let mut found = Vec::new();
    let mut stripped: Option<String> = None;
    loop {
        let (more, rest) = extract_once(stripped.as_deref().unwrap_or(subject));
        match rest {
            Some(rest) => {
                found.extend(more);
                stripped = Some(rest);
            }
            None => return (found, stripped),
        }
    }
}

fn extract_once(subject: &str) -> (Vec<DeMailOption>, Option<String>) {
    let mut found = Vec::new();
    let mut kept = String::with_capacity(subject.len());
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        // An inner `[` means this `[` was stray text; resume at the inner one.
        if let Some(nested) = inner.rfind('[') {
            kept.push_str(&rest[..open + 1 + nested]);
            rest = &rest[open + 1 + nested..];
            continue;
        }
        let folded = fold(inner);
        match TAGS.iter().find(|(t, _)| *t == folded) {
            Some((_, option)) => {
                found.push(*option);
                kept.push_str(&rest[..open]);
            }
            None => kept.push_str(&rest[..=close]),
        }
        rest = &rest[close + 1..];
    }
    if found.is_empty() {
        return (found, None);
    }
    kept.push_str(rest);
    (found, Some(tidy(&kept)))
}

/// Collapses the runs of blanks left where tags were, and trims the ends.
fn tidy(s: &str) -> String {
    s.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeMailOption::*;

    fn run(s: &str) -> (Vec<DeMailOption>, Option<String>) {
        extract(s)
    }

    /// Found by the `demail_options` fuzz target: a tag taken out of the middle of another
    /// bracket joined the text around it into a tag that stayed in the subject sent.
    #[test]
    fn a_tag_formed_by_taking_one_out_is_taken_too() {
        assert_eq!(
            run("x [ABHOLBESTÄTIGUN[persönlich]G] y"),
            (vec![Private, Retrieve], Some("x y".to_string()))
        );
        assert_eq!(
            run("[[Abhol[Versandbestätigung]bestätigung]]"),
            (vec![Dispatch, Retrieve], Some("[]".to_string()))
        );
    }

    #[test]
    fn each_tag_sets_its_option() {
        for (subject, option) in [
            ("[Versandbestätigung] x", Dispatch),
            ("[Eingangsbestätigung] x", Receipt),
            ("[Abholbestätigung] x", Retrieve),
            ("[persönlich] x", Private),
            ("[absenderbestätigt] x", Authoritative),
        ] {
            assert_eq!(
                run(subject),
                (vec![option], Some("x".to_string())),
                "{subject}"
            );
        }
    }

    #[test]
    fn case_and_umlaut_spellings() {
        for s in [
            "[Abholbestaetigung] Bescheid",
            "[ABHOLBESTÄTIGUNG] Bescheid",
            "[abholbestätigung] Bescheid",
            "[ABHOLBESTAETIGUNG] Bescheid",
            "[Abholbesta\u{308}tigung] Bescheid",
        ] {
            assert_eq!(run(s), (vec![Retrieve], Some("Bescheid".into())), "{s}");
        }
        assert_eq!(run("[Persoenlich] a").0, vec![Private]);
        assert_eq!(run("[PERSÖNLICH] a").0, vec![Private]);
    }

    #[test]
    fn anywhere_and_several_with_tidy_spaces() {
        assert_eq!(
            run("Bescheid  [Abholbestätigung] vom 3. Mai [persönlich]"),
            (vec![Retrieve, Private], Some("Bescheid vom 3. Mai".into()))
        );
        assert_eq!(
            run("Re: [Eingangsbestätigung][Versandbestätigung] Antrag"),
            (vec![Receipt, Dispatch], Some("Re: Antrag".into()))
        );
        assert_eq!(
            run("[Abholbestätigung]"),
            (vec![Retrieve], Some(String::new()))
        );
    }

    #[test]
    fn unknown_tags_stay_and_untouched_subject_is_not_rewritten() {
        assert_eq!(run("[EXTERN] [Entwurf]  Antrag"), (vec![], None));
        assert_eq!(
            run("[EXTERN] [Abholbestätigung] [Entwurf] Antrag"),
            (vec![Retrieve], Some("[EXTERN] [Entwurf] Antrag".into()))
        );
        assert_eq!(run("Preis [in EUR"), (vec![], None));
        assert_eq!(run("a ] b [ c"), (vec![], None));
        assert_eq!(run(""), (vec![], None));
    }

    #[test]
    fn stray_bracket_before_a_tag() {
        assert_eq!(
            run("Liste [1 [Abholbestätigung] x"),
            (vec![Retrieve], Some("Liste [1 x".into()))
        );
    }

    #[test]
    fn lookalikes_are_not_tags() {
        assert_eq!(run("[Abholbestätigungen] x").0, vec![]);
        assert_eq!(run("[De-Mail Abholbestätigung] x").0, vec![]);
        assert_eq!(run("Abholbestätigung x").0, vec![]);
    }
}
