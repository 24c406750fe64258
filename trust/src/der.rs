//! A small BER/DER reader: just enough ASN.1 for CMS SignedData, certificates and
//! qcStatements.
//!
//! BER is accepted where RFC 5652 lets senders use it (indefinite lengths, constructed OCTET
//! STRINGs), because real S/MIME clients (NSS, Thunderbird) emit it. Every length is checked
//! against the input and nesting is bounded, so hostile input costs at most a linear scan and
//! never panics.

use std::borrow::Cow;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Deeper nesting than this is refused (real CMS needs about 12 levels).
pub const MAX_DEPTH: usize = 48;

/// Identifier octets of the universal and context-specific tags we use.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const T61_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const VISIBLE_STRING: u8 = 0x1a;
    pub const UNIVERSAL_STRING: u8 = 0x1c;
    pub const BMP_STRING: u8 = 0x1e;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;

    /// `[n]` constructed (EXPLICIT tags and IMPLICIT SET/SEQUENCE).
    pub const fn ctx(n: u8) -> u8 {
        0xa0 | n
    }

    /// `[n]` primitive (IMPLICIT tags on primitive types).
    pub const fn ctx_prim(n: u8) -> u8 {
        0x80 | n
    }
}

/// Malformed ASN.1: what was wrong and where (byte offset in the outermost input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {offset})")]
pub struct DerError {
    pub offset: usize,
    pub what: String,
}

impl DerError {
    pub fn new(offset: usize, what: impl Into<String>) -> DerError {
        DerError {
            offset,
            what: what.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, DerError>;

/// One tag-length-value element, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// First identifier octet: class, constructed bit and (for tag numbers < 31) the number.
    pub ident: u8,
    /// The tag number (also for the multi-octet form).
    pub number: u32,
    /// The whole element: header, content and, for indefinite lengths, the end-of-contents.
    pub raw: &'a [u8],
    /// The content octets only.
    pub content: &'a [u8],
    /// Offset of `raw` in the outermost input, for error messages.
    pub offset: usize,
    content_offset: usize,
    depth: usize,
}

impl<'a> Tlv<'a> {
    pub fn is_constructed(&self) -> bool {
        self.ident & 0x20 != 0
    }

    /// A reader over the children of a constructed element.
    pub fn children(&self) -> Result<Reader<'a>> {
        if !self.is_constructed() {
            return Err(self.err("constructed value expected"));
        }
        Ok(Reader {
            data: self.content,
            pos: 0,
            base: self.content_offset,
            depth: self.depth + 1,
        })
    }

    pub fn err(&self, what: impl Into<String>) -> DerError {
        DerError::new(self.offset, what)
    }

    fn expect_ident(&self, ident: u8, what: &str) -> Result<()> {
        if self.ident == ident {
            Ok(())
        } else {
            Err(self.err(format!("{what} expected, found tag 0x{:02x}", self.ident)))
        }
    }

    /// Dotted form of an OBJECT IDENTIFIER.
    pub fn oid(&self) -> Result<String> {
        self.expect_ident(tag::OID, "OBJECT IDENTIFIER")?;
        decode_oid(self.content).ok_or_else(|| self.err("malformed OBJECT IDENTIFIER"))
    }

    /// Content octets of an INTEGER (two's complement, as encoded).
    pub fn integer_bytes(&self) -> Result<&'a [u8]> {
        self.expect_ident(tag::INTEGER, "INTEGER")?;
        if self.content.is_empty() {
            return Err(self.err("empty INTEGER"));
        }
        Ok(self.content)
    }

    /// A small non-negative INTEGER (versions, counts, years).
    pub fn small_uint(&self) -> Result<u64> {
        let bytes = self.integer_bytes()?;
        if bytes[0] & 0x80 != 0 {
            return Err(self.err("negative INTEGER where a count was expected"));
        }
        let bytes = match bytes {
            [0, rest @ ..] if !rest.is_empty() => rest,
            b => b,
        };
        if bytes.len() > 8 {
            return Err(self.err("INTEGER too large"));
        }
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    pub fn boolean(&self) -> Result<bool> {
        self.expect_ident(tag::BOOLEAN, "BOOLEAN")?;
        match self.content {
            [b] => Ok(*b != 0),
            _ => Err(self.err("BOOLEAN must be one octet")),
        }
    }

    /// OCTET STRING content, also in the BER constructed form (concatenated segments).
    /// `ident` is the expected tag of the primitive form (0x04, or an IMPLICIT `[n]`).
    pub fn octets_tagged(&self, ident: u8) -> Result<Cow<'a, [u8]>> {
        if self.ident == ident {
            return Ok(Cow::Borrowed(self.content));
        }
        if self.ident == ident | 0x20 {
            let mut out = Vec::with_capacity(self.content.len());
            self.collect_segments(&mut out)?;
            return Ok(Cow::Owned(out));
        }
        Err(self.err(format!(
            "OCTET STRING expected, found tag 0x{:02x}",
            self.ident
        )))
    }

    pub fn octets(&self) -> Result<Cow<'a, [u8]>> {
        self.octets_tagged(tag::OCTET_STRING)
    }

    fn collect_segments(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut r = self.children()?;
        while !r.is_empty() {
            let seg = r.read()?;
            match seg.ident {
                tag::OCTET_STRING => out.extend_from_slice(seg.content),
                0x24 => seg.collect_segments(out)?,
                other => {
                    return Err(seg.err(format!(
                        "segment of a constructed OCTET STRING has tag 0x{other:02x}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// BIT STRING content without the unused-bits octet, plus the number of unused bits.
    pub fn bit_string(&self) -> Result<(u8, &'a [u8])> {
        self.expect_ident(tag::BIT_STRING, "BIT STRING")?;
        match self.content {
            [unused, rest @ ..] if *unused < 8 && (!rest.is_empty() || *unused == 0) => {
                Ok((*unused, rest))
            }
            _ => Err(self.err("malformed BIT STRING")),
        }
    }

    /// UTCTime or GeneralizedTime.
    pub fn time(&self) -> Result<OffsetDateTime> {
        let text = std::str::from_utf8(self.content).map_err(|_| self.err("time is not ASCII"))?;
        let parsed = match self.ident {
            tag::UTC_TIME => parse_time(text, true),
            tag::GENERALIZED_TIME => parse_time(text, false),
            other => {
                return Err(self.err(format!(
                    "UTCTime or GeneralizedTime expected, found tag 0x{other:02x}"
                )));
            }
        };
        parsed.ok_or_else(|| self.err(format!("malformed time {text:?}")))
    }

    /// Directory and text strings as Rust strings (lossy for T.61, which is rare and legacy).
    pub fn string(&self) -> Result<String> {
        let c = self.content;
        match self.ident {
            tag::UTF8_STRING
            | tag::PRINTABLE_STRING
            | tag::IA5_STRING
            | tag::VISIBLE_STRING
            | tag::T61_STRING => Ok(String::from_utf8_lossy(c).into_owned()),
            tag::BMP_STRING => {
                if !c.len().is_multiple_of(2) {
                    return Err(self.err("BMPString of odd length"));
                }
                let units = c.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
                Ok(char::decode_utf16(units)
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect())
            }
            tag::UNIVERSAL_STRING => {
                if !c.len().is_multiple_of(4) {
                    return Err(self.err("UniversalString length not a multiple of 4"));
                }
                Ok(c.chunks_exact(4)
                    .map(|p| {
                        char::from_u32(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
                            .unwrap_or(char::REPLACEMENT_CHARACTER)
                    })
                    .collect())
            }
            other => Err(self.err(format!("string expected, found tag 0x{other:02x}"))),
        }
    }
}

/// Sequential reader over the elements of one level.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader {
            data,
            pos: 0,
            base: 0,
            depth: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Offset of the next element in the outermost input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn peek_ident(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub fn read(&mut self) -> Result<Tlv<'a>> {
        let tlv = parse_tlv(self.data, self.pos, self.base, self.depth)?;
        self.pos += tlv.raw.len();
        Ok(tlv)
    }

    /// The next element, which must carry `ident`; `what` names it in the error.
    pub fn expect(&mut self, ident: u8, what: &str) -> Result<Tlv<'a>> {
        match self.peek_ident() {
            Some(i) if i == ident => self.read(),
            Some(i) => Err(DerError::new(
                self.offset(),
                format!("{what} expected, found tag 0x{i:02x}"),
            )),
            None => Err(DerError::new(
                self.offset(),
                format!("{what} expected, input ends"),
            )),
        }
    }

    /// The next element if it carries `ident`.
    pub fn optional(&mut self, ident: u8) -> Result<Option<Tlv<'a>>> {
        if self.peek_ident() == Some(ident) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every remaining element.
    pub fn all(mut self) -> Result<Vec<Tlv<'a>>> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.read()?);
        }
        Ok(out)
    }

    /// Fails when elements are left over.
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DerError::new(
                self.offset(),
                format!("unexpected data after {what}"),
            ))
        }
    }
}

/// Parses exactly one element spanning all of `data`.
pub fn parse_single<'a>(data: &'a [u8], what: &str) -> Result<Tlv<'a>> {
    let mut r = Reader::new(data);
    let tlv = r.read()?;
    r.finish(what)?;
    Ok(tlv)
}

fn parse_tlv<'a>(data: &'a [u8], start: usize, base: usize, depth: usize) -> Result<Tlv<'a>> {
    let err = |at: usize, what: &str| DerError::new(base + at, what);
    if depth > MAX_DEPTH {
        return Err(err(start, "ASN.1 nested too deeply"));
    }
    let ident = *data
        .get(start)
        .ok_or_else(|| err(start, "truncated: tag expected"))?;
    let mut p = start + 1;
    let mut number = u32::from(ident & 0x1f);
    if number == 0x1f {
        number = 0;
        for i in 0.. {
            let b = *data
                .get(p)
                .ok_or_else(|| err(p, "truncated in a multi-octet tag"))?;
            p += 1;
            if i == 4 {
                return Err(err(start, "tag number too large"));
            }
            number = (number << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let first = *data
        .get(p)
        .ok_or_else(|| err(p, "truncated: length expected"))?;
    p += 1;
    let (content_end, end) = match first {
        0x00..=0x7f => {
            let end = p + usize::from(first);
            (end, end)
        }
        0x80 => {
            if ident & 0x20 == 0 {
                return Err(err(start, "indefinite length on a primitive value"));
            }
            let mut q = p;
            loop {
                match data.get(q..q + 2) {
                    Some([0, 0]) => break (q, q + 2),
                    Some(_) => {
                        let child = parse_tlv(data, q, base, depth + 1)?;
                        q += child.raw.len();
                    }
                    None => return Err(err(start, "indefinite length without end-of-contents")),
                }
            }
        }
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let bytes = data
                .get(p..p + n)
                .ok_or_else(|| err(p, "truncated in a length"))?;
            p += n;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            let end = p
                .checked_add(len)
                .ok_or_else(|| err(start, "length overflows"))?;
            (end, end)
        }
        _ => return Err(err(p - 1, "unsupported length form")),
    };
    if end > data.len() {
        return Err(err(
            start,
            &format!(
                "truncated: element needs {} bytes, {} left",
                end - start,
                data.len() - start
            ),
        ));
    }
    Ok(Tlv {
        ident,
        number,
        raw: &data[start..end],
        content: &data[p..content_end],
        offset: base + start,
        content_offset: base + p,
        depth,
    })
}

/// Dotted decimal form of OBJECT IDENTIFIER content octets.
pub fn decode_oid(content: &[u8]) -> Option<String> {
    if content.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut len = 0;
    for &b in content {
        if len == 0 && b == 0x80 {
            return None; // non-minimal encoding
        }
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        len += 1;
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
            len = 0;
        }
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut s = format!("{a}.{b}");
    for arc in &arcs[1..] {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Some(s)
}

/// Encodes one TLV with a definite (DER) length.
pub fn encode(ident: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(ident);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// UTCTime (`YYMMDDhhmm[ss]` + zone) or GeneralizedTime (`YYYYMMDDhh[mm[ss[.f]]]` + zone).
/// The zone is `Z`, `+hhmm` or `-hhmm`; GeneralizedTime may omit it (taken as UTC).
fn parse_time(text: &str, utc_time: bool) -> Option<OffsetDateTime> {
    let (year, rest) = if utc_time {
        let (yy, rest) = digits(text, 2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
    } else {
        digits(text, 4)?
    };
    let (month, rest) = digits(rest, 2)?;
    let (day, rest) = digits(rest, 2)?;
    let (hour, rest) = digits(rest, 2)?;
    let (minute, rest) = digits(rest, 2).unwrap_or((0, rest));
    let (second, mut rest) = digits(rest, 2).unwrap_or((0, rest));
    let mut nanos = 0u32;
    if !utc_time && (rest.starts_with('.') || rest.starts_with(',')) {
        let frac: String = rest[1..].chars().take_while(char::is_ascii_digit).collect();
        if frac.is_empty() {
            return None;
        }
        let scaled: String = frac.chars().chain("000000000".chars()).take(9).collect();
        nanos = scaled.parse().ok()?;
        rest = &rest[1 + frac.len()..];
    }
    let offset = match rest {
        "Z" => UtcOffset::UTC,
        "" if !utc_time => UtcOffset::UTC,
        _ => {
            let sign: i8 = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, r) = digits(&rest[1..], 2)?;
            let (om, r) = digits(r, 2)?;
            if !r.is_empty() {
                return None;
            }
            UtcOffset::from_hms(
                sign * i8::try_from(oh).ok()?,
                sign * i8::try_from(om).ok()?,
                0,
            )
            .ok()?
        }
    };
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite_lengths() {
        // SEQUENCE (indefinite) { INTEGER 5, OCTET STRING (constructed, indefinite) {"ab","c"} }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c',
            0x00, 0x00, 0x00, 0x00,
        ];
        let seq = parse_single(&ber, "test").unwrap();
        assert_eq!(seq.raw.len(), ber.len());
        let mut r = seq.children().unwrap();
        assert_eq!(r.read().unwrap().small_uint().unwrap(), 5);
        assert_eq!(&*r.read().unwrap().octets().unwrap(), b"abc");
        assert!(r.is_empty());
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let der = [0x30, 0x05, 0x02, 0x01, 0x05, 0x05, 0x00];
        assert!(parse_single(&der, "x").is_ok());
        for cut in 0..der.len() {
            assert!(parse_single(&der[..cut], "x").is_err(), "cut {cut}");
        }
        // indefinite length on a primitive, length form 0x85, missing EOC
        assert!(parse_single(&[0x04, 0x80, 0, 0], "x").is_err());
        assert!(parse_single(&[0x04, 0x85, 0, 0, 0, 0, 1, 0], "x").is_err());
        assert!(parse_single(&[0x30, 0x80, 0x05, 0x00], "x").is_err());
        let outer = parse_single(&[0x30, 0x03, 0x02, 0x05, 0x01], "x").unwrap();
        let e = outer.children().unwrap().read().unwrap_err();
        assert!(e.to_string().contains("at byte 2"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_without_stack_overflow() {
        let mut ber = Vec::new();
        for _ in 0..10_000 {
            ber.extend_from_slice(&[0x30, 0x80]);
        }
        let e = parse_single(&ber, "x").unwrap_err();
        assert!(e.what.contains("deeply"), "{e}");
    }

    #[test]
    fn oids() {
        assert_eq!(
            decode_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]).unwrap(),
            "1.2.840.113549.1.7.2"
        );
        assert_eq!(
            decode_oid(&[0x04, 0x00, 0x8e, 0x46, 0x01, 0x01]).unwrap(),
            "0.4.0.1862.1.1"
        );
        assert_eq!(decode_oid(&[0x88, 0x37, 0x03]).unwrap(), "2.999.3");
        assert!(decode_oid(&[]).is_none());
        assert!(decode_oid(&[0x2a, 0x86]).is_none());
        assert!(decode_oid(&[0x2a, 0x80, 0x01]).is_none());
    }

    #[test]
    fn times() {
        let t = parse_time("141113103420Z", true).unwrap();
        assert_eq!(t.unix_timestamp(), 1_415_874_860);
        assert_eq!(parse_time("500101000000Z", true).unwrap().year(), 1950);
        let g = parse_time("20141113113420.5+0100", false).unwrap();
        assert_eq!(g.unix_timestamp(), 1_415_874_860);
        assert_eq!(g.nanosecond(), 500_000_000);
        assert!(parse_time("20141313103420Z", false).is_none());
        assert!(parse_time("1411131034", true).is_none());
        assert!(parse_time("141113103420Zx", true).is_none());
    }

    #[test]
    fn encode_lengths() {
        assert_eq!(encode(0x04, b"ab"), vec![0x04, 2, b'a', b'b']);
        let long = vec![0u8; 300];
        let e = encode(0x30, &long);
        assert_eq!(&e[..4], &[0x30, 0x82, 0x01, 0x2c]);
        let back = parse_single(&e, "x").unwrap();
        assert_eq!(back.content.len(), 300);
    }
}
