//! The DKIM tag list (RFC 6376 §3.2), parsed strictly over the raw (still folded) field
//! value, so that the position of `b=` is known exactly for §3.7.

use std::ops::Range;

/// Longest tag list we parse: a certificate is not in it, so 16 KiB is generous.
pub const MAX_TAG_LIST: usize = 16 * 1024;
/// Most tags in one list.
const MAX_TAGS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    /// The value without leading and trailing folding white space.
    pub value: String,
    /// Where the value is in the parsed bytes: from just after `=` to just before `;` (or
    /// the end), surrounding white space included (RFC 6376 §3.7 empties exactly this for b=).
    pub range: Range<usize>,
}

impl Tag {
    /// The value with all folding white space removed (base64 and header lists may be
    /// folded anywhere).
    pub fn compact(&self) -> String {
        self.value
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
            .collect()
    }
}

/// Parses `tag-list = tag-spec *( ";" tag-spec ) [ ";" ]`; duplicate tags are an error.
pub fn parse(value: &[u8]) -> Result<Vec<Tag>, String> {
    if value.len() > MAX_TAG_LIST {
        return Err(format!("tag list longer than {MAX_TAG_LIST} bytes"));
    }
    let mut tags: Vec<Tag> = Vec::new();
    let mut pos = skip_fws(value, 0)?;
    while pos < value.len() {
        if tags.len() >= MAX_TAGS {
            return Err(format!("more than {MAX_TAGS} tags"));
        }
        let name_start = pos;
        if !value[pos].is_ascii_alphabetic() {
            return Err(format!(
                "byte {pos}: a tag name must start with a letter, found {:?}",
                char::from(value[pos])
            ));
        }
        while pos < value.len() && (value[pos].is_ascii_alphanumeric() || value[pos] == b'_') {
            pos += 1;
        }
        let name = String::from_utf8_lossy(&value[name_start..pos]).into_owned();
        pos = skip_fws(value, pos)?;
        if value.get(pos) != Some(&b'=') {
            return Err(format!("byte {pos}: tag {name} has no '='"));
        }
        pos += 1;
        let start = pos;
        while pos < value.len() && value[pos] != b';' {
            match value[pos] {
                b' ' | b'\t' => pos += 1,
                b'\r' => pos = skip_fws(value, pos)?,
                0x21..=0x3a | 0x3c..=0x7e => pos += 1,
                other => {
                    return Err(format!(
                        "byte {pos}: tag {name} has the invalid byte 0x{other:02x} in its value"
                    ));
                }
            }
        }
        let text = String::from_utf8_lossy(&value[start..pos]);
        let trimmed = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if tags.iter().any(|t| t.name == name) {
            return Err(format!("tag {name} occurs twice"));
        }
        tags.push(Tag {
            name,
            value: trimmed.to_string(),
            range: start..pos,
        });
        if pos < value.len() {
            pos = skip_fws(value, pos + 1)?; // past ';'
        }
    }
    if tags.is_empty() {
        return Err("empty tag list".to_string());
    }
    Ok(tags)
}

/// Skips `[FWS]`; a CR must start CRLF followed by white space (a fold).
fn skip_fws(value: &[u8], mut pos: usize) -> Result<usize, String> {
    loop {
        match value.get(pos) {
            Some(b' ' | b'\t') => pos += 1,
            Some(b'\r') => {
                if value.get(pos + 1) == Some(&b'\n')
                    && matches!(value.get(pos + 2), Some(b' ' | b'\t'))
                {
                    pos += 3;
                } else {
                    return Err(format!("byte {pos}: line break that is not a fold"));
                }
            }
            _ => return Ok(pos),
        }
    }
}

pub fn get<'a>(tags: &'a [Tag], name: &str) -> Option<&'a Tag> {
    tags.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_list_with_ranges() {
        let v = b" v=1; a=sha256/rsa;\r\n\th=From:\r\n Date; b= ab\r\n cd ;";
        let tags = parse(v).unwrap();
        let names: Vec<_> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["v", "a", "h", "b"]);
        assert_eq!(get(&tags, "h").unwrap().compact(), "From:Date");
        let b = get(&tags, "b").unwrap();
        assert_eq!(b.value, "ab\r\n cd");
        assert_eq!(&v[b.range.clone()], b" ab\r\n cd ");
        assert_eq!(b.compact(), "abcd");
    }

    #[test]
    fn strictness() {
        for bad in [
            &b""[..],
            b" ; ",
            b"v=1; v=1",
            b"1v=1",
            b"v 1",
            b"v=1\r\nx=2",
            b"v=1;\nx=2",
            b"a=\xc3\xa4",
            b"a=b\0",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"v=1;").unwrap().len(), 1);
        assert_eq!(parse(b"v=").unwrap()[0].value, "");
    }
}
