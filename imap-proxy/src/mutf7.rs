//! Modified UTF-7 for mailbox names (RFC 3501 5.1.3), the wire form unless the client enabled
//! UTF8=ACCEPT.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

pub fn encode(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let n = chunk.len();
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=n {
                out.push(char::from(B64[((v >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// `None` for anything that is not valid modified UTF-7 (then the name is none of ours).
pub fn decode(s: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let end = i + 1 + s[i + 1..].iter().position(|&b| b == b'-')?;
        let run = &s[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut units = Vec::new();
            for &b in run {
                let v = B64.iter().position(|&x| x == b)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 16 {
                    nbits -= 16;
                    units.push(((bits >> nbits) & 0xffff) as u16);
                }
            }
            if units.is_empty() {
                return None;
            }
            let text = String::from_utf16(&units).ok()?;
            // A run must not encode what could be written directly.
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        i = end + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (utf8, wire) in [
            ("Versandbestätigungen", "Versandbest&AOQ-tigungen"),
            ("De-Mail", "De-Mail"),
            ("A&B", "A&-B"),
            ("日本語", "&ZeVnLIqe-"),
            ("Zustellfiktion", "Zustellfiktion"),
        ] {
            assert_eq!(encode(utf8), wire);
            assert_eq!(decode(wire.as_bytes()).as_deref(), Some(utf8));
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["&AOQ", "&A-", "x\u{e4}", "&AGE-", "&!!-"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
