//! Content-transfer-encoding decoders with Dovecot 2.3's acceptance rules (`base64.c`,
//! `qp-decoder.c`), for BINARY[] and for searching decoded text.

/// Why decoding failed: Dovecot answers InvalidData with `NO [PARSE]`, Truncated (the data
/// ends inside a quantum or an escape) as a server error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    InvalidData,
    Truncated,
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn is_empty(c: u8) -> bool {
    matches!(c, b'\n' | b'\r' | b' ' | b'\t')
}

/// `base64_decode_more` + `base64_decode_finish` without flags.
pub(crate) fn base64(src: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut sub = 0u8;
    let mut buf = 0u8;
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        match b64_value(c) {
            Some(v) => {
                match sub {
                    0 => {
                        buf = v;
                        sub = 1;
                    }
                    1 => {
                        out.push((buf << 2) | (v >> 4));
                        buf = v;
                        sub = 2;
                    }
                    2 => {
                        out.push((buf << 4) | (v >> 2));
                        buf = v;
                        sub = 3;
                    }
                    _ => {
                        out.push(((buf << 6) & 0xc0) | v);
                        sub = 0;
                    }
                }
                i += 1;
            }
            None if is_empty(c) => i += 1,
            None => {
                // The end: padding must complete the quantum, then only whitespace.
                let need = match sub {
                    2 => 2,
                    3 => 1,
                    _ => return Err(DecodeError::InvalidData),
                };
                let mut seen = 0;
                while i < src.len() && seen < need {
                    if src[i] == b'=' {
                        seen += 1;
                    } else if !(seen > 0 && is_empty(src[i])) {
                        return Err(DecodeError::InvalidData);
                    }
                    i += 1;
                }
                if seen < need {
                    return Err(DecodeError::Truncated);
                }
                if src[i..].iter().all(|&c| is_empty(c)) {
                    return Ok(());
                }
                return Err(DecodeError::InvalidData);
            }
        }
    }
    if sub == 0 {
        Ok(())
    } else {
        Err(DecodeError::Truncated)
    }
}

const QP_MAX_WHITESPACE_LEN: usize = 76;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Qp {
    Text,
    Whitespace,
    Equals,
    EqualsWhitespace,
    Hex2(u8),
    Cr,
    SoftCr,
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Dovecot's `qp_decoder_more` + `qp_decoder_finish`: trailing whitespace dropped, line ends
/// made CRLF. Invalid sequences are kept as they were (`lenient`, for searching) or fail.
pub(crate) fn quoted_printable(
    src: &[u8],
    out: &mut Vec<u8>,
    lenient: bool,
) -> Result<(), DecodeError> {
    let mut st = Qp::Text;
    let mut ws: Vec<u8> = Vec::new();
    let mut error = false;
    let invalid = |st: Qp, ws: &mut Vec<u8>, out: &mut Vec<u8>| match st {
        Qp::Equals => out.push(b'='),
        Qp::Hex2(h) => {
            out.push(b'=');
            out.push(h);
        }
        Qp::EqualsWhitespace => {
            out.push(b'=');
            out.append(ws);
        }
        Qp::Cr => {
            out.append(ws);
            out.push(b'\r');
        }
        Qp::SoftCr => {
            out.push(b'=');
            out.append(ws);
            out.push(b'\r');
        }
        Qp::Text | Qp::Whitespace => {}
    };
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        match st {
            Qp::Text => {
                match c {
                    b'=' => st = Qp::Equals,
                    b'\r' => st = Qp::Cr,
                    b'\n' => out.extend_from_slice(b"\r\n"),
                    b' ' | b'\t' => {
                        st = Qp::Whitespace;
                        ws.push(c);
                    }
                    _ => out.push(c),
                }
                i += 1;
                continue;
            }
            Qp::Whitespace => {
                if c == b' ' || c == b'\t' {
                    if ws.len() <= QP_MAX_WHITESPACE_LEN {
                        ws.push(c);
                    }
                } else if c == b'\r' {
                    st = Qp::Cr;
                } else if c == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    ws.clear();
                    st = Qp::Text;
                } else {
                    if ws.len() > QP_MAX_WHITESPACE_LEN {
                        error = true;
                    }
                    out.append(&mut ws);
                    st = Qp::Text;
                    continue;
                }
            }
            Qp::Equals => {
                if hex(c).is_some() {
                    st = Qp::Hex2(c);
                } else if c == b' ' || c == b'\t' {
                    ws.push(c);
                    st = Qp::EqualsWhitespace;
                } else if c == b'\r' {
                    st = Qp::SoftCr;
                } else if c == b'\n' {
                    st = Qp::Text;
                } else {
                    invalid(st, &mut ws, out);
                    st = Qp::Text;
                    error = true;
                    continue;
                }
            }
            Qp::Hex2(h) => {
                if let (Some(a), Some(b)) = (hex(h), hex(c)) {
                    out.push(a << 4 | b);
                    st = Qp::Text;
                } else {
                    invalid(st, &mut ws, out);
                    st = Qp::Text;
                    error = true;
                    continue;
                }
            }
            Qp::EqualsWhitespace => {
                if c == b' ' || c == b'\t' {
                    if ws.len() <= QP_MAX_WHITESPACE_LEN {
                        ws.push(c);
                    }
                } else if c == b'\r' {
                    st = Qp::SoftCr;
                } else if c == b'\n' {
                    ws.clear();
                    st = Qp::Text;
                } else {
                    invalid(st, &mut ws, out);
                    st = Qp::Text;
                    error = true;
                    continue;
                }
            }
            Qp::Cr | Qp::SoftCr => {
                if c == b'\n' {
                    ws.clear();
                    if st != Qp::SoftCr {
                        out.extend_from_slice(b"\r\n");
                    }
                    st = Qp::Text;
                } else {
                    invalid(st, &mut ws, out);
                    st = Qp::Text;
                    error = true;
                    continue;
                }
            }
        }
        i += 1;
    }
    if error && !lenient {
        return Err(DecodeError::InvalidData);
    }
    match st {
        Qp::Text | Qp::Whitespace => Ok(()),
        _ => {
            invalid(st, &mut ws, out);
            if lenient {
                Ok(())
            } else {
                Err(DecodeError::Truncated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Result<Vec<u8>, DecodeError> {
        let mut v = Vec::new();
        base64(s.as_bytes(), &mut v).map(|_| v)
    }

    fn qp(s: &str) -> Result<Vec<u8>, DecodeError> {
        let mut v = Vec::new();
        quoted_printable(s.as_bytes(), &mut v, false).map(|_| v)
    }

    #[test]
    fn base64_rules() {
        assert_eq!(b64("SGVsbG8=\r\n").unwrap(), b"Hello");
        assert_eq!(b64("SGVs\r\nbG8h").unwrap(), b"Hello!");
        assert_eq!(b64("SGVsbA==").unwrap(), b"Hell");
        assert_eq!(b64("SGVsbA= =\r\n").unwrap(), b"Hell");
        assert_eq!(b64("SGVsbA"), Err(DecodeError::Truncated));
        assert_eq!(b64("SGV-sbA=="), Err(DecodeError::InvalidData));
        assert_eq!(b64("SGVsbA==x"), Err(DecodeError::InvalidData));
        assert_eq!(b64("").unwrap(), b"");
    }

    #[test]
    fn qp_rules() {
        assert_eq!(qp("a=3Db  \r\nc=\r\nd").unwrap(), b"a=b\r\ncd");
        assert_eq!(qp("x\ny").unwrap(), b"x\r\ny");
        assert_eq!(qp("bad=ZZ"), Err(DecodeError::InvalidData));
        assert_eq!(qp("end="), Err(DecodeError::Truncated));
        assert_eq!(qp("trail   ").unwrap(), b"trail");
    }
}
