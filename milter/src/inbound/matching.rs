//! Which sent De-Mail a confirmation is about (TR-01201 and facts §3): the private-id first,
//! then the original's Message-ID as the provider quotes it, then the `Hash`, the subject
//! only as a last resort. The city's evidence store has no index of the provider's
//! `X-de-mail-message-id` (it is assigned after the submission was recorded), so that id is
//! kept in the record but not used to match.

use demail_evidence::{Store, Submission};
use demail_trust::integrity::{self, HashAlg};
use time::{Duration, OffsetDateTime};

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
pub fn find(
    store: &Store,
    claims: &Claims,
    accounts: &[String],
) -> Result<Found, demail_evidence::Error> {
    let ours = |s: &Submission| accounts.iter().any(|a| a.eq_ignore_ascii_case(&s.account));
    let want = claims.hash.as_deref().and_then(BodyHash::parse);
    let found = |s: Submission, method| -> Result<Found, demail_evidence::Error> {
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
    fn matches(
        &self,
        store: &Store,
        s: &Submission,
    ) -> Result<Option<bool>, demail_evidence::Error> {
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
            origin_key: demail_evidence::Digest([0; 32]),
            tenant: "t".into(),
            account: "a@x.de-mail.de".into(),
            clerk: "c@x".into(),
            sasl_login: None,
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            subject: "s".into(),
            message_id: "<m@x>".into(),
            queue_id: "q".into(),
            options: vec![],
            content: demail_evidence::Digest([0; 32]),
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
}
