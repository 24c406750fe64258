//! The messages of the `Ausstehend` and `Zustellfiktion` folders: a short text a clerk
//! understands (German, then English), then the sent De-Mail exactly as stored, attached as
//! `message/rfc822`.
//!
//! The bytes are a pure function of the evidence (the submission, the per-recipient status,
//! the folder): no clock, no randomness, CRLF line endings. They are built in two parts around
//! the original, so that the size and the content key are known without reading the original:
//! `prefix || original || suffix`. The original goes in unencoded (RFC 2046 allows no base64
//! for `message/rfc822`), so the boundary must not occur in it: it carries the original's own
//! SHA-256, which the original cannot contain.

use demail_evidence::{Digest, RecipientStatus, Status, Submission, german_time};
use openssl::sha::Sha256;
use time::OffsetDateTime;

/// Which of the two generated folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    Pending,
    DeemedServed,
}

/// A notice without the original.
#[derive(Debug)]
pub(crate) struct Notice {
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
    /// The original's blob (goes between prefix and suffix).
    pub original: Digest,
    pub original_size: u64,
    /// Identifies the whole message: SHA-256 over the prefix, the original's digest and the
    /// suffix (so equal keys mean equal bytes).
    pub key: Digest,
    /// `Date` and INTERNALDATE: the latest event concerning the De-Mail.
    pub date: OffsetDateTime,
}

impl Notice {
    pub fn size(&self) -> u64 {
        self.prefix.len() as u64 + self.original_size + self.suffix.len() as u64
    }

    /// The whole message around the original's bytes.
    pub fn assemble(&self, original: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + original.len() + self.suffix.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(original);
        out.extend_from_slice(&self.suffix);
        out
    }
}

/// The confirmations a recipient still lacks (the rule lives with the status projection).
pub(crate) use demail_evidence::Outstanding as Missing;

pub(crate) fn missing(options: &[String], st: &RecipientStatus) -> Vec<Missing> {
    demail_evidence::outstanding(options, st)
}

fn german(m: Missing) -> &'static str {
    match m {
        Missing::Dispatch => "Versandbestätigung",
        Missing::Receipt => "Eingangsbestätigung",
        Missing::Retrieve => "Abholbestätigung",
    }
}

fn english(m: Missing) -> &'static str {
    match m {
        Missing::Dispatch => "dispatch confirmation (Versandbestätigung)",
        Missing::Receipt => "receipt confirmation (Eingangsbestätigung)",
        Missing::Retrieve => "retrieval confirmation (Abholbestätigung)",
    }
}

/// Builds the notice of `kind` for one sent De-Mail. `latest` is the time of the latest event
/// concerning it (submission or trusted confirmation).
pub(crate) fn render(
    kind: NoticeKind,
    s: &Submission,
    statuses: &[RecipientStatus],
    latest: OffsetDateTime,
) -> Notice {
    let date = match kind {
        NoticeKind::Pending => latest,
        // Deemed served at the end of the deadline: that is the news.
        NoticeKind::DeemedServed => statuses
            .iter()
            .filter(|st| st.deemed_served)
            .filter_map(|st| st.deemed_served_deadline)
            .min()
            .map_or(latest, |d| latest.max(d)),
    };
    let text = text(kind, s, statuses);
    let subject = neutral(&s.subject, 200);
    let (prefix_de, _) = prefixes(kind);
    let boundary = format!("=_demail_{}", &s.content.hex()[..40]);
    let status_digest = hex::encode(&openssl::sha::sha256(text.as_bytes())[..12]);
    let message_id = format!(
        "<{}.{status_digest}.{}@{}>",
        match kind {
            NoticeKind::Pending => "pending",
            NoticeKind::DeemedServed => "deemed-served",
        },
        id_part(&s.private_id),
        domain_part(&s.account)
    );
    let mut h = String::new();
    h.push_str(&format!(
        "From: De-Mail-Gateway <{}>\r\n",
        address_or(&s.account, "postmaster@demail-gateway.invalid")
    ));
    match plain_address(&s.clerk) {
        Some(a) => h.push_str(&format!("To: <{a}>\r\n")),
        None => h.push_str("To: undisclosed-recipients:;\r\n"),
    }
    h.push_str(&format!(
        "Subject: {}\r\n",
        encode_word(&format!("{prefix_de}: {subject}"), "Subject: ".len())
    ));
    h.push_str(&format!("Date: {}\r\n", rfc5322_date(german_time(date))));
    h.push_str(&format!("Message-ID: {message_id}\r\n"));
    h.push_str("MIME-Version: 1.0\r\n");
    h.push_str("Auto-Submitted: auto-generated\r\n");
    h.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    h.push_str(&format!("--{boundary}\r\n"));
    h.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    h.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    h.push_str(&quoted_printable(&text));
    h.push_str(&format!("\r\n--{boundary}\r\n"));
    h.push_str("Content-Type: message/rfc822\r\n");
    h.push_str("Content-Transfer-Encoding: 8bit\r\n");
    h.push_str("Content-Disposition: attachment; filename=\"De-Mail.eml\"\r\n\r\n");
    let prefix = h.into_bytes();
    let suffix = format!("\r\n--{boundary}--\r\n").into_bytes();
    let mut k = Sha256::new();
    k.update(b"demail-imap-proxy/notice/v1\0");
    k.update(&(prefix.len() as u64).to_be_bytes());
    k.update(&prefix);
    k.update(&s.content.0);
    k.update(&s.size.to_be_bytes());
    k.update(&suffix);
    Notice {
        prefix,
        suffix,
        original: s.content,
        original_size: s.size,
        key: Digest(k.finish()),
        date,
    }
}

fn prefixes(kind: NoticeKind) -> (&'static str, &'static str) {
    match kind {
        NoticeKind::Pending => ("Ausstehend", "Pending"),
        NoticeKind::DeemedServed => ("Zustellfiktion", "Deemed served"),
    }
}

/// The text part, LF line ends (the encoder writes CRLF).
fn text(kind: NoticeKind, s: &Submission, statuses: &[RecipientStatus]) -> String {
    let subject = neutral(&s.subject, 200);
    let pid = neutral(&s.private_id, 200);
    let requested: Vec<Missing> = [
        ("dispatch", Missing::Dispatch),
        ("receipt", Missing::Receipt),
        ("retrieve", Missing::Retrieve),
    ]
    .into_iter()
    .filter(|(k, _)| s.options.iter().any(|o| o == k))
    .map(|(_, m)| m)
    .collect();
    let list = |ms: &[Missing], en: bool| -> String {
        if ms.is_empty() {
            return if en { "none".into() } else { "keine".into() };
        }
        ms.iter()
            .map(|&m| if en { english(m) } else { german(m) })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = String::new();
    // German.
    t.push_str(match kind {
        NoticeKind::Pending => {
            "Ausstehend: Für diese De-Mail fehlt noch mindestens eine angeforderte Bestätigung.\n"
        }
        NoticeKind::DeemedServed => {
            "Zustellfiktion: Diese De-Mail gilt für mindestens einen Empfänger als zugestellt \
             (§ 5a Abs. 4 VwZG): Sie wurde bis zum Ablauf des dritten Tages nach dem Versand \
             nicht abgeholt.\n"
        }
    });
    t.push('\n');
    t.push_str(&format!("Betreff:     {subject}\n"));
    t.push_str(&format!("Private-ID:  {pid}\n"));
    t.push_str(&format!("Versendet:   {}\n", german_date(s.time, false)));
    t.push_str(&format!("Angefordert: {}\n", list(&requested, false)));
    for st in statuses {
        t.push('\n');
        t.push_str(&format!("Empfänger {}\n", neutral(&st.recipient, 200)));
        match st.deemed_served_deadline.filter(|_| st.deemed_served) {
            Some(d) => t.push_str(&format!(
                "  Stand:          gilt als zugestellt mit Ablauf des {}\n",
                german_date(d, false)
            )),
            None => t.push_str(&format!(
                "  Stand:          {} seit {}\n",
                status_german(st),
                german_date(st.since, false)
            )),
        }
        if let Some(d) = st.dispatched {
            t.push_str(&format!("  Versandt:       {}\n", german_date(d, false)));
        }
        if let Some(d) = st.deemed_served_deadline {
            t.push_str(&format!(
                "  Zustellfiktion: {}{}\n",
                german_date(d, false),
                if st.deemed_served {
                    " (eingetreten)"
                } else {
                    " (tritt ein, wenn die De-Mail bis dahin nicht abgeholt wird)"
                }
            ));
        }
        let m = missing(&s.options, st);
        if !m.is_empty() {
            t.push_str(&format!("  Es fehlt:       {}\n", list(&m, false)));
        }
    }
    t.push_str("\nDie De-Mail selbst ist als Anhang beigefügt.\n");
    t.push_str("\n----------------------------------------------------------------------\n\n");
    // English.
    t.push_str(match kind {
        NoticeKind::Pending => {
            "Pending: at least one confirmation requested for this De-Mail has not arrived yet.\n"
        }
        NoticeKind::DeemedServed => {
            "Deemed served: for at least one recipient this De-Mail counts as served \
             (section 5a (4) VwZG): it was not retrieved by the end of the third day after \
             dispatch.\n"
        }
    });
    t.push('\n');
    t.push_str(&format!("Subject:    {subject}\n"));
    t.push_str(&format!("Private-ID: {pid}\n"));
    t.push_str(&format!("Sent:       {}\n", german_date(s.time, true)));
    t.push_str(&format!("Requested:  {}\n", list(&requested, true)));
    for st in statuses {
        t.push('\n');
        t.push_str(&format!("Recipient {}\n", neutral(&st.recipient, 200)));
        match st.deemed_served_deadline.filter(|_| st.deemed_served) {
            Some(d) => t.push_str(&format!(
                "  Status:        deemed served at the end of {}\n",
                german_date(d, true)
            )),
            None => t.push_str(&format!(
                "  Status:        {} since {}\n",
                status_english(st),
                german_date(st.since, true)
            )),
        }
        if let Some(d) = st.dispatched {
            t.push_str(&format!("  Dispatched:    {}\n", german_date(d, true)));
        }
        if let Some(d) = st.deemed_served_deadline {
            t.push_str(&format!(
                "  Deemed served: {}{}\n",
                german_date(d, true),
                if st.deemed_served {
                    " (in effect)"
                } else {
                    " (takes effect unless retrieved by then)"
                }
            ));
        }
        let m = missing(&s.options, st);
        if !m.is_empty() {
            t.push_str(&format!("  Missing:       {}\n", list(&m, true)));
        }
    }
    t.push_str("\nThe De-Mail itself is attached.\n");
    t
}

fn status_german(st: &RecipientStatus) -> &'static str {
    match st.status {
        Status::Submitted => "abgesendet",
        Status::Dispatched => "versandt",
        Status::Received => "eingegangen",
        Status::Retrieved => "abgeholt",
        Status::Failed => "fehlgeschlagen (siehe Fehlermeldungen)",
    }
}

fn status_english(st: &RecipientStatus) -> &'static str {
    match st.status {
        Status::Submitted => "submitted",
        Status::Dispatched => "dispatched",
        Status::Received => "received",
        Status::Retrieved => "retrieved",
        Status::Failed => "failed (see Fehlermeldungen)",
    }
}

/// `dd.mm.yyyy hh:mm:ss MEZ` in German civil time (CET/CEST in English).
fn german_date(t: OffsetDateTime, english: bool) -> String {
    let t = german_time(t);
    let summer = t.offset().whole_hours() == 2;
    let zone = match (summer, english) {
        (false, false) => "MEZ",
        (true, false) => "MESZ",
        (false, true) => "CET",
        (true, true) => "CEST",
    };
    format!(
        "{:02}.{:02}.{} {:02}:{:02}:{:02} {zone}",
        t.day(),
        t.month() as u8,
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// RFC 5322 date-time (`time` writes the RFC 2822 form, which is RFC 5322's).
fn rfc5322_date(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

/// Text from the evidence made safe for a line of ours: control characters (CR, LF, TAB, ...),
/// line and paragraph separators and bidi controls become spaces; at most `max` characters.
pub(crate) fn neutral(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
            {
                ' '
            } else {
                c
            }
        })
        .take(max + 1)
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max).collect();
        out.push('…');
    }
    out.trim().to_string()
}

/// `s` if it is a bare ASCII addr-spec we can write between angle brackets.
fn plain_address(s: &str) -> Option<&str> {
    let s = s.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
    };
    (ok(local) && ok(domain) && s.len() <= 254).then_some(s)
}

fn address_or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    plain_address(s).unwrap_or(fallback)
}

fn domain_part(account: &str) -> String {
    plain_address(account)
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| {
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .unwrap_or_else(|| "demail-gateway.invalid".into())
}

/// The private-id as it may stand in a Message-ID, else a digest of it.
fn id_part(pid: &str) -> String {
    let plain = !pid.is_empty()
        && pid.len() <= 64
        && pid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if plain {
        pid.to_string()
    } else {
        hex::encode(&openssl::sha::sha256(pid.as_bytes())[..16])
    }
}

/// RFC 2047 Q encoded-words (UTF-8), folded so no line exceeds 76 characters; `first` is the
/// length of the field name already on the first line. Never splits a character.
fn encode_word(s: &str, first: usize) -> String {
    const OPEN: &str = "=?UTF-8?Q?";
    const MAX_WORD: usize = 75;
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::from(OPEN);
    let mut budget = MAX_WORD.saturating_sub(first.min(20));
    for c in s.chars() {
        let mut enc = String::new();
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if b == b' ' {
                enc.push('_');
            } else if b.is_ascii_alphanumeric() || b"!*+-/".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("={b:02X}"));
            }
        }
        if cur.len() + enc.len() + 2 > budget && cur.len() > OPEN.len() {
            cur.push_str("?=");
            words.push(std::mem::replace(&mut cur, String::from(OPEN)));
            budget = MAX_WORD;
        }
        cur.push_str(&enc);
    }
    cur.push_str("?=");
    words.push(cur);
    words.join("\r\n ")
}

/// Quoted-printable (RFC 2045 6.7) of UTF-8 text with LF line ends: CRLF line breaks, soft
/// breaks before 76 characters, trailing white space encoded.
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut col = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let lit =
                ((b == b' ' || b == b'\t') && !last) || ((33..=126).contains(&b) && b != b'=');
            let piece = if lit {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            out.push_str(&piece);
            col += piece.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322_in_german_time() {
        let t = time::macros::datetime!(2026-11-02 09:00 UTC);
        assert_eq!(
            rfc5322_date(german_time(t)),
            "Mon, 02 Nov 2026 10:00:00 +0100"
        );
        let summer = time::macros::datetime!(2026-07-05 22:30:05 UTC);
        assert_eq!(
            rfc5322_date(german_time(summer)),
            "Mon, 06 Jul 2026 00:30:05 +0200"
        );
    }

    #[test]
    fn quoted_printable_lines_stay_short_and_decode() {
        let text = format!("{}\nÄrger = groß \nx", "ü".repeat(60));
        let qp = quoted_printable(&text);
        for line in qp.split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
        }
        assert!(qp.contains("=C3=84rger =3D gro=C3=9F=20\r\nx"), "{qp}");
    }

    #[test]
    fn encoded_subject_words_are_short_and_neutral() {
        let s = neutral("Bescheid\r\nBcc: evil@x\u{202e}ÄÖÜ", 200);
        assert!(!s.contains(['\r', '\n', '\u{202e}']));
        let enc = encode_word(&format!("Ausstehend: {s} {}", "ü".repeat(80)), 9);
        for line in enc.split("\r\n ") {
            assert!(line.len() <= 75, "{line:?}");
            assert!(
                line.starts_with("=?UTF-8?Q?") && line.ends_with("?="),
                "{line:?}"
            );
        }
        assert!(!enc.contains('\n') || enc.split("\r\n").skip(1).all(|l| l.starts_with(' ')));
    }

    #[test]
    fn message_id_parts_are_safe() {
        assert_eq!(id_part("magdeburg-01HX"), "magdeburg-01HX");
        for hostile in ["a>b", "a@b", "x".repeat(65).as_str(), "ä", ""] {
            let p = id_part(hostile);
            assert_eq!(p.len(), 32, "{hostile:?}");
            assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(
            domain_part("info@Magdeburg.de-mail.de"),
            "magdeburg.de-mail.de"
        );
        assert_eq!(domain_part("info@evil>\r\nx"), "demail-gateway.invalid");
        assert_eq!(plain_address("a b@c"), None);
        assert_eq!(plain_address("a@c\r\nBcc: x@y"), None);
        assert_eq!(plain_address("<a@c>"), None);
    }
}
