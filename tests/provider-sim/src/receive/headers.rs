//! A strict reader of the header section (RFC 5322 §2.2), for the decisions a provider makes on
//! header fields. mail-parser 0.11 matches field names leniently, so a field it would read as
//! `From` could slip past a name-based check; here names are taken byte for byte.

/// One header field: its name as written, and its value unfolded and trimmed of whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub value: Vec<u8>,
    /// 1-based line of the field's first line in the message.
    pub line: usize,
}

impl Field {
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A line in the header section that is neither a field nor a continuation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HeaderError {
    pub line: usize,
    pub what: &'static str,
}

/// Parses the header section of CRLF-terminated `data` (up to the first empty line, or all of
/// it when there is no body). Obsolete whitespace before the colon is accepted (RFC 5322 §4.5).
pub(crate) fn parse(data: &[u8]) -> Result<Vec<Field>, HeaderError> {
    let mut fields: Vec<Field> = Vec::new();
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let number = i + 1;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some(last) = fields.last_mut() else {
                return Err(HeaderError {
                    line: number,
                    what: "continuation line before the first header field",
                });
            };
            // Unfolding removes only the CRLF; the leading whitespace stays (RFC 5322 §2.2.3).
            last.value.extend_from_slice(line);
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(HeaderError {
                line: number,
                what: "header line without a colon",
            });
        };
        let name = trim_end(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
            return Err(HeaderError {
                line: number,
                what: "invalid header field name",
            });
        }
        fields.push(Field {
            // Only printable ASCII passed the check above.
            name: String::from_utf8_lossy(name).into_owned(),
            value: line[colon + 1..].to_vec(),
            line: number,
        });
    }
    for f in &mut fields {
        f.value = trim(&f.value).to_vec();
    }
    Ok(fields)
}

fn is_wsp(b: &u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|b| !is_wsp(b)).map_or(0, |i| i + 1);
    &s[..end]
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_wsp(b)).unwrap_or(s.len());
    trim_end(&s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unfold_and_stop_at_the_body() {
        let msg = b"From: a@b\r\nSubject: one\r\n two\r\nX-de-mail-private : yes \r\n\r\nNot: a header\r\n";
        let f = parse(msg).expect("parses");
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].value, b"one two");
        assert!(f[2].is("x-DE-mail-PRIVATE"));
        assert_eq!(f[2].value, b"yes");
        assert_eq!(f[2].line, 4);
    }

    #[test]
    fn malformed_lines_are_named() {
        assert_eq!(
            parse(b" folded\r\nFrom: a\r\n"),
            Err(HeaderError {
                line: 1,
                what: "continuation line before the first header field"
            })
        );
        assert_eq!(
            parse(b"From: a\r\nno colon here\r\n\r\n"),
            Err(HeaderError {
                line: 2,
                what: "header line without a colon"
            })
        );
        assert_eq!(
            parse(b"From: a\r\nFr om: b\r\n"),
            Err(HeaderError {
                line: 2,
                what: "invalid header field name"
            })
        );
        assert_eq!(parse(b"").expect("empty"), vec![]);
    }
}
