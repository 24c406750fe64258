//! Small MIME building blocks: raw header fields of a message, RFC 2047 words, base64 bodies,
//! dates and unique ids.

use openssl::base64;
use openssl::rand::rand_bytes;
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// One header field as received: name, value unfolded and trimmed, and the raw lines
/// (with folding whitespace and the final CRLF) as they were hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField {
    pub name: String,
    pub value: String,
    pub raw: String,
}

/// The header fields of `message` (CRLF or LF), in order; stops at the first empty line.
/// Lines that are neither fields nor continuations are skipped (the receiving side has
/// refused such messages already).
pub fn raw_fields(message: &[u8]) -> Vec<RawField> {
    let mut out: Vec<RawField> = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let content = text.trim_end_matches(['\r', '\n']);
        if content.is_empty() {
            break;
        }
        if content.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.raw.push_str(&text);
                last.value.push_str(content);
            }
            continue;
        }
        let Some((name, value)) = content.split_once(':') else {
            continue;
        };
        out.push(RawField {
            name: name.trim_end().to_string(),
            value: value.to_string(),
            raw: text.into_owned(),
        });
    }
    for f in &mut out {
        f.value = f.value.trim().to_string();
    }
    out
}

/// The topmost field `name` (TR-01201: the first occurrence counts).
pub fn field<'a>(fields: &'a [RawField], name: &str) -> Option<&'a RawField> {
    fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// A header field line (with CRLF); a non-ASCII value becomes RFC 2047 `B` words (UTF-8),
/// folded so no line exceeds 78 characters.
pub fn header(name: &str, value: &str) -> String {
    if value.is_ascii() && !value.contains(['\r', '\n']) {
        return format!("{name}: {value}\r\n");
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars().filter(|c| !matches!(c, '\r' | '\n')) {
        // 39 octets of UTF-8 -> 52 base64 characters + 12 of `=?UTF-8?B??=` = 64, which
        // leaves room for the field name on the first line.
        if chunk.len() + c.len_utf8() > 39 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(encoded_word(&chunk));
    }
    format!("{name}: {}\r\n", words.join("\r\n "))
}

fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64::encode_block(text.as_bytes()))
}

/// Base64 in lines of 76 characters, each ending in CRLF (RFC 2045 §6.8).
pub fn base64_lines(data: &[u8]) -> String {
    let b64 = base64::encode_block(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / 38 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// `len` random bytes as lower-case hex.
pub fn random_hex(len: usize) -> String {
    let mut buf = vec![0u8; len];
    // Without randomness the ids would still be unique through their counters.
    let _ = rand_bytes(&mut buf);
    hex::encode(buf)
}

pub fn rfc2822(t: OffsetDateTime) -> String {
    t.format(&Rfc2822).unwrap_or_default()
}

/// xs:dateTime in UTC, whole seconds.
pub fn xs_datetime(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `TT.MM.JJJJ hh:mm` as the TR's confirmation texts show dates (UTC, marked as such).
pub fn german_datetime(t: OffsetDateTime) -> String {
    format!(
        "{:02}.{:02}.{} {:02}:{:02} Uhr (UTC)",
        t.day(),
        u8::from(t.month()),
        t.year(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fields_keep_folding_and_unfold_values() {
        let m = b"From: a@b\r\nSubject: one\r\n two\r\nX-A:x\r\n\r\nBody: no\r\n";
        let f = raw_fields(m);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].name, "Subject");
        assert_eq!(f[1].value, "one two");
        assert_eq!(f[1].raw, "Subject: one\r\n two\r\n");
        assert_eq!(field(&f, "x-a").map(|f| f.value.as_str()), Some("x"));
    }

    #[test]
    fn encoded_subject_round_trips_through_mail_parser() {
        let subject = "*Versandbestätigung* ".to_string() + &"Bescheid über Wohngeld ".repeat(4);
        let h = header("Subject", &subject);
        assert!(h.is_ascii());
        assert!(h.lines().all(|l| l.len() <= 78), "{h}");
        let msg = format!("{h}\r\nx");
        let parsed = mail_parser::MessageParser::default()
            .parse(msg.as_bytes())
            .expect("parses");
        assert_eq!(parsed.subject(), Some(subject.as_str()));
        assert_eq!(header("Subject", "plain"), "Subject: plain\r\n");
    }

    #[test]
    fn dates() {
        let t = time::macros::datetime!(2026-11-23 13:05:09.5 UTC);
        assert_eq!(xs_datetime(t), "2026-11-23T13:05:09Z");
        assert_eq!(german_datetime(t), "23.11.2026 13:05 Uhr (UTC)");
        assert!(rfc2822(t).starts_with("Mon, 23 Nov 2026 13:05:09"));
    }
}
