//! BODYSTRUCTURE, BODY and ENVELOPE as Dovecot 2.3's `imap-bodystructure.c` and
//! `imap-envelope.c` write them.

use super::address::Address;
use super::parse::{Envelope, F_MESSAGE_RFC822, F_MULTIPART, F_MULTIPART_DIGEST, Params, Part};
use super::quote::{for_humans, nstring, nstring_nolf, string};

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

/// Size in octets with every bare LF counted as CRLF (Dovecot's virtual size), and lines.
pub(crate) fn vsize(b: &[u8], start: usize, end: usize) -> (usize, usize) {
    let end = end.min(b.len());
    let start = start.min(end);
    let mut size = end - start;
    let mut lines = 0;
    for i in start..end {
        if b[i] == b'\n' {
            lines += 1;
            if i == 0 || b[i - 1] != b'\r' {
                size += 1;
            }
        }
    }
    (size, lines)
}

fn write_addresses(out: &mut Vec<u8>, addrs: &[Address]) {
    if addrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in addrs {
        out.push(b'(');
        match &a.name {
            None => out.extend_from_slice(b"NIL"),
            Some(n) => for_humans(out, n),
        }
        out.push(b' ');
        nstring(out, a.route.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        nstring(out, a.domain.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

pub(crate) fn write_envelope(out: &mut Vec<u8>, e: Option<&Envelope>) {
    let Some(e) = e else {
        out.extend_from_slice(b"NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL");
        return;
    };
    nstring_nolf(out, e.date.as_deref());
    out.push(b' ');
    match &e.subject {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => for_humans(out, s),
    }
    out.push(b' ');
    write_addresses(out, &e.from);
    out.push(b' ');
    write_addresses(
        out,
        if e.sender.is_empty() {
            &e.from
        } else {
            &e.sender
        },
    );
    out.push(b' ');
    write_addresses(
        out,
        if e.reply_to.is_empty() {
            &e.from
        } else {
            &e.reply_to
        },
    );
    out.push(b' ');
    write_addresses(out, &e.to);
    out.push(b' ');
    write_addresses(out, &e.cc);
    out.push(b' ');
    write_addresses(out, &e.bcc);
    out.push(b' ');
    nstring_nolf(out, e.in_reply_to.as_deref());
    out.push(b' ');
    nstring_nolf(out, e.message_id.as_deref());
}

fn params_write(out: &mut Vec<u8>, params: &Params, default_charset: bool) {
    if !default_charset && params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut seen_charset = false;
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if default_charset && cstr(k).eq_ignore_ascii_case(b"charset") {
            seen_charset = true;
        }
        string(out, k);
        out.push(b' ');
        string(out, v);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

/// The part of a C string before its first NUL.
fn cstr(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

fn eq(a: Option<&Vec<u8>>, b: &[u8]) -> bool {
    a.is_some_and(|a| cstr(a).eq_ignore_ascii_case(b))
}

pub(crate) struct Writer<'a> {
    pub b: &'a [u8],
    pub parts: &'a [Part],
}

impl Writer<'_> {
    fn common(&self, out: &mut Vec<u8>, p: &Part) {
        let d = &p.data;
        out.push(b' ');
        match &d.content_disposition {
            None => out.extend_from_slice(b"NIL"),
            Some(disp) => {
                out.push(b'(');
                string(out, disp);
                out.push(b' ');
                params_write(out, &d.content_disposition_params, false);
                out.push(b')');
            }
        }
        out.push(b' ');
        match &d.content_language {
            None => out.extend_from_slice(b"NIL"),
            Some(langs) => {
                out.push(b'(');
                for (i, l) in langs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    string(out, l);
                }
                out.push(b')');
            }
        }
        out.push(b' ');
        nstring_nolf(out, d.content_location.as_deref());
    }

    fn siblings(&self, out: &mut Vec<u8>, ids: &[usize], extended: bool) {
        for &c in ids {
            out.push(b'(');
            self.write(out, c, extended);
            out.push(b')');
        }
    }

    fn is_truncated(&self, p: &Part) -> bool {
        let d = &p.data;
        match &d.content_type {
            Some(_) => {
                (eq(d.content_type.as_ref(), b"message")
                    && eq(d.content_subtype.as_ref(), b"rfc822"))
                    || eq(d.content_type.as_ref(), b"multipart")
            }
            None => p
                .parent
                .is_some_and(|pp| self.parts[pp].is(F_MULTIPART_DIGEST)),
        }
    }

    /// `imap_bodystructure_write` of part `id` (without the outer parentheses).
    pub(crate) fn write(&self, out: &mut Vec<u8>, id: usize, extended: bool) {
        let p = &self.parts[id];
        let d = &p.data;
        if p.is(F_MULTIPART) {
            if p.children.is_empty() {
                out.extend_from_slice(if extended {
                    EMPTY_BODYSTRUCTURE
                } else {
                    EMPTY_BODY
                });
            } else {
                self.siblings(out, &p.children, extended);
            }
            out.push(b' ');
            string(out, d.content_subtype.as_deref().unwrap_or_default());
            if !extended {
                return;
            }
            out.push(b' ');
            params_write(out, &d.content_type_params, false);
            self.common(out, p);
            return;
        }
        let text;
        if p.is(F_MESSAGE_RFC822) {
            out.extend_from_slice(b"\"message\" \"rfc822\"");
            text = false;
        } else if self.is_truncated(p) {
            // Dovecot's answer for parts beyond its MIME limits.
            out.extend_from_slice(b"\"application\" \"octet-stream\"");
            text = false;
        } else {
            match &d.content_type {
                None => {
                    text = true;
                    out.extend_from_slice(b"\"text\" \"plain\"");
                }
                Some(t) => {
                    text = cstr(t).eq_ignore_ascii_case(b"text");
                    string(out, t);
                    out.push(b' ');
                    string(out, d.content_subtype.as_deref().unwrap_or_default());
                }
            }
        }
        out.push(b' ');
        params_write(out, &d.content_type_params, text);
        out.push(b' ');
        nstring_nolf(out, d.content_id.as_deref());
        out.push(b' ');
        nstring_nolf(out, d.content_description.as_deref());
        out.push(b' ');
        match &d.content_transfer_encoding {
            Some(e) => string(out, e),
            None => out.extend_from_slice(b"\"7bit\""),
        }
        let (size, lines) = vsize(self.b, p.body_start(), p.end());
        out.extend_from_slice(format!(" {size}").as_bytes());
        if text {
            out.extend_from_slice(format!(" {lines}").as_bytes());
        } else if p.is(F_MESSAGE_RFC822) {
            out.extend_from_slice(b" (");
            let child = p.children.first().copied();
            write_envelope(
                out,
                child.and_then(|c| self.parts[c].data.envelope.as_ref()),
            );
            out.extend_from_slice(b") ");
            match child {
                Some(c) => self.siblings(out, &[c], extended),
                None => out.extend_from_slice(if extended {
                    EMPTY_BODYSTRUCTURE
                } else {
                    EMPTY_BODY
                }),
            }
            out.extend_from_slice(format!(" {lines}").as_bytes());
        }
        if !extended {
            return;
        }
        out.push(b' ');
        nstring_nolf(out, d.content_md5.as_deref());
        self.common(out, p);
    }
}
