//! SEARCH keys evaluated the way Dovecot 2.3's `index-search.c` and `message-search.c` do:
//! header keys on the message's own header (addresses normalized, MIME words decoded),
//! BODY/TEXT on the decoded text parts, strings compared after Unicode decomposition and case
//! folding, dates as wall-clock dates in the zone they were written in.

use crate::sequence;
use imap_codec::imap_types::search::SearchKey;
use unicode_normalization::UnicodeNormalization;

use super::binary;
use super::header::{self, is_lwsp};
use super::parse::{F_MULTIPART, Part};
use super::rfc822::Parser;
use super::{Rendered, SearchContext, address};

pub(crate) fn matches(key: &SearchKey<'_>, ctx: &SearchContext, msg: &Rendered<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, ctx, msg)),
        SearchKey::Or(a, b) => matches(a, ctx, msg) || matches(b, ctx, msg),
        SearchKey::Not(k) => !matches(k, ctx, msg),
        SearchKey::All => true,
        SearchKey::SequenceSet(set) => sequence::contains(set, ctx.seq, ctx.max_seq),
        SearchKey::Uid(set) => sequence::contains(set, ctx.uid, ctx.max_uid),
        SearchKey::Seen => ctx.seen,
        SearchKey::Unseen => !ctx.seen,
        SearchKey::Flagged => ctx.flagged,
        SearchKey::Unflagged => !ctx.flagged,
        // The proxy keeps only \Seen and \Flagged, no keywords and no \Recent.
        SearchKey::Answered | SearchKey::Deleted | SearchKey::Draft | SearchKey::Keyword(_) => {
            false
        }
        SearchKey::Unanswered
        | SearchKey::Undeleted
        | SearchKey::Undraft
        | SearchKey::Unkeyword(_)
        | SearchKey::Old => true,
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Since(d) => internal_day(ctx) >= day_number(d.as_ref()),
        SearchKey::Before(d) => internal_day(ctx) < day_number(d.as_ref()),
        SearchKey::On(d) => internal_day(ctx) == day_number(d.as_ref()),
        SearchKey::SentSince(d) => sent_day(msg) >= day_number(d.as_ref()),
        SearchKey::SentBefore(d) => sent_day(msg) < day_number(d.as_ref()),
        SearchKey::SentOn(d) => sent_day(msg) == day_number(d.as_ref()),
        SearchKey::Larger(n) => msg.size() > u64::from(*n),
        SearchKey::Smaller(n) => msg.size() < u64::from(*n),
        SearchKey::From(s) => header_match(msg, b"from", s.as_ref(), Kind::Address),
        SearchKey::To(s) => header_match(msg, b"to", s.as_ref(), Kind::Address),
        SearchKey::Cc(s) => header_match(msg, b"cc", s.as_ref(), Kind::Address),
        SearchKey::Bcc(s) => header_match(msg, b"bcc", s.as_ref(), Kind::Address),
        SearchKey::Subject(s) => header_match(msg, b"subject", s.as_ref(), Kind::CompressLwsp),
        SearchKey::Header(name, s) => header_match(msg, name.as_ref(), s.as_ref(), Kind::Plain),
        SearchKey::Body(s) => text_match(msg, s.as_ref(), false),
        SearchKey::Text(s) => text_match(msg, s.as_ref(), true),
        SearchKey::ModSequence { modseq, .. } => ctx.modseq >= *modseq,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn day_number(d: &chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    days_from_civil(i64::from(d.year()), d.month(), d.day())
}

/// The internal date's day in its own zone (Dovecot: in the zone it shows INTERNALDATE in).
fn internal_day(ctx: &SearchContext) -> i64 {
    let t = ctx.internal_date;
    days_from_civil(i64::from(t.year()), t.month() as u32, u32::from(t.day()))
}

/// The Date: field's day as written (its own zone); like Dovecot, 1970-01-01 when the field is
/// absent or unparsable (so SENTBEFORE matches such messages).
fn sent_day(msg: &Rendered<'_>) -> i64 {
    let (fields, _) = header::fields(msg.bytes, 0);
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(b"date"))
        .and_then(|f| parse_date(&f.value))
        .unwrap_or(0)
}

/// RFC 5322 (and RFC 822) dates as `message_date_parse` reads them: (day number, as written).
fn parse_date(v: &[u8]) -> Option<i64> {
    // Tokens without comments, split at white space and commas.
    let mut clean = Vec::new();
    let mut p = Parser::new(v);
    loop {
        if p.skip_lwsp() <= 0 {
            break;
        }
        let c = p.cur();
        if c == b'(' {
            continue;
        }
        clean.push(c);
        p.pos += 1;
        if matches!(p.cur(), b' ' | b'\t' | b'\r' | b'\n' | b'(') {
            clean.push(b' ');
        }
    }
    let s = String::from_utf8_lossy(&clean).replace(',', " ");
    let mut tok: Vec<&str> = s.split_whitespace().collect();
    if tok
        .first()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
    {
        tok.remove(0);
    }
    if tok.len() < 4 {
        return None;
    }
    let day: u32 = tok[0].parse().ok().filter(|d| (1..=31).contains(d))?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mon = MONTHS
        .iter()
        .position(|m| tok[1].len() >= 3 && tok[1][..3].eq_ignore_ascii_case(m))?
        as u32
        + 1;
    let mut year: i64 = tok[2].parse().ok()?;
    if tok[2].len() == 2 {
        year += if year < 70 { 2000 } else { 1900 };
    } else if tok[2].len() != 4 {
        return None;
    }
    let hms: Vec<&str> = tok[3].split(':').collect();
    if hms.len() < 2
        || hms
            .iter()
            .any(|x| x.is_empty() || !x.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    Some(days_from_civil(year, mon, day))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Address,
    CompressLwsp,
}

/// Dovecot's normalizer (decomposed titlecase): NFKD, then a simple per-character case map.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        let mut up = c.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None) => out.push(u),
            _ => out.push(c),
        }
    }
    out
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.contains(needle)
}

/// A value of a header field as the search header parser (CLEAN_ONELINE) gives it: one LWSP
/// after the colon skipped, folds joined without line breaks, a tab starting a fold a space.
fn oneline_value(b: &[u8], f: &header::Field) -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = f.start;
    let mut first = true;
    while p < f.end {
        let (cend, end, _) = header::line_at(b, p);
        let line = &b[p..cend];
        if first {
            first = false;
            if let Some(colon) = line
                .iter()
                .position(|&c| c == b':')
                .filter(|_| !f.name.is_empty())
            {
                let v = &line[colon + 1..];
                let skip = usize::from(v.first().is_some_and(|&c| is_lwsp(c)));
                out.extend_from_slice(&v[skip..]);
            } else {
                out.extend_from_slice(line);
            }
        } else if line.first() == Some(&b'\t') {
            out.push(b' ');
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
        p = end;
    }
    out
}

fn header_match(msg: &Rendered<'_>, name: &[u8], key: &[u8], kind: Kind) -> bool {
    let b = msg.bytes;
    let (fields, _) = header::fields(b, 0);
    let needle = normalize(&String::from_utf8_lossy(key));
    fields
        .iter()
        .filter(|f| !f.name.is_empty() && f.name.eq_ignore_ascii_case(name))
        .any(|f| {
            if key.is_empty() {
                return true;
            }
            let raw = oneline_value(b, f);
            let value = match kind {
                Kind::Plain => raw,
                Kind::Address => address::write(&address::parse(&raw)),
                Kind::CompressLwsp => {
                    let mut out = Vec::with_capacity(raw.len());
                    let mut prev = true;
                    for &c in &raw {
                        if is_lwsp(c) {
                            if !prev {
                                out.push(b' ');
                                prev = true;
                            }
                        } else {
                            prev = false;
                            out.push(c);
                        }
                    }
                    out
                }
            };
            let mut text = decode_words(&value);
            text.push_str("\r\n");
            contains(&normalize(&text), &needle)
        })
}

fn text_match(msg: &Rendered<'_>, key: &[u8], headers: bool) -> bool {
    if key.is_empty() {
        return true;
    }
    let needle = normalize(&String::from_utf8_lossy(key));
    if needle.is_empty() {
        return false;
    }
    let b = msg.bytes;
    let parts = msg.parts();
    parts.iter().any(|p| {
        let mut text = String::new();
        let (fields, _) = header::fields(&b[..p.body_start().min(b.len())], p.pos);
        let mut ctype_text = true;
        let mut charset: Option<Vec<u8>> = None;
        let mut cte = Vec::new();
        for f in &fields {
            if f.name.eq_ignore_ascii_case(b"content-type") {
                let mut pp = Parser::new(&f.value);
                pp.skip_lwsp();
                let mut ct = Vec::new();
                let _ = pp.parse_content_type(&mut ct);
                ctype_text = ct.len() >= 5 && ct[..5].eq_ignore_ascii_case(b"text/")
                    || ct.len() >= 8 && ct[..8].eq_ignore_ascii_case(b"message/");
                for (k, v) in pp.parse_rfc2231() {
                    if k.eq_ignore_ascii_case(b"charset") {
                        charset = Some(v);
                    }
                }
            } else if f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                cte = f.value.trim_ascii().to_ascii_lowercase();
            }
            if headers {
                text.push_str(&String::from_utf8_lossy(&f.name));
                if !f.name.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&decode_words(&oneline_value(b, f)));
                text.push_str("\r\n");
            }
        }
        if ctype_text && !p.is(F_MULTIPART) && p.children.is_empty() {
            text.push_str(&decoded_body(b, p, &cte, charset.as_deref()));
        }
        contains(&normalize(&text), &needle)
    })
}

fn decoded_body(b: &[u8], p: &Part, cte: &[u8], charset: Option<&[u8]>) -> String {
    let body = &b[p.body_start().min(b.len())..p.end().min(b.len())];
    let mut data = Vec::new();
    match cte {
        b"base64" => {
            let _ = binary::base64(body, &mut data);
        }
        b"quoted-printable" => {
            let _ = binary::quoted_printable(body, &mut data, true);
        }
        _ => data.extend_from_slice(body),
    }
    to_utf8(&data, charset.unwrap_or(b"us-ascii"))
}

/// Bytes in a charset as text (the charsets clerks' mail uses; others as UTF-8).
fn to_utf8(data: &[u8], charset: &[u8]) -> String {
    let cs = charset.to_ascii_lowercase();
    match cs.as_slice() {
        b"iso-8859-1" | b"latin1" | b"iso8859-1" | b"windows-1252" | b"cp1252" | b"iso-8859-15" => {
            data.iter().map(|&c| c as char).collect()
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

/// RFC 2047 words decoded to UTF-8 (Dovecot's `message_header_decode_utf8`): white space
/// between two encoded words dropped, undecodable words left as written. The one decoder the
/// gateway has (the tag rules use it too).
pub(crate) fn decode_words(v: &[u8]) -> String {
    demail_policy::decode_encoded_words(&String::from_utf8_lossy(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_decode() {
        assert_eq!(
            decode_words(b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?IHVuZA==?= x"),
            "Grüße und x"
        );
        assert_eq!(decode_words(b"a =?ISO-8859-1?Q?J=F6rg?= b"), "a Jörg b");
        assert_eq!(decode_words(b"=?bogus"), "=?bogus");
    }

    #[test]
    fn dates_parse() {
        let d = |s: &str| parse_date(s.as_bytes());
        assert_eq!(
            d("Thu, 03 Dec 2026 10:00:00 +0100"),
            Some(days_from_civil(2026, 12, 3))
        );
        assert_eq!(
            d("2 Dec 2026 23:30:00 -0500"),
            Some(days_from_civil(2026, 12, 2))
        );
        assert_eq!(
            d("Tue, 31 Oct 2000 12:00:52 -0600 (Central Standard Time)"),
            Some(days_from_civil(2000, 10, 31))
        );
        assert_eq!(d("garbage"), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn normalizing_folds_case_and_accents() {
        assert_eq!(normalize("Grüße"), normalize("GRÜßE"));
        assert!(normalize("Müller").contains(&normalize("mu")));
    }
}
