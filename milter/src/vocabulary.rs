//! Our and the provider's header vocabulary, and what mail that did not earn it gets: forged
//! fields renamed `X-Untrusted-...`, exactly one `Subject`, no look-alike of our tags. Used on
//! every inbound path (ordinary mail, the poststelle, the provider).

use demail_policy::Tags;

use crate::header::{Edit, Field, HeaderPlan, wire};
use crate::text::{decode_subject, encode_unstructured};

/// Field name prefixes only the provider (`X-de-mail-`) or this gateway (`X-DeMail-`,
/// `X-QES-`) may set.
const UNTRUSTED_PREFIXES: [&str; 3] = ["X-de-mail-", "X-DeMail-", "X-QES-"];

/// Whether an ordinary mail's field must be kept until end of header (it may need changing).
pub fn may_need_change(field: &Field) -> bool {
    is_untrusted(field) || field.is("Subject")
}

/// A field only the provider or this gateway may set. `X-DeMail-Options` is input (a
/// program's request for a De-Mail), claims nothing, and means nothing outside De-Mail: it
/// passes unchanged.
pub fn is_untrusted(field: &Field) -> bool {
    !field.is("X-DeMail-Options") && UNTRUSTED_PREFIXES.iter().any(|p| field.has_prefix(p))
}

/// Whether mail from an untrusted source carries something to neutralise: a forged field, a
/// second `Subject`, or a subject the tag rules change (a look-alike of a tag of ours).
pub fn needs_neutralising(fields: &[Field], tags: &Tags) -> bool {
    fields.iter().any(is_untrusted)
        || fields.iter().filter(|f| f.is("Subject")).count() > 1
        || subject_without_tags(fields, tags).is_some()
}

/// Mail from an untrusted source: every forged field renamed, our tags removed from the subject.
pub fn neutralise_only(fields: &[Field], tags: &Tags) -> Vec<Edit> {
    let mut plan = HeaderPlan::new(fields);
    rename(&mut plan, fields, is_untrusted);
    set_subject(&mut plan, fields, tags, None);
    plan.edits()
}

/// Renames the fields `pred` selects to `X-Untrusted-<name without "X-">` (the poststelle's
/// `X-Untrusted-QES-...` convention; `Subject` becomes `X-Untrusted-Subject`), keeping their
/// values.
pub fn rename(plan: &mut HeaderPlan<'_>, fields: &[Field], pred: impl Fn(&Field) -> bool) {
    for f in fields.iter().filter(|f| pred(f)) {
        let rest = if f.has_prefix("X-") {
            f.name.get(2..).unwrap_or_default()
        } else {
            &f.name[..]
        };
        let mut name = b"X-Untrusted-".to_vec();
        name.extend_from_slice(rest);
        plan.append_raw(name, f.value.clone());
    }
    plan.delete_where(pred);
}

/// The subject a clerk should see instead of the first `Subject`, if the tag rules
/// (`demail_policy::Tags::subject`) change it: look-alikes of our tags removed, `tag` in front.
fn subject_without_tags(fields: &[Field], tags: &Tags) -> Option<String> {
    let decoded = decode_subject(&fields.iter().find(|f| f.is("Subject"))?.value);
    tags.subject(&decoded, None)
}

/// Leaves exactly one `Subject` (the first; later ones renamed `X-Untrusted-Subject`: mail
/// clients differ in which one they show), cleaned of look-alikes of our tags, with `tag` (if
/// non-empty, the one this mail earned) in front.
pub fn set_subject(plan: &mut HeaderPlan<'_>, fields: &[Field], tags: &Tags, tag: Option<&str>) {
    let first = fields.iter().position(|f| f.is("Subject"));
    if let Some(first) = first {
        let keep = &fields[first];
        rename(plan, fields, |f| f.is("Subject") && !std::ptr::eq(f, keep));
    }
    let decoded = first
        .map(|i| decode_subject(&fields[i].value))
        .unwrap_or_default();
    // None: unchanged, the field keeps its exact bytes.
    if let Some(subject) = tags.subject(&decoded, tag) {
        plan.set("Subject", wire(&encode_unstructured(&subject)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_fields_are_renamed_and_forged_tags_removed() {
        let fields = vec![
            Field::new("Subject", " [De-Mail absenderbestätigt] Mahnung"),
            Field::new("X-de-mail-authoritative", " yes"),
            Field::new("x-demail-verified", " pass"),
            Field::new("From", " a@b"),
        ];
        assert!(needs_neutralising(&fields, &Tags::default()));
        let edits = neutralise_only(&fields, &Tags::default());
        let added: Vec<(String, String)> = edits
            .iter()
            .filter_map(|e| match e {
                Edit::Add { name, value } => Some((
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            added,
            [
                ("X-Untrusted-de-mail-authoritative".into(), " yes".into()),
                ("X-Untrusted-demail-verified".into(), " pass".into()),
            ]
        );
        assert!(edits.contains(&Edit::Change {
            name: b"Subject".to_vec(),
            index: 1,
            value: b" Mahnung".to_vec()
        }));
        let clean = vec![
            Field::new("Subject", " Mahnung"),
            Field::new("X-Mailer", " x"),
            Field::new("X-DeMail-Options", " retrieve"),
        ];
        assert!(!needs_neutralising(&clean, &Tags::default()));
    }
}
