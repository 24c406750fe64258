//! Header fields as Postfix passes them, the changes we ask for, and the bytes that result.
//!
//! Postfix (milter8.c, cleanup_milter.c) is the reference for every rule here:
//! - with `LEADING_SPACE` negotiated a value arrives exactly as written after the colon, and a
//!   value we send is written after the colon unchanged, so ours start with a space;
//! - folded values arrive joined with a bare LF; the `smtp` client sends every line with CRLF;
//! - a change or delete addresses the n-th field of that name (case-insensitive, 1-based) among
//!   the fields as received, and a deleted field no longer counts;
//! - an added field is appended after the last header field, in the order we add them.

use std::collections::HashMap;

/// One header field as received from the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    /// The raw value: leading whitespace kept, folding as LF.
    pub value: Vec<u8>,
}

impl Field {
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether the field is called `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// Whether the field name starts with `prefix` (case-insensitive).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.name.len() >= prefix.len()
            && self.name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    }

    /// The value unfolded and trimmed, for reading (lossy for 8-bit bytes).
    pub fn text(&self) -> String {
        let unfolded: Vec<u8> = self
            .value
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        String::from_utf8_lossy(&unfolded).trim().to_string()
    }
}

/// Appends `name:value` as it goes on the wire: every line ends in CRLF.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.push(b':');
    write_crlf(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Copies `text`, turning every bare LF into CRLF.
fn write_crlf(out: &mut Vec<u8>, text: &[u8]) {
    let mut prev = 0u8;
    for &b in text {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
}

/// A value as sent with `LEADING_SPACE` negotiated: Postfix writes it right after the colon.
pub fn wire(text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.push(b' ');
    // NUL cannot travel in the milter protocol; it has no place in a header either.
    v.extend(text.bytes().filter(|b| *b != 0));
    v
}

/// A change request for the MTA, in the milter's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Replace the `index`-th field called `name` (1-based).
    Change {
        name: Vec<u8>,
        index: i32,
        value: Vec<u8>,
    },
    /// Delete the `index`-th field called `name` (1-based).
    Delete { name: Vec<u8>, index: i32 },
    /// Append a field after the last one.
    Add { name: Vec<u8>, value: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Keep,
    Replace(Vec<u8>),
    Delete,
}

/// What should happen to each received field, plus the fields to append.
#[derive(Debug, Clone)]
pub struct HeaderPlan<'a> {
    fields: &'a [Field],
    fate: Vec<Fate>,
    added: Vec<Field>,
}

impl<'a> HeaderPlan<'a> {
    pub fn new(fields: &'a [Field]) -> HeaderPlan<'a> {
        HeaderPlan {
            fields,
            fate: vec![Fate::Keep; fields.len()],
            added: Vec::new(),
        }
    }

    /// Gives `name` exactly this raw value: the first occurrence is changed in place (it keeps
    /// its position and its spelling of the name), later ones are deleted, and the field is
    /// appended when there is none.
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        let mut first = true;
        for (i, f) in self.fields.iter().enumerate() {
            if f.is(name) && self.fate[i] != Fate::Delete {
                self.fate[i] = if first {
                    Fate::Replace(value.clone())
                } else {
                    Fate::Delete
                };
                first = false;
            }
        }
        if first {
            self.append(name, value);
        }
    }

    /// Deletes every received field for which `pred` holds.
    pub fn delete_where(&mut self, pred: impl Fn(&Field) -> bool) {
        for (i, f) in self.fields.iter().enumerate() {
            if pred(f) {
                self.fate[i] = Fate::Delete;
            }
        }
    }

    /// Appends a field after the last one.
    pub fn append(&mut self, name: &str, value: Vec<u8>) {
        self.added.push(Field::new(name, value));
    }

    /// Appends a field whose name comes from the wire (not necessarily UTF-8).
    pub fn append_raw(&mut self, name: Vec<u8>, value: Vec<u8>) {
        self.added.push(Field { name, value });
    }

    /// The requests to send, in an order whose indexes stay valid while Postfix applies them:
    /// fields are visited last to first, so deleting one never renumbers one still to come.
    pub fn edits(&self) -> Vec<Edit> {
        let mut seen: HashMap<Vec<u8>, i32> = HashMap::new();
        let occurrence: Vec<i32> = self
            .fields
            .iter()
            .map(|f| {
                let n = seen.entry(f.name.to_ascii_lowercase()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .collect();
        let mut edits = Vec::new();
        for (i, f) in self.fields.iter().enumerate().rev() {
            let index = occurrence[i];
            match &self.fate[i] {
                Fate::Keep => {}
                Fate::Replace(value) => edits.push(Edit::Change {
                    name: f.name.clone(),
                    index,
                    value: value.clone(),
                }),
                Fate::Delete => edits.push(Edit::Delete {
                    name: f.name.clone(),
                    index,
                }),
            }
        }
        for f in &self.added {
            edits.push(Edit::Add {
                name: f.name.clone(),
                value: f.value.clone(),
            });
        }
        edits
    }

    /// The header section after the edits, as the `demail` transport sends it: CRLF line ends,
    /// without any `Received` field (the transport's `smtp_header_checks` drop them all), and
    /// with the empty line that ends the header.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, fate) in self.fields.iter().zip(&self.fate) {
            let value = match fate {
                Fate::Keep => &f.value,
                Fate::Replace(v) => v,
                Fate::Delete => continue,
            };
            if !f.is("Received") {
                write_field(&mut out, &f.name, value);
            }
        }
        for f in &self.added {
            if !f.is("Received") {
                write_field(&mut out, &f.name, &f.value);
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The header section exactly as received (for the origin key): CRLF line ends, all fields.
pub fn render_received(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        write_field(&mut out, &f.name, &f.value);
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<Field> {
        vec![
            Field::new("Received", " from a by b"),
            Field::new("From", " Clerk <clerk@magdeburg.example>"),
            Field::new("Subject", " [Abholbestätigung] Bescheid\n\tzweite Zeile"),
            Field::new("reply-to", " a@x"),
            Field::new("Reply-To", " b@x"),
            Field::new("X-de-mail-private", " yes"),
        ]
    }

    #[test]
    fn folding_becomes_crlf_once() {
        let mut out = Vec::new();
        write_field(&mut out, b"Subject", b" a\n\tb\r\n c");
        assert_eq!(out, b"Subject: a\r\n\tb\r\n c\r\n");
    }

    #[test]
    fn set_changes_first_and_deletes_rest() {
        let f = fields();
        let mut plan = HeaderPlan::new(&f);
        plan.set("Reply-To", b" clerk@x".to_vec());
        assert_eq!(
            plan.edits(),
            vec![
                Edit::Delete {
                    name: b"Reply-To".to_vec(),
                    index: 2
                },
                Edit::Change {
                    name: b"reply-to".to_vec(),
                    index: 1,
                    value: b" clerk@x".to_vec()
                },
            ]
        );
    }

    #[test]
    fn set_appends_when_missing() {
        let f = fields();
        let mut plan = HeaderPlan::new(&f);
        plan.set("Message-ID", b" <1@x>".to_vec());
        assert_eq!(
            plan.edits(),
            vec![Edit::Add {
                name: b"Message-ID".to_vec(),
                value: b" <1@x>".to_vec()
            }]
        );
    }

    #[test]
    fn deletes_run_from_last_to_first() {
        let f = vec![
            Field::new("X-de-mail-a", " 1"),
            Field::new("X-DE-MAIL-A", " 2"),
            Field::new("Subject", " s"),
            Field::new("x-de-mail-a", " 3"),
        ];
        let mut plan = HeaderPlan::new(&f);
        plan.delete_where(|f| f.has_prefix("X-de-mail-"));
        let idx: Vec<i32> = plan
            .edits()
            .iter()
            .map(|e| match e {
                Edit::Delete { index, .. } => *index,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(idx, vec![3, 2, 1]);
    }

    #[test]
    fn render_applies_edits_and_drops_received() {
        let f = fields();
        let mut plan = HeaderPlan::new(&f);
        plan.set("Subject", b" Bescheid".to_vec());
        plan.delete_where(|f| f.is("Reply-To"));
        plan.delete_where(|f| f.has_prefix("X-de-mail-"));
        plan.append("X-de-mail-private", b" no".to_vec());
        assert_eq!(
            String::from_utf8(plan.render()).unwrap(),
            "From: Clerk <clerk@magdeburg.example>\r\nSubject: Bescheid\r\n\
             X-de-mail-private: no\r\n\r\n"
        );
    }

    #[test]
    fn received_rendering_keeps_everything() {
        let f = fields();
        let out = String::from_utf8(render_received(&f)).unwrap();
        assert!(out.starts_with("Received: from a by b\r\n"));
        assert!(out.contains("Bescheid\r\n\tzweite Zeile\r\n"));
        assert!(out.ends_with("X-de-mail-private: yes\r\n\r\n"));
    }

    #[test]
    fn text_unfolds() {
        let f = Field::new("Subject", "  a\n\tb ");
        assert_eq!(f.text(), "a\tb");
    }
}
