//! Content-Transfer-Encoding decoding and the RFC 8551 canonical form, on raw bytes.
//!
//! We decode ourselves rather than take mail-parser's decoded bodies: those are charset-
//! converted for text parts (a signed Latin-1 attachment would no longer match its hash), and
//! 0.11 drops a final unpadded base64 quantum.

use std::borrow::Cow;

/// Sextet values of the base64 alphabet; `SKIP` for whitespace, `PAD` for `=`, `BAD` else.
const SKIP: u8 = 0x80;
const PAD: u8 = 0x81;
const BAD: u8 = 0xff;
const BASE64: [u8; 256] = {
    let mut t = [BAD; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b' ' as usize] = SKIP;
    t[b'\t' as usize] = SKIP;
    t[b'\r' as usize] = SKIP;
    t[b'\n' as usize] = SKIP;
    t[b'=' as usize] = PAD;
    t
};

/// Decodes base64, skipping whitespace and line breaks; `None` on any other foreign byte.
/// A dangling final sextet (a truncated or junk character) is dropped, as OpenSSL and most
/// MIME decoders do: it cannot carry a whole byte.
pub fn base64(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    let mut i = 0;
    while i < input.len() {
        // Whole quadruples of alphabet characters on a byte boundary (nearly all of a body
        // in 76-character lines) decode four at a time; anything else takes the step below.
        if bits == 0 && !padding {
            while let Some(q) = input.get(i..i + 4) {
                let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(|x| BASE64[x as usize]);
                if (a | b | c | d) >= 64 {
                    break;
                }
                let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
                out.extend_from_slice(&v.to_be_bytes()[1..]);
                i += 4;
            }
            if i >= input.len() {
                break;
            }
        }
        let v = BASE64[input[i] as usize];
        i += 1;
        match v {
            SKIP => continue,
            PAD => {
                padding = true;
                continue;
            }
            BAD => return None,
            _ if padding => return None, // data after padding
            _ => {}
        }
        push_sextet(&mut out, &mut acc, &mut bits, v);
    }
    Some(out)
}

/// Adds one sextet to the bit accumulator and emits a byte once 8 bits are there.
fn push_sextet(out: &mut Vec<u8>, acc: &mut u32, bits: &mut u32, v: u8) {
    *acc = (*acc << 6) | u32::from(v);
    *bits += 6;
    if *bits >= 8 {
        *bits -= 8;
        out.push((*acc >> *bits) as u8);
        *acc &= (1 << *bits) - 1;
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7): `=XX`, soft line breaks, and a lone `=` kept
/// as is (lenient, like most clients).
pub fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        match (input.get(i + 1), input.get(i + 2)) {
            (Some(b'\r'), Some(b'\n')) => i += 3,
            (Some(b'\n'), _) => i += 2,
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(*h) << 4 | hex(*l));
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Decodes a body by its Content-Transfer-Encoding (7bit/8bit/binary/unknown: as is).
pub fn decode(body: &[u8], encoding: Option<&str>) -> Option<Vec<u8>> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => base64(body),
        Some("quoted-printable") => Some(quoted_printable(body)),
        _ => Some(body.to_vec()),
    }
}

/// RFC 8551 §3.1.1: the signed form of a MIME entity has CRLF line ends. Mail stored with
/// bare LF (mbox, `.eml` files) is turned back into that form; CRLF stays CRLF (borrowed).
pub fn canonical_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    // memchr jumps from line end to line end (SIMD); mail from SMTP is CRLF already, so
    // usually no bare LF turns up and the input is returned as is, without a copy.
    let mut bare = memchr::memchr_iter(b'\n', data)
        .filter(|&nl| nl.checked_sub(1).and_then(|p| data.get(p)) != Some(&b'\r'));
    let Some(first) = bare.next() else {
        return Cow::Borrowed(data);
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut copied = 0;
    for nl in std::iter::once(first).chain(bare) {
        out.extend_from_slice(&data[copied..nl]);
        out.extend_from_slice(b"\r\n");
        copied = nl + 1;
    }
    out.extend_from_slice(&data[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_cases() {
        assert_eq!(base64(b"aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(base64(b"aGVsbG8").unwrap(), b"hello"); // unpadded final quantum kept
        assert_eq!(base64(b"").unwrap(), b"");
        assert!(base64(b"aGVs*bG8=").is_none());
        assert!(base64(b"aGVsbG8=x").is_none());
        assert_eq!(base64(b"aGVsx").unwrap(), b"hel"); // dangling sextet dropped
    }

    /// The plain one-character-at-a-time definition the fast path must agree with.
    fn base64_reference(input: &[u8]) -> Option<Vec<u8>> {
        let (mut out, mut acc, mut bits, mut padding) = (Vec::new(), 0u32, 0u32, false);
        for &c in input {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    padding = true;
                    continue;
                }
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                _ => return None,
            };
            if padding {
                return None;
            }
            push_sextet(&mut out, &mut acc, &mut bits, v);
        }
        Some(out)
    }

    /// Random strings over base64, whitespace, padding and a foreign byte, against the plain
    /// definition (xorshift, fixed seed: the same cases every run).
    #[test]
    fn base64_matches_reference() {
        let alphabet = b"AQgw+/9z\r\n \t=*";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly alphabet characters, so that whole quadruples occur.
                let k = (x >> 32) as usize % 64;
                input.push(if k < 48 {
                    alphabet[k % 8]
                } else {
                    alphabet[k % alphabet.len()]
                });
            }
            assert_eq!(base64(&input), base64_reference(&input), "input {input:?}");
        }
        let long = openssl::base64::encode_block(&[7u8; 3000]);
        assert_eq!(base64(long.as_bytes()).unwrap(), vec![7u8; 3000]);
    }

    #[test]
    fn qp_cases() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc=\nd"), b"a=bcd");
        assert_eq!(quoted_printable(b"100% =zz ="), b"100% =zz =");
    }

    #[test]
    fn crlf() {
        assert_eq!(&*canonical_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(&*canonical_crlf(b"\n\nx"), b"\r\n\r\nx");
        assert_eq!(&*canonical_crlf(b"\r\r\nx\r"), b"\r\r\nx\r");
        assert!(matches!(canonical_crlf(b"a\r\nb"), Cow::Borrowed(_)));
        assert!(matches!(canonical_crlf(b""), Cow::Borrowed(_)));
        assert!(matches!(canonical_crlf(b"\r"), Cow::Borrowed(_)));
    }

    /// Every string of up to 7 bytes over {CR, LF, 'a'} against the plain definition: each
    /// LF not preceded by CR becomes CRLF, nothing else changes.
    #[test]
    fn crlf_exhaustive() {
        let alphabet = [b'\r', b'\n', b'a'];
        for len in 0..=7u32 {
            for mut n in 0..3usize.pow(len) {
                let mut input = Vec::new();
                for _ in 0..len {
                    input.push(alphabet[n % 3]);
                    n /= 3;
                }
                let mut expected = Vec::new();
                for (i, &c) in input.iter().enumerate() {
                    if c == b'\n' && (i == 0 || input[i - 1] != b'\r') {
                        expected.push(b'\r');
                    }
                    expected.push(c);
                }
                let got = canonical_crlf(&input);
                assert_eq!(&*got, &expected[..], "input {input:?}");
                assert_eq!(matches!(got, Cow::Borrowed(_)), expected == input);
            }
        }
    }
}
