//! The MIME structure of a message exactly as Dovecot 2.3's `message-parser.c` builds it
//! (boundary prefix matching, where the line breaks around boundaries go, the nesting and part
//! count limits), plus the per-part data of `message-part-data.c`.

use super::address::{self, Address};
use super::header::{self, Field};
use super::rfc822::Parser;

pub(crate) const F_MULTIPART: u16 = 0x01;
pub(crate) const F_MULTIPART_DIGEST: u16 = 0x02;
pub(crate) const F_MESSAGE_RFC822: u16 = 0x04;
pub(crate) const F_TEXT: u16 = 0x08;
pub(crate) const F_HAS_NULS: u16 = 0x20;
pub(crate) const F_IS_MIME: u16 = 0x40;
pub(crate) const F_OVERFLOW: u16 = 0x80;

/// MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS: deeper parts are not parsed, so hostile
/// nesting costs neither stack nor time.
pub(crate) const MAX_NESTED_PARTS: usize = 100;
/// MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS.
pub(crate) const MAX_TOTAL_PARTS: usize = 10000;
/// BOUNDARY_STRING_MAX_LEN: longer boundaries are truncated.
const BOUNDARY_MAX_LEN: usize = 70 + 10;
/// BOUNDARY_END_MAX_LEN.
const BOUNDARY_END_MAX_LEN: usize = BOUNDARY_MAX_LEN + 2 + 2;

#[derive(Clone, Debug, Default)]
pub(crate) struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

impl Envelope {
    /// `message_part_envelope_parse_from_header` for one field.
    pub(crate) fn add(&mut self, f: &Field) {
        let n = f.name.as_slice();
        let addrs = if n.eq_ignore_ascii_case(b"from") {
            &mut self.from
        } else if n.eq_ignore_ascii_case(b"sender") {
            &mut self.sender
        } else if n.eq_ignore_ascii_case(b"reply-to") {
            &mut self.reply_to
        } else if n.eq_ignore_ascii_case(b"to") {
            &mut self.to
        } else if n.eq_ignore_ascii_case(b"cc") {
            &mut self.cc
        } else if n.eq_ignore_ascii_case(b"bcc") {
            &mut self.bcc
        } else {
            let slot = if n.eq_ignore_ascii_case(b"date") {
                &mut self.date
            } else if n.eq_ignore_ascii_case(b"subject") {
                &mut self.subject
            } else if n.eq_ignore_ascii_case(b"in-reply-to") {
                &mut self.in_reply_to
            } else if n.eq_ignore_ascii_case(b"message-id") {
                &mut self.message_id
            } else {
                return;
            };
            // The last field wins, as in Dovecot.
            *slot = Some(header_strdup(&f.value));
            return;
        };
        // Several fields merge as if comma separated (Dovecot's choice against spoofing).
        addrs.extend(address::parse(&f.value));
    }
}

/// `message_header_strdup`: NULs become U+FFFD.
pub(crate) fn header_strdup(v: &[u8]) -> Vec<u8> {
    if !v.contains(&0) {
        return v.to_vec();
    }
    let mut out = Vec::with_capacity(v.len() + 4);
    for &c in v {
        if c == 0 {
            out.extend_from_slice(super::rfc822::NUL_REPLACEMENT);
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, Default)]
pub(crate) struct PartData {
    pub content_type: Option<Vec<u8>>,
    pub content_subtype: Option<Vec<u8>>,
    pub content_type_params: Params,
    pub content_transfer_encoding: Option<Vec<u8>>,
    pub content_id: Option<Vec<u8>>,
    pub content_description: Option<Vec<u8>>,
    pub content_disposition: Option<Vec<u8>>,
    pub content_disposition_params: Params,
    pub content_md5: Option<Vec<u8>>,
    pub content_language: Option<Vec<Vec<u8>>>,
    pub content_location: Option<Vec<u8>>,
    /// Only for the child of a message/rfc822 part.
    pub envelope: Option<Envelope>,
}

impl PartData {
    fn add_content_field(&mut self, f: &Field) {
        let name = &f.name[8..];
        let v = &f.value;
        if name.eq_ignore_ascii_case(b"id") {
            if self.content_id.is_none() {
                self.content_id = Some(header_strdup(v));
            }
        } else if name.eq_ignore_ascii_case(b"md5") {
            if self.content_md5.is_none() {
                self.content_md5 = Some(header_strdup(v));
            }
        } else if name.eq_ignore_ascii_case(b"type") {
            if self.content_type.is_none() {
                self.parse_content_type(v);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if self.content_transfer_encoding.is_none() {
                let mut p = Parser::new(v);
                p.skip_lwsp();
                let mut s = Vec::new();
                if p.parse_mime_token(&mut s) >= 0 && p.skip_lwsp() == 0 && !s.is_empty() {
                    self.content_transfer_encoding = Some(s);
                }
            }
        } else if name.eq_ignore_ascii_case(b"language") {
            if self.content_language.is_none() {
                let mut p = Parser::new(v);
                let mut langs = Vec::new();
                p.skip_lwsp();
                loop {
                    let mut s = Vec::new();
                    if p.parse_atom(&mut s) < 0 {
                        break;
                    }
                    langs.push(s);
                    if p.at_end() || p.cur() != b',' {
                        break;
                    }
                    p.pos += 1;
                    p.skip_lwsp();
                }
                if !langs.is_empty() {
                    self.content_language = Some(langs);
                }
            }
        } else if name.eq_ignore_ascii_case(b"location") {
            if self.content_location.is_none() {
                self.content_location = Some(header_strdup(v));
            }
        } else if name.eq_ignore_ascii_case(b"description") {
            if self.content_description.is_none() {
                self.content_description = Some(header_strdup(v));
            }
        } else if name.eq_ignore_ascii_case(b"disposition")
            && self.content_disposition_params.is_empty()
        {
            // Dovecot re-reads a later Content-Disposition while no parameters were found.
            let mut p = Parser::new(v);
            p.skip_lwsp();
            let mut s = Vec::new();
            if p.parse_mime_token(&mut s) >= 0 {
                self.content_disposition = Some(s);
                self.content_disposition_params = p.parse_rfc2231();
            }
        }
    }

    fn parse_content_type(&mut self, v: &[u8]) {
        let mut p = Parser::new(v);
        p.skip_lwsp();
        let mut s = Vec::new();
        let ret = p.parse_content_type(&mut s);
        match s.iter().position(|&c| c == b'/') {
            Some(i) => {
                self.content_subtype = Some(s[i + 1..].to_vec());
                self.content_type = Some(s[..i].to_vec());
            }
            None => {
                self.content_type = Some(s);
                self.content_subtype = Some(Vec::new());
            }
        }
        if ret >= 0 {
            self.content_type_params = p.parse_rfc2231();
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Part {
    /// Offset of the part's header.
    pub pos: usize,
    /// Header length (the eoh line included, unless a boundary cut the header short).
    pub hdr_len: usize,
    /// Body length; the body starts at `pos + hdr_len` as Dovecot reads it.
    pub body_len: usize,
    pub flags: u16,
    pub data: PartData,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
}

impl Part {
    pub(crate) fn body_start(&self) -> usize {
        self.pos + self.hdr_len
    }
    pub(crate) fn end(&self) -> usize {
        self.pos + self.hdr_len + self.body_len
    }
    pub(crate) fn is(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

struct Boundary {
    part: usize,
    text: Vec<u8>,
    epilogue_found: bool,
}

struct Ctx<'a> {
    b: &'a [u8],
    parts: Vec<Part>,
    boundaries: Vec<Boundary>,
    nested: usize,
    total: usize,
    /// Where each open part's body started (for the body length at finish).
    body_start: Vec<usize>,
}

enum Next {
    Header(usize),
    ToBoundary(usize),
    ToEof,
}

impl Ctx<'_> {
    fn append_child(&mut self, parent: usize, pos: usize) -> usize {
        let id = self.parts.len();
        self.parts.push(Part {
            pos,
            parent: Some(parent),
            ..Part::default()
        });
        self.body_start.push(0);
        self.parts[parent].children.push(id);
        self.nested += 1;
        self.total += 1;
        id
    }

    fn too_many_nested(&self) -> bool {
        self.nested + 1 >= MAX_NESTED_PARTS
    }

    /// `boundary_line_find` at line start `p`: index into `boundaries`.
    fn boundary_line_find(&mut self, cur: usize, p: usize) -> Option<usize> {
        let b = self.b;
        if b.len() < p + 2 || b[p] != b'-' || b[p + 1] != b'-' {
            return None;
        }
        if self.total >= MAX_TOTAL_PARTS {
            self.parts[cur].flags |= F_OVERFLOW;
            return None;
        }
        let data = &b[p + 2..];
        let (find_size, trailing_dashes) = match data.iter().position(|&c| c == b'\n') {
            Some(lf) => {
                let mut n = lf;
                if n > 0 && data[n - 1] == b'\r' {
                    n -= 1;
                }
                (n, n > 2 && data[n - 1] == b'-' && data[n - 2] == b'-')
            }
            None => (data.len().min(BOUNDARY_END_MAX_LEN), false),
        };
        let line = &data[..find_size];
        let mut best: Option<usize> = None;
        for i in (0..self.boundaries.len()).rev() {
            let t = &self.boundaries[i].text;
            if t.len() <= line.len()
                && &line[..t.len()] == t.as_slice()
                && best.is_none_or(|bi| self.boundaries[bi].text.len() < t.len())
            {
                best = Some(i);
                if t.len() == line.len() || (t.len() + 2 == line.len() && trailing_dashes) {
                    break;
                }
            }
        }
        let bi = best?;
        let len = self.boundaries[bi].text.len();
        self.boundaries[bi].epilogue_found = data.len() >= len + 2 && &data[len..len + 2] == b"--";
        Some(bi)
    }

    fn finish(&mut self, part: usize, at: usize) {
        let start = self.body_start[part];
        self.parts[part].body_len = at.saturating_sub(start);
        self.nested = self.nested.saturating_sub(1);
    }

    /// Parses the header of `cur` from `p`; returns what comes next.
    fn header(&mut self, cur: usize, mut p: usize) -> Next {
        let b = self.b;
        let mut last_boundary: Option<Vec<u8>> = None;
        let mut seen_content_type = false;
        let mut multipart = false;
        let mut prev_newline = 0usize;
        let mut seen_eoh = false;
        let mut header_nuls = false;
        let parent_rfc822 = self.parts[cur]
            .parent
            .is_some_and(|pp| self.parts[pp].is(F_MESSAGE_RFC822));
        let mut data: Option<PartData> = None;
        let mut hdr_end;
        loop {
            if p < b.len()
                && header::is_eoh(b, p)
                && last_boundary.is_some()
                && self.parts[cur].is(F_IS_MIME)
            {
                if !self.too_many_nested() {
                    let text = last_boundary.take().unwrap_or_default();
                    self.boundaries.push(Boundary {
                        part: cur,
                        text,
                        epilogue_found: false,
                    });
                    multipart = true;
                } else {
                    self.parts[cur].flags |= F_OVERFLOW;
                    self.parts[cur].flags &= !F_MULTIPART;
                }
            }
            hdr_end = p;
            if p < b.len()
                && !self.boundaries.is_empty()
                && let Some(bi) = self.boundary_line_find(cur, p)
                && self.boundaries[bi].part != cur
            {
                // The header ends at a boundary; the previous line break belongs to it.
                if prev_newline > 0 {
                    hdr_end = p - prev_newline;
                }
                break;
            }
            if seen_eoh || p >= b.len() {
                break;
            }
            if header::is_eoh(b, p) {
                let n = header::eoh_len(b, p);
                p += n;
                prev_newline = n;
                seen_eoh = true;
                continue;
            }
            let f = header::field_at(b, p);
            p = f.end;
            prev_newline = f.last_newline;
            if f.value.contains(&0) || f.name.contains(&0) {
                header_nuls = true;
            }
            if f.name.eq_ignore_ascii_case(b"mime-version") {
                self.parts[cur].flags |= F_IS_MIME;
            } else if f.name.eq_ignore_ascii_case(b"content-type") {
                self.parts[cur].flags |= F_IS_MIME;
                if !seen_content_type {
                    seen_content_type = true;
                    self.content_type_flags(cur, &f, &mut last_boundary);
                }
            }
            let is_content = f.name.len() >= 8 && f.name[..8].eq_ignore_ascii_case(b"content-");
            if parent_rfc822 || is_content {
                let d = data.get_or_insert_with(PartData::default);
                if is_content {
                    d.add_content_field(&f);
                }
                if parent_rfc822 {
                    d.envelope.get_or_insert_with(Envelope::default).add(&f);
                }
            }
        }
        let part = &mut self.parts[cur];
        part.hdr_len = hdr_end - part.pos;
        if !part.is(F_IS_MIME) {
            part.flags = 0;
        }
        if header_nuls {
            part.flags |= F_HAS_NULS;
        }
        if !seen_content_type || !part.is(F_IS_MIME) {
            let digest_parent = part
                .parent
                .is_some_and(|pp| self.parts[pp].is(F_MULTIPART_DIGEST));
            let part = &mut self.parts[cur];
            if digest_parent {
                part.flags |= F_MESSAGE_RFC822;
            } else {
                part.flags |= F_TEXT;
            }
        }
        let part = &mut self.parts[cur];
        let mut d = data.unwrap_or_default();
        if !part.is(F_IS_MIME) {
            // Without MIME-Version the Content-* fields do not count.
            d = PartData {
                envelope: d.envelope,
                ..PartData::default()
            };
        }
        if parent_rfc822 && d.envelope.is_none() {
            d.envelope = Some(Envelope::default());
        }
        part.data = d;
        self.body_start[cur] = p;
        if multipart {
            Next::ToBoundary(p)
        } else if !self.parts[cur].is(F_MESSAGE_RFC822) {
            if self.boundaries.is_empty() {
                Next::ToEof
            } else {
                Next::ToBoundary(p)
            }
        } else if !self.too_many_nested() && self.total < MAX_TOTAL_PARTS {
            let child = self.append_child(cur, p);
            Next::Header(child)
        } else {
            let part = &mut self.parts[cur];
            part.flags |= F_OVERFLOW;
            part.flags &= !F_MESSAGE_RFC822;
            if self.boundaries.is_empty() {
                Next::ToEof
            } else {
                Next::ToBoundary(p)
            }
        }
    }

    fn content_type_flags(&mut self, cur: usize, f: &Field, last_boundary: &mut Option<Vec<u8>>) {
        let mut p = Parser::new(&f.value);
        p.skip_lwsp();
        let mut ct = Vec::new();
        let ret = p.parse_content_type(&mut ct);
        let part = &mut self.parts[cur];
        if ct.eq_ignore_ascii_case(b"message/rfc822") {
            part.flags |= F_MESSAGE_RFC822;
        } else if ct.len() >= 4
            && ct[..4].eq_ignore_ascii_case(b"text")
            && (ct.len() == 4 || ct[4] == b'/')
        {
            part.flags |= F_TEXT;
        } else if ct.len() >= 10 && ct[..10].eq_ignore_ascii_case(b"multipart/") {
            part.flags |= F_MULTIPART;
            if ct[10..].eq_ignore_ascii_case(b"digest") {
                part.flags |= F_MULTIPART_DIGEST;
            }
        }
        if ret < 0 || !part.is(F_MULTIPART) || last_boundary.is_some() {
            return;
        }
        for (k, v) in p.parse_rfc2231() {
            if k.eq_ignore_ascii_case(b"boundary") {
                let mut v = v;
                v.truncate(BOUNDARY_MAX_LEN);
                // A C string: it ends at a NUL.
                if let Some(n) = v.iter().position(|&c| c == 0) {
                    v.truncate(n);
                }
                *last_boundary = Some(v);
                break;
            }
        }
    }

    /// Reads the body of `cur` from line start `p` until a boundary; returns the part the
    /// parse continues in and what comes next.
    fn body_to_boundary(&mut self, cur: usize, p: usize) -> (usize, Next) {
        let b = self.b;
        if let Some(bi) = self.boundary_line_find(cur, p) {
            return self.part_finish(cur, bi, p, true);
        }
        let mut q = p;
        while let Some(n) = b[q..].iter().position(|&c| c == b'\n') {
            let lf = q + n;
            let next = lf + 1;
            if let Some(bi) = self.boundary_line_find(cur, next) {
                let start = if lf > p && b[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                return self.part_finish(cur, bi, start, false);
            }
            q = next;
        }
        (cur, Next::ToEof)
    }

    fn part_finish(
        &mut self,
        mut cur: usize,
        bi: usize,
        at: usize,
        first_line: bool,
    ) -> (usize, Next) {
        let b = self.b;
        let bpart = self.boundaries[bi].part;
        while cur != bpart {
            self.finish(cur, at);
            cur = self.parts[cur].parent.unwrap_or(bpart);
        }
        let epilogue = self.boundaries[bi].epilogue_found;
        let len = self.boundaries[bi].text.len();
        if epilogue {
            self.boundaries.truncate(bi);
        } else {
            self.boundaries.truncate(bi + 1);
        }
        let nl = if first_line {
            0
        } else if b[at] == b'\r' {
            2
        } else {
            1
        };
        let after = at + nl + 2 + len + if epilogue { 2 } else { 0 };
        // The rest of the boundary line belongs to the multipart.
        let line_end = match b[after.min(b.len())..].iter().position(|&c| c == b'\n') {
            Some(n) => after + n + 1,
            None => return (cur, Next::ToEof),
        };
        if self.boundaries.last().is_some_and(|t| t.part == cur) {
            let child = self.append_child(cur, line_end);
            self.parts[child].flags |= F_IS_MIME;
            (child, Next::Header(child))
        } else if self.boundaries.is_empty() {
            (cur, Next::ToEof)
        } else {
            (cur, Next::ToBoundary(line_end))
        }
    }
}

/// Parses `b` into Dovecot's part tree; index 0 is the message itself.
pub(crate) fn parse(b: &[u8]) -> Vec<Part> {
    let mut ctx = Ctx {
        b,
        parts: vec![Part::default()],
        boundaries: Vec::new(),
        nested: 0,
        total: 1,
        body_start: vec![0],
    };
    let mut cur = 0;
    let mut next = Next::Header(0);
    loop {
        next = match next {
            Next::Header(part) => {
                cur = part;
                ctx.header(part, ctx.parts[part].pos)
            }
            Next::ToBoundary(p) => {
                let (c, n) = ctx.body_to_boundary(cur, p);
                cur = c;
                n
            }
            Next::ToEof => break,
        };
    }
    // Every part still open ends with the data.
    let mut p = Some(cur);
    while let Some(id) = p {
        ctx.finish(id, b.len());
        p = ctx.parts[id].parent;
    }
    for part in &mut ctx.parts {
        if b[part.body_start().min(b.len())..part.end().min(b.len())].contains(&0) {
            part.flags |= F_HAS_NULS;
        }
    }
    ctx.parts
}
