//! IMAP strings written the way Dovecot 2.3's `imap-quote.c` writes them: quoted when that
//! is safe and short, a literal otherwise.

/// After this many quoted-specials a literal is shorter (Dovecot's QUOTED_MAX_ESCAPE_CHARS).
const QUOTED_MAX_ESCAPE_CHARS: usize = 4;

pub(crate) fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// A quoted string as Dovecot re-quotes one: CR, LF and 8-bit bytes dropped.
pub(super) fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\r' | b'\n' => {}
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(c);
            }
            c if c >= 0x80 => {}
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// `imap_append_nstring` (a C string: it ends at the first NUL).
pub(crate) fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let s = match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    let mut escapes = 0;
    for &c in s {
        match c {
            b'"' | b'\\' => {
                escapes += 1;
                if escapes > QUOTED_MAX_ESCAPE_CHARS {
                    return literal(out, s);
                }
            }
            b'\r' | b'\n' => return literal(out, s),
            c if c >= 0x80 => return literal(out, s),
            _ => {}
        }
    }
    quoted(out, s);
}

pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    nstring(out, Some(s));
}

/// `imap_append_nstring_nolf`: line breaks removed, a space kept between joined lines.
pub(crate) fn nstring_nolf(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        return nstring(out, None);
    };
    let s = match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    if !s.iter().any(|&c| c == b'\r' || c == b'\n') {
        return nstring(out, Some(s));
    }
    let mut v = Vec::with_capacity(s.len());
    for (i, &c) in s.iter().enumerate() {
        if c != b'\r' && c != b'\n' {
            v.push(c);
        } else {
            let next = s.get(i + 1).copied().unwrap_or(0);
            if !matches!(next, b' ' | b'\t' | b'\r' | b'\n' | 0) {
                v.push(b' ');
            }
        }
    }
    nstring(out, Some(&v));
}

/// `imap_append_string_for_humans`: whitespace runs collapsed and trimmed; any change (or
/// 8-bit, quotes) makes it a literal.
pub(crate) fn for_humans(out: &mut Vec<u8>, src: &[u8]) {
    let src = match src.iter().position(|&c| c == 0) {
        Some(n) => &src[..n],
        None => src,
    };
    let mut remove = 0usize;
    let mut whitespace_prefix = true;
    let mut last_lwsp = true;
    let mut modify = false;
    for &c in src {
        match c {
            b'\r' | b'\n' | b'\t' | b' ' => {
                if c != b' ' {
                    modify = true;
                }
                if last_lwsp {
                    modify = true;
                    remove += 1;
                }
                last_lwsp = true;
            }
            b'"' | b'\\' => {
                modify = true;
                last_lwsp = false;
            }
            c => {
                if c & 0x80 != 0 {
                    modify = true;
                }
                last_lwsp = false;
            }
        }
        if !last_lwsp {
            whitespace_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !whitespace_prefix {
        modify = true;
        remove += 1;
    }
    if !modify {
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    if src.len() == remove {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let mut v = Vec::with_capacity(src.len() - remove);
    last_lwsp = true;
    whitespace_prefix = true;
    for &c in src {
        match c {
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_lwsp {
                    v.push(b' ');
                }
                last_lwsp = true;
            }
            c => {
                last_lwsp = false;
                v.push(c);
            }
        }
        if !last_lwsp {
            whitespace_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !whitespace_prefix {
        v.pop();
    }
    literal(out, &v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &[u8]) -> String {
        let mut v = Vec::new();
        for_humans(&mut v, s);
        String::from_utf8_lossy(&v).into_owned()
    }

    fn n(s: &[u8]) -> String {
        let mut v = Vec::new();
        nstring(&mut v, Some(s));
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn for_humans_collapses_and_trims() {
        assert_eq!(h(b"plain"), "\"plain\"");
        assert_eq!(h(b""), "\"\"");
        assert_eq!(h(b"   "), "\"\"");
        assert_eq!(h(b"a  b "), "{3}\r\na b");
        assert_eq!(h(b"a\n\tb"), "{3}\r\na b");
        assert_eq!(h(b"say \"x\""), "{7}\r\nsay \"x\"");
    }

    #[test]
    fn nstring_quotes_or_literal() {
        assert_eq!(n(b"abc"), "\"abc\"");
        assert_eq!(n(b"a\"b"), "\"a\\\"b\"");
        assert_eq!(n(b"\"\"\"\"\""), "{5}\r\n\"\"\"\"\"");
        assert_eq!(n("ä".as_bytes()), "{2}\r\nä");
        assert_eq!(n(b"a\r\nb"), "{4}\r\na\r\nb");
    }
}
