//! `simple` canonicalisation (RFC 6376 §3.4.1, §3.4.3) and the data that is hashed and
//! signed (§3.7), shared by signing and verification.

use super::header::{Field, Message};

/// The body with all empty lines at its end removed and exactly one CRLF after the last
/// line (an empty body becomes a single CRLF).
pub fn body(body: &[u8]) -> Vec<u8> {
    let mut end = body.len();
    while end >= 2 && &body[end - 2..end] == b"\r\n" {
        end -= 2;
    }
    let mut out = Vec::with_capacity(end + 2);
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(b"\r\n");
    out
}

/// The header hash input: the topmost field of each name in `h=` order, unchanged with its
/// CRLF (a listed name that is absent contributes nothing), then the integrity field itself
/// with the b= value emptied and without its final CRLF.
pub fn header_input(msg: &Message<'_>, names: &[String], integrity_stripped: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        if let Some(f) = msg.topmost(name) {
            out.extend_from_slice(f.raw);
        }
    }
    out.extend_from_slice(integrity_stripped);
    out
}

/// The integrity field without its final CRLF and with `b_value` (a range inside the field
/// value) removed.
pub fn strip_b(field: &Field<'_>, b_value: std::ops::Range<usize>) -> Vec<u8> {
    let start = field.value_start + b_value.start;
    let end = field.value_start + b_value.end;
    let mut out = Vec::with_capacity(field.value_end);
    out.extend_from_slice(&field.raw[..start]);
    out.extend_from_slice(&field.raw[end..field.value_end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_body() {
        assert_eq!(body(b""), b"\r\n");
        assert_eq!(body(b"\r\n\r\n"), b"\r\n");
        assert_eq!(body(b"a"), b"a\r\n");
        assert_eq!(body(b"a\r\n\r\n\r\n"), b"a\r\n");
        assert_eq!(body(b" a \r\n\r\nb\r\n"), b" a \r\n\r\nb\r\n");
        // Trailing white space on the last line is not an empty line in `simple`.
        assert_eq!(body(b"a\r\n \r\n"), b"a\r\n \r\n");
    }
}
