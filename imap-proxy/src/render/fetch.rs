//! FETCH items: section lookup, header subsets, partial ranges and BINARY, following
//! Dovecot 2.3's `imap-msgpart.c`, `imap-fetch-body.c`, `istream-header-filter.c` and
//! `index-mail-binary.c`.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{AString, IString};
use imap_codec::imap_types::fetch::{MessageDataItemName, Section};

use super::Rendered;
use super::binary::{self, DecodeError};
use super::header;
use super::parse::{Envelope, F_HAS_NULS, F_MESSAGE_RFC822, F_MULTIPART, Part};
use super::structure::{self, Writer};

/// A BINARY item Dovecot would answer with a tagged NO instead of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The part's Content-Transfer-Encoding is none Dovecot decodes.
    UnknownCte,
    /// The encoded data is invalid.
    InvalidData,
    /// The encoded data ends inside a base64 quantum or a QP escape (Dovecot logs an internal
    /// error and disconnects; a tagged NO is the polite equivalent).
    Truncated,
}

impl FetchError {
    /// The tagged response text (after `tag `) Dovecot gives.
    pub fn tagged_no(self) -> &'static str {
        match self {
            FetchError::UnknownCte => "NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.",
            FetchError::InvalidData => "NO [PARSE] Invalid data in MIME part",
            FetchError::Truncated => {
                "NO [SERVERBUG] Internal error occurred. Refer to server log for more information."
            }
        }
    }
}

impl From<DecodeError> for FetchError {
    fn from(e: DecodeError) -> FetchError {
        match e {
            DecodeError::InvalidData => FetchError::InvalidData,
            DecodeError::Truncated => FetchError::Truncated,
        }
    }
}

fn path_str(path: &[NonZeroU32]) -> String {
    path.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn with_prefix(path: Option<&[NonZeroU32]>, what: &str) -> String {
    match path {
        Some(p) => format!("{}.{what}", path_str(p)),
        None => what.to_string(),
    }
}

fn header_list(out: &mut Vec<u8>, names: &[AString<'_>]) {
    out.extend_from_slice(b" (");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let upper = n.as_ref().to_ascii_uppercase();
        match n {
            AString::Atom(_) => out.extend_from_slice(&upper),
            // Dovecot re-quotes string names.
            AString::String(IString::Literal(_) | IString::Quoted(_)) => {
                super::quote::quoted(out, &upper)
            }
        }
    }
    out.push(b')');
}

/// The section text Dovecot echoes (upper case, header names re-quoted).
fn section_text(section: &Option<Section<'_>>) -> Vec<u8> {
    let mut out = Vec::new();
    match section {
        None => {}
        Some(Section::Part(p)) => out.extend_from_slice(path_str(p.0.as_ref()).as_bytes()),
        Some(Section::Header(p)) => out
            .extend_from_slice(with_prefix(p.as_ref().map(|p| p.0.as_ref()), "HEADER").as_bytes()),
        Some(Section::Text(p)) => {
            out.extend_from_slice(with_prefix(p.as_ref().map(|p| p.0.as_ref()), "TEXT").as_bytes())
        }
        Some(Section::Mime(p)) => {
            out.extend_from_slice(with_prefix(Some(p.0.as_ref()), "MIME").as_bytes())
        }
        Some(Section::HeaderFields(p, names)) => {
            out.extend_from_slice(
                with_prefix(p.as_ref().map(|p| p.0.as_ref()), "HEADER.FIELDS").as_bytes(),
            );
            header_list(&mut out, names.as_ref());
        }
        Some(Section::HeaderFieldsNot(p, names)) => {
            out.extend_from_slice(
                with_prefix(p.as_ref().map(|p| p.0.as_ref()), "HEADER.FIELDS.NOT").as_bytes(),
            );
            header_list(&mut out, names.as_ref());
        }
    }
    out
}

/// The name of the response item (`BODY[1]<0>`, `BINARY.SIZE[2]`, `RFC822.TEXT`).
pub(crate) fn item_name(item: &MessageDataItemName<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match item {
        MessageDataItemName::Body => out.extend_from_slice(b"BODY"),
        MessageDataItemName::BodyStructure => out.extend_from_slice(b"BODYSTRUCTURE"),
        MessageDataItemName::Envelope => out.extend_from_slice(b"ENVELOPE"),
        MessageDataItemName::Rfc822 => out.extend_from_slice(b"RFC822"),
        MessageDataItemName::Rfc822Header => out.extend_from_slice(b"RFC822.HEADER"),
        MessageDataItemName::Rfc822Text => out.extend_from_slice(b"RFC822.TEXT"),
        MessageDataItemName::Rfc822Size => out.extend_from_slice(b"RFC822.SIZE"),
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            out.extend_from_slice(b"BODY[");
            out.extend_from_slice(&section_text(section));
            out.push(b']');
            if let Some((off, _)) = partial {
                out.extend_from_slice(format!("<{off}>").as_bytes());
            }
        }
        MessageDataItemName::Binary {
            section, partial, ..
        } => {
            out.extend_from_slice(format!("BINARY[{}]", path_str(section)).as_bytes());
            if let Some((off, _)) = partial {
                out.extend_from_slice(format!("<{off}>").as_bytes());
            }
        }
        MessageDataItemName::BinarySize { section } => {
            out.extend_from_slice(format!("BINARY.SIZE[{}]", path_str(section)).as_bytes());
        }
        MessageDataItemName::Flags => out.extend_from_slice(b"FLAGS"),
        MessageDataItemName::InternalDate => out.extend_from_slice(b"INTERNALDATE"),
        MessageDataItemName::Uid => out.extend_from_slice(b"UID"),
        #[allow(unreachable_patterns)]
        _ => out.extend_from_slice(b"MODSEQ"),
    }
    out
}

/// `imap_msgpart_find`: the part a numeric section names.
pub(crate) fn find(parts: &[Part], path: &[NonZeroU32]) -> Option<usize> {
    let mut part = 0usize;
    for (i, num) in path.iter().enumerate() {
        let more = i + 1 < path.len();
        let p = &parts[part];
        if p.is(F_MULTIPART) {
            part = *p.children.get(num.get() as usize - 1)?;
        } else if num.get() != 1 || (more && !p.is(F_MESSAGE_RFC822)) {
            return None;
        }
        let p = &parts[part];
        if more && p.is(F_MESSAGE_RFC822) {
            part = *p.children.first()?;
        }
    }
    Some(part)
}

/// The message/rfc822 part's message (for HEADER, TEXT and HEADER.FIELDS of a part).
fn rfc822_child(parts: &[Part], path: Option<&[NonZeroU32]>) -> Option<usize> {
    match path {
        None => Some(0),
        Some(p) => {
            let id = find(parts, p)?;
            if !parts[id].is(F_MESSAGE_RFC822) {
                return None;
            }
            parts[id].children.first().copied()
        }
    }
}

/// LF without CR becomes CRLF (how Dovecot serves what it stores with LF line ends).
pub(crate) fn crlf(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = data
        .iter()
        .enumerate()
        .any(|(i, &c)| c == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !bare {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &c) in data.iter().enumerate() {
        if c == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// The raw lines of a field, each followed by LF (the header filter's output form).
fn field_lines(b: &[u8], f: &header::Field, out: &mut Vec<u8>) {
    let mut p = f.start;
    while p < f.end {
        let (cend, end, nl) = header::line_at(b, p);
        out.extend_from_slice(&b[p..cend]);
        if nl > 0 {
            out.push(b'\n');
        }
        p = end;
    }
}

/// `istream-header-filter` with INCLUDE or EXCLUDE and HIDE_BODY, then CRLF line ends.
fn header_subset(
    b: &[u8],
    start: usize,
    names: &[AString<'_>],
    exclude: bool,
    add_missing_eoh: bool,
) -> Vec<u8> {
    let (fields, eoh) = header::fields(b, start);
    let mut out = Vec::new();
    let mut last_added_newline = false;
    for f in &fields {
        let matched = !f.name.is_empty()
            && names.iter().any(|n| {
                let n = n.as_ref();
                let n = match n.iter().position(|&c| c == 0) {
                    Some(i) => &n[..i],
                    None => n,
                };
                n.eq_ignore_ascii_case(&f.name)
            });
        if matched != exclude {
            field_lines(b, f, &mut out);
            last_added_newline = out.last() == Some(&b'\n');
        }
    }
    if eoh.is_some() {
        out.push(b'\n');
    } else if add_missing_eoh {
        if !last_added_newline {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    // Dovecot sends as much as its header parser reads as the header of the result.
    let (_, eoh2) = header::fields(&out, 0);
    if let Some(e) = eoh2 {
        out.truncate(e + header::eoh_len(&out, e));
    }
    crlf(&out).into_owned()
}

fn body_literal(
    out: &mut Vec<u8>,
    data: &[u8],
    partial: Option<(u32, NonZeroU32)>,
    nuls_to_0x80: bool,
    literal8: bool,
) {
    let (start, end) = match partial {
        None => (0, data.len()),
        Some((off, len)) => {
            let off = off as usize;
            if off >= data.len() {
                (0, 0)
            } else {
                (off, data.len().min(off.saturating_add(len.get() as usize)))
            }
        }
    };
    let slice = &data[start..end];
    if literal8 {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", slice.len()).as_bytes());
    if nuls_to_0x80 && slice.contains(&0) {
        out.extend(slice.iter().map(|&c| if c == 0 { 0x80 } else { c }));
    } else {
        out.extend_from_slice(slice);
    }
}

/// The bytes of a BODY[section] (before the partial range).
fn section_bytes<'b>(
    r: &'b Rendered<'_>,
    section: &Option<Section<'_>>,
) -> std::borrow::Cow<'b, [u8]> {
    let b = r.bytes;
    let parts = r.parts();
    let empty = std::borrow::Cow::Borrowed(&b""[..]);
    let range = |s: usize, e: usize| crlf(&b[s.min(b.len())..e.min(b.len())]);
    match section {
        None => crlf(b),
        Some(Section::Part(p)) => match find(parts, p.0.as_ref()) {
            Some(id) => range(parts[id].body_start(), parts[id].end()),
            None => empty,
        },
        Some(Section::Mime(p)) => match find(parts, p.0.as_ref()) {
            Some(id) => range(parts[id].pos, parts[id].body_start()),
            None => empty,
        },
        Some(Section::Header(p)) => match rfc822_child(parts, p.as_ref().map(|p| p.0.as_ref())) {
            Some(id) => range(parts[id].pos, parts[id].body_start()),
            None => empty,
        },
        Some(Section::Text(p)) => match rfc822_child(parts, p.as_ref().map(|p| p.0.as_ref())) {
            Some(id) => range(parts[id].body_start(), parts[id].end()),
            None => empty,
        },
        Some(Section::HeaderFields(p, names)) => {
            match rfc822_child(parts, p.as_ref().map(|p| p.0.as_ref())) {
                Some(id) => std::borrow::Cow::Owned(header_subset(
                    b,
                    parts[id].pos,
                    names.as_ref(),
                    false,
                    p.is_none(),
                )),
                None => empty,
            }
        }
        Some(Section::HeaderFieldsNot(p, names)) => {
            match rfc822_child(parts, p.as_ref().map(|p| p.0.as_ref())) {
                Some(id) => std::borrow::Cow::Owned(header_subset(
                    b,
                    parts[id].pos,
                    names.as_ref(),
                    true,
                    false,
                )),
                None => empty,
            }
        }
    }
}

pub(crate) fn root_envelope(b: &[u8]) -> Envelope {
    let mut e = Envelope::default();
    for f in header::fields(b, 0).0 {
        e.add(&f);
    }
    e
}

pub(crate) fn item(
    r: &Rendered<'_>,
    item: &MessageDataItemName<'_>,
    out: &mut Vec<u8>,
) -> Result<bool, FetchError> {
    let b = r.bytes;
    match item {
        MessageDataItemName::Flags
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Uid => return Ok(false),
        MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
            let extended = matches!(item, MessageDataItemName::BodyStructure);
            out.extend_from_slice(if extended {
                b"BODYSTRUCTURE ("
            } else {
                b"BODY ("
            });
            Writer {
                b,
                parts: r.parts(),
            }
            .write(out, 0, extended);
            out.push(b')');
        }
        MessageDataItemName::Envelope => {
            out.extend_from_slice(b"ENVELOPE (");
            structure::write_envelope(out, Some(&root_envelope(b)));
            out.push(b')');
        }
        MessageDataItemName::Rfc822Size => {
            out.extend_from_slice(format!("RFC822.SIZE {}", r.size()).as_bytes());
        }
        MessageDataItemName::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            body_literal(out, &section_bytes(r, &None), None, true, false);
        }
        MessageDataItemName::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            body_literal(
                out,
                &section_bytes(r, &Some(Section::Header(None))),
                None,
                true,
                false,
            );
        }
        MessageDataItemName::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            body_literal(
                out,
                &section_bytes(r, &Some(Section::Text(None))),
                None,
                true,
                false,
            );
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            out.extend_from_slice(&item_name(item));
            out.push(b' ');
            body_literal(out, &section_bytes(r, section), *partial, true, false);
        }
        MessageDataItemName::Binary {
            section, partial, ..
        } => {
            let (data, binary) = binary_bytes(r, section)?;
            out.extend_from_slice(&item_name(item));
            out.push(b' ');
            body_literal(out, &data, *partial, !binary, binary);
        }
        MessageDataItemName::BinarySize { section } => {
            // Dovecot sizes any part from a decoding of the whole message, so a part it cannot
            // decode anywhere fails every BINARY.SIZE of the message.
            binary_bytes(r, &[])?;
            let (data, _) = binary_bytes(r, section)?;
            out.extend_from_slice(&item_name(item));
            out.extend_from_slice(format!(" {}", data.len()).as_bytes());
        }
        #[allow(unreachable_patterns)]
        _ => return Ok(false),
    }
    Ok(true)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cte {
    Plain,
    Binary,
    Qp,
    Base64,
}

/// `message_decoder_parse_cte` of the last Content-Transfer-Encoding field (Dovecot's binary
/// code reads them all; a folded one it sees as empty).
fn part_cte(b: &[u8], pos: usize) -> Option<Cte> {
    let mut cte = Some(Cte::Plain);
    for f in header::fields(b, pos).0 {
        if !f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            continue;
        }
        if f.lines > 1 {
            cte = None;
            continue;
        }
        // Flags 0: a single LWSP after the colon is skipped, the tokenizer skips the rest.
        let line_end = header::line_at(b, f.start).0;
        let line = &b[f.start..line_end];
        let colon = line.iter().position(|&c| c == b':').unwrap_or(line.len());
        let v = &line[(colon + 1).min(line.len())..];
        let mut p = super::rfc822::Parser::new(v);
        p.skip_lwsp();
        let mut t = Vec::new();
        if p.parse_mime_token(&mut t) == 1 {
            p.skip_lwsp();
            if p.cur() != b';' || p.at_end() {
                cte = None;
                continue;
            }
        }
        cte = match t.to_ascii_lowercase().as_slice() {
            b"7bit" | b"8bit" => Some(Cte::Plain),
            b"base64" => Some(Cte::Base64),
            b"binary" => Some(Cte::Binary),
            b"quoted-printable" => Some(Cte::Qp),
            _ => None,
        };
    }
    cte
}

struct BinaryCtx<'a> {
    b: &'a [u8],
    parts: &'a [Part],
    out: Vec<u8>,
    copy_start: usize,
    has_nuls: bool,
    converted: bool,
}

impl BinaryCtx<'_> {
    fn copy_to(&mut self, end: usize) {
        if end > self.copy_start {
            let chunk = crlf(&self.b[self.copy_start..end]).into_owned();
            self.out.extend_from_slice(&chunk);
        }
    }

    fn add(&mut self, id: usize, include_hdr: bool) -> Result<(), FetchError> {
        let b = self.b;
        let part = &self.parts[id];
        let cte = part_cte(b, part.pos).ok_or(FetchError::UnknownCte)?;
        let (fields, eoh) = header::fields(b, part.pos);
        if fields
            .iter()
            .any(|f| f.name.contains(&0) || f.value.contains(&0))
        {
            self.has_nuls = true;
        }
        let converted = matches!(cte, Cte::Qp | Cte::Base64);
        if !include_hdr {
            // body only
        } else if converted {
            if self.copy_start != 0 {
                self.copy_to(part.pos);
            }
            // The header without its Content-Transfer-Encoding, "binary" announced at its
            // end.
            let mut h = Vec::new();
            for f in &fields {
                if !f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                    field_lines(b, f, &mut h);
                }
            }
            if eoh.is_some() {
                h.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n\n");
            }
            self.out.extend_from_slice(&crlf(&h));
        } else {
            self.copy_to(part.body_start());
        }
        self.copy_start = part.body_start();
        let part_end = part.end();
        if !part.children.is_empty() {
            for &c in &part.children {
                self.add(c, true)?;
            }
            self.copy_to(part_end);
            self.copy_start = part_end;
            return Ok(());
        }
        if part.body_len == 0 {
            self.copy_start = part_end;
            return Ok(());
        }
        let body = &b[part.body_start()..part_end];
        match cte {
            Cte::Plain | Cte::Binary => {
                if part.is(F_HAS_NULS) {
                    self.has_nuls = true;
                }
                let chunk = crlf(body).into_owned();
                self.out.extend_from_slice(&chunk);
            }
            Cte::Qp => {
                binary::quoted_printable(body, &mut self.out, false)?;
                self.converted = true;
            }
            Cte::Base64 => {
                binary::base64(body, &mut self.out)?;
                self.converted = true;
            }
        }
        self.copy_start = part_end;
        Ok(())
    }
}

/// BINARY[section] content and whether Dovecot calls it binary (a `~{n}` literal8).
fn binary_bytes(r: &Rendered<'_>, section: &[NonZeroU32]) -> Result<(Vec<u8>, bool), FetchError> {
    let parts = r.parts();
    let (id, include_hdr) = if section.is_empty() {
        (0, true)
    } else {
        match find(parts, section) {
            Some(id) => (id, false),
            None => return Ok((Vec::new(), false)),
        }
    };
    let mut ctx = BinaryCtx {
        b: r.bytes,
        parts,
        out: Vec::new(),
        copy_start: 0,
        has_nuls: false,
        converted: false,
    };
    if !include_hdr {
        ctx.copy_start = parts[id].body_start();
    }
    ctx.add(id, include_hdr)?;
    let binary = ctx.converted || ctx.has_nuls;
    Ok((ctx.out, binary))
}
