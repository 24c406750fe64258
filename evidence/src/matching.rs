//! Which sent De-Mail a confirmation is about (TR-01201 and facts §3), and whether it may
//! count at all. Matching: the private-id first, then the original's Message-ID as the
//! provider quotes it, then the `Hash`, the subject only as a last resort, always among the
//! submissions of the accounts that received the confirmation. The city's evidence store has
//! no index of the provider's `X-de-mail-message-id` (it is assigned after the submission was
//! recorded), so that id is kept in the record but not used to match. Binding: a confirmation
//! counts only if its integrity signature covers every field the decision reads, each occurs
//! once, and the header's private-id is the one of the signed XML ([`binding_problems`]).

use demail_trust::integrity::{self, HashAlg};
use time::{Duration, OffsetDateTime};

use crate::{Result, Store, Submission};

/// Submissions this old or older are not considered by the subject/hash fallback.
const RECENT: Duration = Duration::days(90);
/// Most recent submissions the fallback reads.
const RECENT_LIMIT: usize = 500;
/// Most stored messages hashed to compare a `Hash` (each is read from disk).
const MAX_HASH_CANDIDATES: usize = 8;

/// What a confirmation says about the original.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// `X-de-mail-private-id` / `-privat-id`, from the mail's header, then from the XML.
    pub private_ids: Vec<String>,
    /// The original's `Message-ID`, as the XML metadata quotes it.
    pub message_ids: Vec<String>,
    /// The original's `X-de-mail-integrity`, as the provider computed it.
    pub hash: Option<String>,
    /// The original's subject.
    pub subject: Option<String>,
    /// Addresses in the quoted recipient fields, lower case.
    pub addresses: Vec<String>,
    /// Addresses in the confirmation's text, lower case.
    pub text_addresses: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PrivateId,
    MessageId,
    Hash,
    Subject,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::PrivateId => "private-id",
            Method::MessageId => "message-id",
            Method::Hash => "hash",
            Method::Subject => "subject",
        }
    }
}

/// The `Hash` compared with the stored bytes of the matched submission: only its body hash
/// (`bh=`) can be compared, because the provider's header hash covers the
/// `X-de-mail-message-id` it added itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCheck {
    BodyHashMatches,
    BodyHashDiffers,
    NotCompared,
}

impl HashCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            HashCheck::BodyHashMatches => "body hash matches the sent message",
            HashCheck::BodyHashDiffers => "body hash differs from the sent message",
            HashCheck::NotCompared => "not compared",
        }
    }
}

#[derive(Debug)]
pub struct Found {
    pub submission: Option<Submission>,
    pub method: Option<Method>,
    pub hash: HashCheck,
}

impl Found {
    fn none() -> Found {
        Found {
            submission: None,
            method: None,
            hash: HashCheck::NotCompared,
        }
    }
}

/// The submission `claims` name, among those sent from one of `accounts` (the De-Mail
/// accounts the confirmation was delivered to): a confirmation for one tenant never moves a
/// De-Mail of another, whatever id or subject it quotes.
pub fn find(store: &Store, claims: &Claims, accounts: &[String]) -> Result<Found> {
    let ours = |s: &Submission| accounts.iter().any(|a| a.eq_ignore_ascii_case(&s.account));
    let want = claims.hash.as_deref().and_then(BodyHash::parse);
    let found = |s: Submission, method| -> Result<Found> {
        let hash = match &want {
            Some(w) => match w.matches(store, &s)? {
                Some(true) => HashCheck::BodyHashMatches,
                Some(false) => HashCheck::BodyHashDiffers,
                None => HashCheck::NotCompared,
            },
            None => HashCheck::NotCompared,
        };
        Ok(Found {
            submission: Some(s),
            method: Some(method),
            hash,
        })
    };
    for id in &claims.private_ids {
        if let Some(s) = store.find(id)?
            && s.private_id == *id
            && ours(&s)
        {
            return found(s, Method::PrivateId);
        }
    }
    for id in &claims.message_ids {
        if let Some(s) = store.find(id)?
            && ours(&s)
        {
            return found(s, Method::MessageId);
        }
    }
    let Some(subject) = claims.subject.as_deref().map(str::trim) else {
        return Ok(Found::none());
    };
    let since = OffsetDateTime::now_utc() - RECENT;
    let candidates: Vec<Submission> = store
        .list(None, Some(since), RECENT_LIMIT)?
        .into_iter()
        .filter(|s| s.subject.trim() == subject && ours(s))
        .collect();
    if let Some(w) = &want {
        // Newest first: a resent message with the same body is the likelier original.
        for s in candidates.into_iter().take(MAX_HASH_CANDIDATES) {
            if w.matches(store, &s)? == Some(true) {
                return Ok(Found {
                    submission: Some(s),
                    method: Some(Method::Hash),
                    hash: HashCheck::BodyHashMatches,
                });
            }
        }
        return Ok(Found::none());
    }
    match <[Submission; 1]>::try_from(candidates) {
        Ok([only]) => found(only, Method::Subject),
        // None, or ambiguous: better unmatched than matched to the wrong De-Mail.
        Err(_) => Ok(Found::none()),
    }
}

/// The recipient a confirmation is about: one of the submission's recipients that the
/// confirmation names, else its only recipient; unmatched, the first quoted recipient.
pub fn recipient(submission: Option<&Submission>, claims: &Claims) -> String {
    if let Some(s) = submission {
        let named = |list: &[String]| {
            s.recipients
                .iter()
                .find(|r| list.iter().any(|a| a.eq_ignore_ascii_case(r)))
                .cloned()
        };
        if let Some(r) = named(&claims.addresses).or_else(|| named(&claims.text_addresses)) {
            return r;
        }
        if let [only] = s.recipients.as_slice() {
            return only.clone();
        }
    }
    claims
        .addresses
        .first()
        .or(claims.text_addresses.first())
        .cloned()
        .unwrap_or_default()
}

/// Addresses in a recipient field (`to=a@x, b@y; cc=...`, parsed leniently) or in free text.
pub fn addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '=' | '<' | '>' | '"' | '(' | ')' | ':')
    }) {
        let token = token.trim_matches(|c: char| matches!(c, '.' | '\'' | '[' | ']'));
        let valid = token
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
        let token = token.to_ascii_lowercase();
        if valid && !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

/// The body hash (`bh=`, with the hash of `a=`) of an `X-de-mail-integrity` value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BodyHash {
    alg: HashAlg,
    bh: Vec<u8>,
}

impl BodyHash {
    fn parse(value: &str) -> Option<BodyHash> {
        let mut alg = None;
        let mut bh = None;
        for tag in value.split(';') {
            let Some((name, v)) = tag.split_once('=') else {
                continue;
            };
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            match name.trim() {
                "a" => alg = HashAlg::from_name(v.split('/').next().unwrap_or_default()),
                "bh" => bh = openssl::base64::decode_block(&v).ok(),
                _ => {}
            }
        }
        Some(BodyHash {
            alg: alg?,
            bh: bh.filter(|b| !b.is_empty())?,
        })
    }

    /// Whether the stored bytes of `s` have this body hash; `None` if it cannot be computed.
    /// The trust crate's own canonicalisation computes it (via an unsigned seal).
    fn matches(&self, store: &Store, s: &Submission) -> Result<Option<bool>> {
        let sent = store.read_blob(&s.content)?;
        let Ok(sealed) = integrity::hash_only(&sent, self.alg) else {
            return Ok(None);
        };
        let ours = integrity::verify(&sealed)
            .integrity_value
            .as_deref()
            .and_then(BodyHash::parse);
        Ok(ours.map(|o| o.bh == self.bh))
    }
}

/// The header fields that name the original by its private-id (the TR spells it both ways).
pub const PRIVATE_ID_FIELDS: [&str; 2] = ["X-de-mail-private-id", "X-de-mail-privat-id"];

/// The header fields a confirmation's meaning is read from. Each must occur at most once and,
/// when present, be covered by the integrity signature (`h=`); otherwise whoever relayed the
/// message could have added or changed it, and the confirmation counts for nothing.
/// (`X-de-mail-notification-type` is not among them: the TR's `h=` list leaves it out, and any
/// notification fails the recipient whatever its type says.)
pub const DECISION_FIELDS: [&str; 4] = [
    "X-de-mail-message-type",
    PRIVATE_ID_FIELDS[0],
    PRIVATE_ID_FIELDS[1],
    "X-de-mail-message-id",
];

/// How often each of [`DECISION_FIELDS`] occurs, `count` telling how often a field name
/// (case-insensitive) occurs in the header.
pub fn decision_field_counts(count: impl Fn(&str) -> usize) -> Vec<(&'static str, usize)> {
    DECISION_FIELDS.iter().map(|n| (*n, count(n))).collect()
}

/// Why a verified confirmation still proves nothing: a decision field that occurs twice or is
/// not among `signed_fields` (the signature's `h=`), or a private-id in the header
/// (`header_private_ids`) that the signed XML's private-ids (`xml_private_ids`, empty when it
/// names none) contradict. Empty: the signature binds what the decision reads.
pub fn binding_problems(
    signed_fields: &[String],
    counts: &[(&str, usize)],
    header_private_ids: &[String],
    xml_private_ids: &[&str],
) -> Vec<String> {
    let signed = |name: &str| {
        signed_fields
            .iter()
            .any(|n| n.trim().eq_ignore_ascii_case(name))
    };
    let mut problems = Vec::new();
    for (name, n) in counts {
        if *n > 1 {
            problems.push(format!("{name} occurs {n} times"));
        }
        if *n > 0 && !signed(name) {
            problems.push(format!(
                "{name} is not covered by the integrity signature (h=)"
            ));
        }
    }
    let xml: Vec<&str> = xml_private_ids
        .iter()
        .copied()
        .filter(|v| !v.is_empty())
        .collect();
    for id in header_private_ids {
        if !xml.is_empty() && !xml.contains(&id.as_str()) {
            problems.push(format!(
                "the private-id {id:?} of the header is not the one of the signed XML ({})",
                xml.join(", ")
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_fields_and_text_yield_addresses() {
        assert_eq!(
            addresses("to=A@x.de-mail.de, b@y.de-mail.de; cc=c@z.example"),
            ["a@x.de-mail.de", "b@y.de-mail.de", "c@z.example"]
        );
        assert_eq!(
            addresses("Empfänger: <Buerger@example.de-mail.de>. Danke."),
            ["buerger@example.de-mail.de"]
        );
        assert!(addresses("kein @ hier, a@b, @x.y").is_empty());
    }

    #[test]
    fn body_hash_is_read_from_the_tags() {
        let h =
            BodyHash::parse("v=1; a=sha256/rsa; c=simple/simple; bh=AAEC\r\n Aw==; b=x").unwrap();
        assert_eq!(h.alg, HashAlg::from_name("sha256").unwrap());
        assert_eq!(h.bh, vec![0, 1, 2, 3]);
        assert!(BodyHash::parse("v=1; a=md5; bh=AAEC").is_none());
        assert!(BodyHash::parse("v=1; a=sha256").is_none());
    }

    fn submission(recipients: &[&str]) -> Submission {
        Submission {
            event_id: 1,
            private_id: "p".into(),
            origin_key: crate::Digest([0; 32]),
            tenant: "t".into(),
            account: "a@x.de-mail.de".into(),
            clerk: "c@x".into(),
            sasl_login: None,
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            subject: "s".into(),
            message_id: "<m@x>".into(),
            queue_id: "q".into(),
            options: vec![],
            content: crate::Digest([0; 32]),
            size: 0,
            time: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn recipient_prefers_what_the_confirmation_names() {
        let s = submission(&["A@one.de-mail.de", "b@two.de-mail.de"]);
        let claims = Claims {
            addresses: vec!["b@two.de-mail.de".into()],
            ..Claims::default()
        };
        assert_eq!(recipient(Some(&s), &claims), "b@two.de-mail.de");
        let claims = Claims {
            text_addresses: vec!["x@y.example".into(), "a@one.de-mail.de".into()],
            ..Claims::default()
        };
        assert_eq!(recipient(Some(&s), &claims), "A@one.de-mail.de");
        // Two recipients, none named: unknown rather than guessed.
        assert_eq!(recipient(Some(&s), &Claims::default()), "");
        let single = submission(&["only@x.de-mail.de"]);
        assert_eq!(
            recipient(Some(&single), &Claims::default()),
            "only@x.de-mail.de"
        );
        assert_eq!(recipient(None, &claims), "x@y.example");
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("blobs")).unwrap();
        (dir, store)
    }

    /// Records a sent De-Mail of `account` with this private-id, Message-ID and subject.
    fn sent(store: &Store, account: &str, private_id: &str, message_id: &str, subject: &str) {
        let body = format!("From: c@stadt.example\r\nSubject: {subject}\r\n\r\n{private_id}\r\n");
        store
            .record_submission(&crate::NewSubmission {
                private_id: private_id.into(),
                origin_key: crate::Digest::of(body.as_bytes()),
                tenant: account.split_once('@').unwrap().1.into(),
                account: account.into(),
                clerk: "c@stadt.example".into(),
                sasl_login: None,
                recipients: vec!["r@x.de-mail.de".into()],
                subject: subject.into(),
                message_id: message_id.into(),
                queue_id: "Q".into(),
                options: vec![],
                content: store.put_blob(body.as_bytes()).unwrap(),
                size: body.len() as u64,
                time: OffsetDateTime::now_utc(),
            })
            .unwrap();
    }

    fn accounts(a: &[&str]) -> Vec<String> {
        a.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn matching_considers_only_the_receiving_accounts() {
        let (_dir, store) = store();
        sent(
            &store,
            "stadt@a.de-mail.de",
            "01A.a",
            "<1@a.example>",
            "Bescheid",
        );
        sent(
            &store,
            "amt@b.de-mail.de",
            "01B.b",
            "<2@b.example>",
            "Mahnung",
        );
        let by_id = |id: &str| Claims {
            private_ids: vec![id.into()],
            ..Claims::default()
        };
        let by_message_id = |id: &str| Claims {
            message_ids: vec![id.into()],
            ..Claims::default()
        };
        let by_subject = |s: &str| Claims {
            subject: Some(s.into()),
            ..Claims::default()
        };
        let a = accounts(&["STADT@a.de-mail.de"]);
        let found = find(&store, &by_id("01A.a"), &a).unwrap();
        assert_eq!(found.method, Some(Method::PrivateId));
        assert_eq!(found.submission.unwrap().private_id, "01A.a");
        let found = find(&store, &by_message_id("<1@a.example>"), &a).unwrap();
        assert_eq!(found.method, Some(Method::MessageId));
        let found = find(&store, &by_subject(" Bescheid "), &a).unwrap();
        assert_eq!(found.method, Some(Method::Subject));
        // Whatever it quotes, a confirmation for tenant A never names a De-Mail of tenant B.
        for claims in [
            by_id("01B.b"),
            by_message_id("<2@b.example>"),
            by_message_id("01B.b"),
            by_subject("Mahnung"),
        ] {
            let found = find(&store, &claims, &a).unwrap();
            assert!(found.submission.is_none(), "{claims:?} matched {found:?}");
            assert_eq!(found.method, None);
        }
        assert!(
            find(&store, &by_id("01A.a"), &[])
                .unwrap()
                .submission
                .is_none()
        );
        // The private-id of one's own, but only as a Message-ID: not a private-id match.
        let found = find(&store, &by_id("<1@a.example>"), &a).unwrap();
        assert!(found.submission.is_none());
    }

    #[test]
    fn an_ambiguous_subject_matches_nothing() {
        let (_dir, store) = store();
        sent(
            &store,
            "stadt@a.de-mail.de",
            "01A.1",
            "<1@a.example>",
            "Bescheid",
        );
        sent(
            &store,
            "stadt@a.de-mail.de",
            "01A.2",
            "<2@a.example>",
            "Bescheid",
        );
        let claims = Claims {
            subject: Some("Bescheid".into()),
            ..Claims::default()
        };
        let found = find(&store, &claims, &accounts(&["stadt@a.de-mail.de"])).unwrap();
        assert!(found.submission.is_none());
        assert_eq!(found.hash, HashCheck::NotCompared);
    }

    /// The `X-de-mail-integrity` value the provider would quote for `message` (hash only).
    fn integrity_of(message: &[u8]) -> String {
        let sealed = integrity::hash_only(message, HashAlg::from_name("sha256").unwrap()).unwrap();
        integrity::verify(&sealed).integrity_value.unwrap()
    }

    #[test]
    fn the_hash_picks_among_same_subjects_and_is_compared_with_the_stored_bytes() {
        let (_dir, store) = store();
        let account = "stadt@a.de-mail.de";
        sent(&store, account, "01A.1", "<1@a.example>", "Bescheid");
        sent(&store, account, "01A.2", "<2@a.example>", "Bescheid");
        let a = accounts(&[account]);
        let hash_of = |id: &str| {
            let s = store.find(id).unwrap().unwrap();
            integrity_of(&store.read_blob(&s.content).unwrap())
        };
        let by_hash = |hash: String| Claims {
            subject: Some("Bescheid".into()),
            hash: Some(hash),
            ..Claims::default()
        };
        for id in ["01A.1", "01A.2"] {
            let found = find(&store, &by_hash(hash_of(id)), &a).unwrap();
            assert_eq!(found.method, Some(Method::Hash));
            assert_eq!(found.hash, HashCheck::BodyHashMatches);
            assert_eq!(found.submission.unwrap().private_id, id);
        }
        // A body neither of them has: better unmatched than the wrong De-Mail.
        let other =
            integrity_of(b"From: c@stadt.example\r\nSubject: Bescheid\r\n\r\nsomething else\r\n");
        assert!(
            find(&store, &by_hash(other.clone()), &a)
                .unwrap()
                .submission
                .is_none()
        );
        // Matched by private-id, the hash is only reported.
        let claims = |hash: String| Claims {
            private_ids: vec!["01A.1".into()],
            hash: Some(hash),
            ..Claims::default()
        };
        let found = find(&store, &claims(hash_of("01A.1")), &a).unwrap();
        assert_eq!(
            (found.method, found.hash),
            (Some(Method::PrivateId), HashCheck::BodyHashMatches)
        );
        let found = find(&store, &claims(other), &a).unwrap();
        assert_eq!(
            (found.method, found.hash),
            (Some(Method::PrivateId), HashCheck::BodyHashDiffers)
        );
        let found = find(&store, &claims("v=1; a=sha256".into()), &a).unwrap();
        assert_eq!(found.hash, HashCheck::NotCompared);
    }

    fn signed(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_signature_binding_every_decision_field_has_no_problems() {
        let all = signed(&[
            "From",
            " x-de-mail-message-type ",
            "X-de-mail-private-id",
            "X-DE-MAIL-MESSAGE-ID",
        ]);
        let counts = decision_field_counts(|n| {
            usize::from(n != "X-de-mail-privat-id") // the other spelling is absent
        });
        let ids = ["01A.a".to_string()];
        assert_eq!(
            binding_problems(&all, &counts, &ids, &["01A.a"]),
            [] as [String; 0]
        );
        // No XML, or one that names no private-id: nothing to contradict.
        assert!(binding_problems(&all, &counts, &ids, &[]).is_empty());
        assert!(binding_problems(&all, &counts, &ids, &["", ""]).is_empty());
        // A field that is absent need not be signed.
        let none = decision_field_counts(|_| 0);
        assert!(binding_problems(&[], &none, &[], &[]).is_empty());
        // Either spelling in the XML may carry the header's id.
        assert!(binding_problems(&all, &counts, &ids, &["01X.other", "01A.a"]).is_empty());
    }

    #[test]
    fn unsigned_repeated_or_contradicted_decision_fields_are_problems() {
        let counts = |n: &str| decision_field_counts(|f| usize::from(f == n));
        let ids = ["01A.a".to_string()];
        for field in DECISION_FIELDS {
            let problems =
                binding_problems(&signed(&["From", "Subject"]), &counts(field), &[], &[]);
            assert_eq!(
                problems,
                [format!(
                    "{field} is not covered by the integrity signature (h=)"
                )]
            );
        }
        let twice = decision_field_counts(|f| 2 * usize::from(f == "X-de-mail-message-type"));
        assert_eq!(
            binding_problems(&signed(&["X-de-mail-message-type"]), &twice, &[], &[]),
            ["X-de-mail-message-type occurs 2 times"]
        );
        assert_eq!(
            binding_problems(&signed(&[]), &twice, &[], &[]).len(),
            2,
            "repeated and unsigned"
        );
        let none = decision_field_counts(|_| 0);
        for xml in [&["01B.b"][..], &["01a.A"], &["", "01A.a "]] {
            assert_eq!(
                binding_problems(&[], &none, &ids, xml),
                [format!(
                    "the private-id \"01A.a\" of the header is not the one of the signed XML ({})",
                    xml.iter()
                        .filter(|v| !v.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
                "{xml:?}"
            );
        }
    }
}
