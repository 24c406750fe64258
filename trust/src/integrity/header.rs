//! A message split into header fields and body, on CRLF-normalised bytes, with the limits
//! that bound the cost of hostile input.

use std::borrow::Cow;

/// Largest header section we read (Postfix's default `header_size_limit` is 100 KiB per
/// field and `message_size_limit` bounds the rest; 1 MiB leaves room for long chains of
/// `Received`).
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// Most header fields we index.
pub const MAX_FIELDS: usize = 2000;

/// One header field as it occurs in the message.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The field name without trailing white space before the colon.
    pub name: &'a [u8],
    /// The whole field including continuation lines and its final CRLF (if any).
    pub raw: &'a [u8],
    /// Offset of the first byte after the colon in `raw`.
    pub value_start: usize,
    /// Offset of the final CRLF in `raw` (`raw.len()` when the field ends the input).
    pub value_end: usize,
}

impl<'a> Field<'a> {
    pub fn value(&self) -> &'a [u8] {
        &self.raw[self.value_start..self.value_end]
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

#[derive(Debug)]
pub struct Message<'a> {
    pub fields: Vec<Field<'a>>,
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The topmost field of that name (TR-01201 PVD_IO §3.1.21: the first from the top
    /// counts, all others are ignored; names are case-insensitive).
    pub fn topmost(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.is(name))
    }
}

/// Bare LF becomes CRLF: the TR requires CRLF line ends, while a message read from a Unix
/// file, a Postfix queue or a milter often has LF only.
pub fn to_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = data
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !bare_lf {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// Splits CRLF-normalised `data` into header fields and body. A message without an empty
/// line has an empty body.
pub fn parse(data: &[u8]) -> Result<Message<'_>, String> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    let mut current: Option<(usize, usize)> = None; // (start, colon)
    let body_start = loop {
        if pos > MAX_HEADER_BYTES {
            return Err(format!(
                "header section longer than {MAX_HEADER_BYTES} bytes"
            ));
        }
        let line_end = find_crlf(data, pos);
        let next = (line_end + 2).min(data.len());
        let line = &data[pos..line_end];
        if line.is_empty() || pos >= data.len() {
            close(data, &mut fields, current.take(), pos)?;
            break if pos >= data.len() { data.len() } else { next };
        }
        if matches!(line[0], b' ' | b'\t') {
            if current.is_none() {
                return Err("the message starts with a continuation line".to_string());
            }
        } else {
            close(data, &mut fields, current.take(), pos)?;
            let colon = line
                .iter()
                .position(|b| *b == b':')
                .ok_or_else(|| format!("header line at byte {pos} has no colon"))?;
            current = Some((pos, pos + colon));
        }
        pos = next;
    };
    Ok(Message {
        fields,
        body: &data[body_start..],
    })
}

/// Index of the next CRLF at or after `from`, or `data.len()`.
fn find_crlf(data: &[u8], from: usize) -> usize {
    data.get(from..)
        .and_then(|rest| rest.windows(2).position(|w| w == b"\r\n"))
        .map_or(data.len(), |i| from + i)
}

fn close<'a>(
    data: &'a [u8],
    fields: &mut Vec<Field<'a>>,
    current: Option<(usize, usize)>,
    end: usize,
) -> Result<(), String> {
    let Some((start, colon)) = current else {
        return Ok(());
    };
    if fields.len() >= MAX_FIELDS {
        return Err(format!("more than {MAX_FIELDS} header fields"));
    }
    let name = trim_end_wsp(&data[start..colon]);
    if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
        return Err(format!(
            "header field at byte {start} has an invalid name {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    let raw = &data[start..end];
    let value_end = if raw.ends_with(b"\r\n") {
        raw.len() - 2
    } else {
        raw.len()
    };
    fields.push(Field {
        name,
        raw,
        value_start: colon - start + 1,
        value_end,
    });
    Ok(())
}

fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &s[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_folding_and_body() {
        let m = b"From: a@b\r\nSubject: one\r\n two\r\nsubject : later\r\n\r\nbody\r\n";
        let msg = parse(m).unwrap();
        assert_eq!(msg.fields.len(), 3);
        assert_eq!(msg.fields[1].raw, b"Subject: one\r\n two\r\n");
        assert_eq!(msg.fields[1].value(), b" one\r\n two");
        assert_eq!(msg.topmost("SUBJECT").unwrap().value(), b" one\r\n two");
        assert_eq!(msg.fields[2].name, b"subject");
        assert_eq!(msg.body, b"body\r\n");
    }

    #[test]
    fn header_only_and_errors() {
        let msg = parse(b"From: a@b").unwrap();
        assert_eq!(msg.fields[0].value(), b" a@b");
        assert!(msg.body.is_empty());
        assert!(parse(b" folded first\r\n\r\n").is_err());
        assert!(parse(b"no colon\r\n\r\n").is_err());
        assert!(parse(b": empty name\r\n\r\n").is_err());
        assert_eq!(parse(b"").unwrap().fields.len(), 0);
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert!(matches!(to_crlf(b"a\r\nb"), Cow::Borrowed(_)));
        assert_eq!(&*to_crlf(b"\n"), b"\r\n");
    }

    #[test]
    fn limits() {
        let many = "X: y\r\n".repeat(MAX_FIELDS + 1);
        assert!(
            parse(many.as_bytes())
                .unwrap_err()
                .contains("header fields")
        );
        let long = format!("X: {}\r\n\r\n", "y".repeat(MAX_HEADER_BYTES + 10));
        assert!(parse(long.as_bytes()).unwrap_err().contains("longer"));
    }
}
