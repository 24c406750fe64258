//! Looking into raw messages the way a test must: at the exact bytes, field by field.

/// The header section (up to, not including, the empty line), or the whole message if it has
/// no body.
pub fn header_section(message: &[u8]) -> &[u8] {
    for sep in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(i) = message.windows(sep.len()).position(|w| w == sep) {
            return &message[..i + sep.len() / 2];
        }
    }
    message
}

/// The body after the empty line (empty if there is none).
pub fn body(message: &[u8]) -> &[u8] {
    let head = header_section(message).len();
    let rest = &message[head..];
    rest.strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
        .unwrap_or(rest)
}

/// Every header field in order as `(name, value)`: the value unfolded (line breaks of
/// continuation lines removed, as RFC 5322 unfolding says), leading white space trimmed, not
/// decoded. Bytes that are not UTF-8 are replaced.
pub fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(header_section(message)).into_owned();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_string(), value.trim_start().to_string()));
        }
    }
    fields
}

/// The values of every field named `name` (case-insensitive), in order.
pub fn field_values(message: &[u8], name: &str) -> Vec<String> {
    header_fields(message)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?Q?...?=`, `=?utf-8?B?...?=`)
/// decoded; white space between adjacent encoded words dropped, as RFC 2047 says. Words that
/// do not decode stay as they are: a test then sees the raw form in its failure message.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let decoded = encoded_word(from);
        let Some((text, len)) = decoded else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&text);
        rest = &from[len..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and its length in `s`.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let mut parts = inner.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let tail = parts.next()?;
    let end = tail.find("?=")?;
    let payload = &tail[..end];
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    let bytes = match encoding {
        "Q" | "q" => {
            let mut b = Vec::new();
            let raw = payload.as_bytes();
            let mut i = 0;
            while i < raw.len() {
                match raw[i] {
                    b'_' => b.push(b' '),
                    b'=' => {
                        let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
                        b.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    c => b.push(c),
                }
                i += 1;
            }
            b
        }
        "B" | "b" => openssl::base64::decode_block(payload).ok()?,
        _ => return None,
    };
    Some((String::from_utf8(bytes).ok()?, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@b\r\nSubject: =?utf-8?Q?x?=\r\n =?utf-8?Q?y?=\r\nsubject: second\r\n\r\nbody\r\n\r\nmore\r\n";

    #[test]
    fn fields_are_unfolded_in_order() {
        let f = header_fields(MSG);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0], ("From".into(), "a@b".into()));
        assert_eq!(f[1].1, "=?utf-8?Q?x?= =?utf-8?Q?y?=");
        assert_eq!(field_values(MSG, "SUBJECT").len(), 2);
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decode_words("=?utf-8?Q?[De-Mail_absenderbest=C3=A4tigt]?= Bescheid"),
            "[De-Mail absenderbestätigt] Bescheid"
        );
        assert_eq!(decode_words("=?UTF-8?B?w6Q=?= =?utf-8?q?b?="), "äb");
        assert_eq!(decode_words("plain =?x"), "plain =?x");
    }

    #[test]
    fn header_and_body_split_at_the_first_empty_line() {
        assert!(header_section(MSG).ends_with(b"second\r\n"));
        assert_eq!(body(MSG), b"body\r\n\r\nmore\r\n");
        assert_eq!(body(b"A: b\n\nx"), b"x");
        assert_eq!(header_section(b"A: b\r\n"), b"A: b\r\n");
        assert!(contains(MSG, b"more") && !contains(MSG, b"absent"));
    }
}
