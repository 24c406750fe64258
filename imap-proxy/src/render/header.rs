//! Header lines as Dovecot 2.3's `message-header-parser.c` splits them.

pub(crate) fn is_lwsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// One logical header field (a first line and its continuation lines).
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// Offset of the first byte of the field.
    pub start: usize,
    /// Offset after the field's last line break (or the end of the data).
    pub end: usize,
    /// The name: bytes before ':' with LWSP before the colon removed; empty when the line
    /// has no colon (then the whole line is the value).
    pub name: Vec<u8>,
    /// The unfolded value the way Dovecot's parsers see it with SKIP_INITIAL_LWSP|DROP_CR:
    /// continuation lines joined with "\n", CRs before line ends dropped.
    pub value: Vec<u8>,
    /// Number of physical lines.
    pub lines: usize,
    /// Size of the last line break (2 CRLF, 1 LF, 0 none: the data ended).
    pub last_newline: usize,
}

/// One physical line at `p`: (content end without [CR]LF, end after the line break, the
/// newline's size).
pub(crate) fn line_at(b: &[u8], p: usize) -> (usize, usize, usize) {
    match b[p..].iter().position(|&c| c == b'\n') {
        Some(n) => {
            let lf = p + n;
            if lf > p && b[lf - 1] == b'\r' {
                (lf - 1, lf + 1, 2)
            } else {
                (lf, lf + 1, 1)
            }
        }
        None => (b.len(), b.len(), 0),
    }
}

/// Whether the line at `p` is the empty line ending a header.
pub(crate) fn is_eoh(b: &[u8], p: usize) -> bool {
    match b.get(p) {
        Some(b'\n') => true,
        Some(b'\r') => b.get(p + 1) == Some(&b'\n'),
        _ => false,
    }
}

/// The length of the eoh line at `p` (1 or 2).
pub(crate) fn eoh_len(b: &[u8], p: usize) -> usize {
    if b[p] == b'\n' { 1 } else { 2 }
}

/// RFC 5322 2.1.1: Dovecot treats longer names as values.
const NAME_MAX_LEN: usize = 1000;

/// Parses the field starting at `p` (not at an eoh line, `p` < len). Only the first line can
/// hold the colon.
pub(crate) fn field_at(b: &[u8], p: usize) -> Field {
    let (cend, mut end, mut nl) = line_at(b, p);
    let first = &b[p..cend];
    let mut lines = 1;
    let (name, mut value) = match first.iter().position(|&c| c == b':' || c == b'\n') {
        Some(colon) if first[colon] == b':' => {
            let mut n = colon;
            while n > 0 && is_lwsp(first[n - 1]) {
                n -= 1;
            }
            if n > NAME_MAX_LEN {
                (Vec::new(), first.to_vec())
            } else {
                let v = &first[colon + 1..];
                let mut skip = v.iter().take_while(|&&c| is_lwsp(c)).count();
                if skip == v.len() && !v.is_empty() {
                    skip = 1;
                }
                (first[..n].to_vec(), v[skip..].to_vec())
            }
        }
        _ => (Vec::new(), first.to_vec()),
    };
    while nl > 0 && end < b.len() && is_lwsp(b[end]) {
        let (c2, e2, n2) = line_at(b, end);
        value.push(b'\n');
        value.extend_from_slice(&b[end..c2]);
        end = e2;
        nl = n2;
        lines += 1;
    }
    Field {
        start: p,
        end,
        name,
        value,
        lines,
        last_newline: nl,
    }
}

/// The fields of the header starting at `p`, up to its eoh line or the end of `b`: (fields,
/// offset of the eoh line if there is one).
pub(crate) fn fields(b: &[u8], mut p: usize) -> (Vec<Field>, Option<usize>) {
    let mut out = Vec::new();
    while p < b.len() {
        if is_eoh(b, p) {
            return (out, Some(p));
        }
        let f = field_at(b, p);
        p = f.end;
        out.push(f);
    }
    (out, None)
}
