//! RFC 822/2045 tokens as Dovecot 2.3's `rfc822-parser.c` and `rfc2231-parser.c` read them:
//! the same return conventions (1 = more data, 0 = end, -1 = broken) so that the callers can
//! follow Dovecot's decisions exactly.

/// atext chars are 1, alpha and digits 2, atext-but-MIME-tspecials 4 (Dovecot's table).
const ATEXT: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        t[c] = if b >= 0x80 || b.is_ascii_alphanumeric() {
            2
        } else {
            match b {
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'^' | b'_'
                | b'`' | b'{' | b'|' | b'}' | b'~' => 1,
                b'/' | b'=' | b'?' => 4,
                _ => 0,
            }
        };
        c += 1;
    }
    t
};

pub(crate) fn is_atext(c: u8) -> bool {
    ATEXT[c as usize] != 0
}

pub(crate) fn is_atext_non_tspecial(c: u8) -> bool {
    ATEXT[c as usize] & 3 != 0
}

/// U+FFFD, what Dovecot puts where a NUL was.
pub(crate) const NUL_REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

pub(crate) struct Parser<'a> {
    d: &'a [u8],
    pub(crate) pos: usize,
    /// Text of the last comment skipped, when asked for (address display names).
    pub(crate) last_comment: Option<Vec<u8>>,
    pub(crate) nul_replacement: bool,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(d: &'a [u8]) -> Parser<'a> {
        Parser {
            d,
            pos: 0,
            last_comment: None,
            nul_replacement: false,
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.d.len()
    }

    /// The current byte, NUL past the end (where Dovecot reads its terminator).
    pub(crate) fn cur(&self) -> u8 {
        self.d.get(self.pos).copied().unwrap_or(0)
    }

    fn more(&self) -> i32 {
        if self.pos < self.d.len() { 1 } else { 0 }
    }

    pub(crate) fn skip_comment(&mut self) -> i32 {
        let mut level = 1;
        if let Some(c) = self.last_comment.as_mut() {
            c.clear();
        }
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.d.len() {
            match self.d[self.pos] {
                0 => {
                    if self.nul_replacement
                        && let Some(c) = self.last_comment.as_mut()
                    {
                        c.extend_from_slice(&self.d[start..self.pos]);
                        c.extend_from_slice(NUL_REPLACEMENT);
                        start = self.pos + 1;
                    }
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if let Some(c) = self.last_comment.as_mut() {
                            c.extend_from_slice(&self.d[start..self.pos]);
                        }
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\n' => {
                    if let Some(c) = self.last_comment.as_mut() {
                        let mut end = self.pos;
                        if end > start && self.d[end - 1] == b'\r' {
                            end -= 1;
                        }
                        c.extend_from_slice(&self.d[start..end]);
                        start = self.pos + 1;
                    }
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.d.len() {
                        return -1;
                    }
                    if matches!(self.d[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        if let Some(c) = self.last_comment.as_mut() {
                            c.extend_from_slice(&self.d[start..self.pos - 1]);
                        }
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    pub(crate) fn skip_lwsp(&mut self) -> i32 {
        while self.pos < self.d.len() {
            match self.d[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() < 0 {
                        return -1;
                    }
                }
                _ => break,
            }
        }
        self.more()
    }

    pub(crate) fn parse_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.cur()) {
            return -1;
        }
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.d.len() {
            if !is_atext(self.d[self.pos]) {
                out.extend_from_slice(&self.d[start..self.pos]);
                return self.skip_lwsp();
            }
            self.pos += 1;
        }
        out.extend_from_slice(&self.d[start..]);
        0
    }

    pub(crate) fn parse_dot_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.cur()) {
            return -1;
        }
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.d.len() {
            if is_atext(self.d[self.pos]) {
                self.pos += 1;
                continue;
            }
            if start == self.pos {
                return -1;
            }
            out.extend_from_slice(&self.d[start..self.pos]);
            let ret = self.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
            if self.cur() != b'.' {
                return 1;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() <= 0 {
                return -1;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.d[start..]);
        0
    }

    pub(crate) fn parse_mime_token(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while self.pos < self.d.len() {
            let c = self.d[self.pos];
            if is_atext_non_tspecial(c) || c == b'.' {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.d[start..self.pos]);
            return self.skip_lwsp();
        }
        out.extend_from_slice(&self.d[start..]);
        0
    }

    pub(crate) fn parse_quoted_string(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.d.len() {
            match self.d[self.pos] {
                0 if self.nul_replacement => {
                    out.extend_from_slice(&self.d[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(&self.d[start..self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.d[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.d[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.d.len() {
                        return -1;
                    }
                    if matches!(self.d[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        out.extend_from_slice(&self.d[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    fn parse_atom_or_dot(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while self.pos < self.d.len() {
            let c = self.d[self.pos];
            if is_atext(c) || c == b'.' {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.d[start..self.pos]);
            return self.skip_lwsp();
        }
        out.extend_from_slice(&self.d[start..]);
        0
    }

    pub(crate) fn parse_phrase(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() {
            return 0;
        }
        if self.cur() == b'.' {
            return -1;
        }
        loop {
            let ret = if self.cur() == b'"' {
                self.parse_quoted_string(out)
            } else {
                self.parse_atom_or_dot(out)
            };
            if ret <= 0 {
                return ret;
            }
            let c = self.cur();
            if !is_atext(c) && c != b'"' && c != b'.' {
                break;
            }
            out.push(b' ');
        }
        self.skip_lwsp()
    }

    fn parse_domain_literal(&mut self, out: &mut Vec<u8>) -> i32 {
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.d.len() {
            match self.d[self.pos] {
                0 if self.nul_replacement => {
                    out.extend_from_slice(&self.d[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'[' => return -1,
                b']' => {
                    out.extend_from_slice(&self.d[start..=self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.d[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.d[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.d.len() {
                        return -1;
                    }
                    if matches!(self.d[self.pos], b'\r' | b'\n' | 0) {
                        out.extend_from_slice(&self.d[start..self.pos]);
                        start = self.pos;
                        self.pos -= 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    /// At '@'.
    pub(crate) fn parse_domain(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.cur() == b'[' {
            self.parse_domain_literal(out)
        } else {
            self.parse_dot_atom(out)
        }
    }

    pub(crate) fn parse_content_type(&mut self, out: &mut Vec<u8>) -> i32 {
        let pos0 = out.len();
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(out) <= 0 || out.len() == pos0 {
            return -1;
        }
        if self.cur() != b'/' || self.at_end() {
            out.truncate(pos0);
            return -1;
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            out.truncate(pos0);
            return -1;
        }
        out.push(b'/');
        let pos1 = out.len();
        let ret = self.parse_mime_token(out);
        if ret < 0 || out.len() == pos1 || (!self.at_end() && self.cur() != b';') {
            out.truncate(pos0);
            return -1;
        }
        ret
    }

    /// `; key=value`: (ret, key, value) with ret 0 at the end, -1 broken, 1 parsed.
    fn parse_content_param(&mut self) -> (i32, Vec<u8>, Vec<u8>) {
        let mut value = Vec::new();
        if self.at_end() {
            return (0, Vec::new(), value);
        }
        if self.cur() != b';' {
            return (-1, Vec::new(), value);
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return (-1, Vec::new(), value);
        }
        let mut key = Vec::new();
        if self.parse_mime_token(&mut key) <= 0 {
            return (-1, Vec::new(), value);
        }
        if self.cur() != b'=' || self.at_end() {
            return (-1, Vec::new(), value);
        }
        self.pos += 1;
        let mut ret = self.skip_lwsp();
        if ret <= 0 {
            // broken / no value
        } else if self.cur() == b'"' {
            ret = self.parse_quoted_string(&mut value);
        } else if self.cur() == b'=' {
            // Dovecot's workaround for name==?utf-8?b?...?=
            while self.pos < self.d.len()
                && !matches!(self.d[self.pos], b';' | b' ' | b'\t' | b'\r' | b'\n')
            {
                value.push(self.d[self.pos]);
                self.pos += 1;
            }
        } else {
            ret = self.parse_mime_token(&mut value);
        }
        (if ret < 0 { -1 } else { 1 }, key, value)
    }

    /// All `; key=value` parameters, RFC 2231 continuations merged (not decoded), in
    /// Dovecot's order: plain parameters first, then the merged ones sorted by name.
    pub(crate) fn parse_rfc2231(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        struct Cont {
            key: Vec<u8>,
            value: Vec<u8>,
            idx: u32,
            extended: bool,
        }
        let saved = self.nul_replacement;
        self.nul_replacement = true;
        let mut result = Vec::new();
        let mut conts: Vec<Cont> = Vec::new();
        // Dovecot reuses one struct, so "key*" keeps the previous index.
        let mut idx: u32 = 0;
        loop {
            let (ret, key, value) = self.parse_content_param();
            if ret == 0 {
                break;
            }
            if ret < 0 {
                if self.at_end() {
                    break;
                }
                self.pos += 1;
                continue;
            }
            let Some(star) = key.iter().position(|&c| c == b'*') else {
                result.push((key, value));
                continue;
            };
            let mut p = star;
            if p + 1 < key.len() {
                p += 1;
                idx = 0;
                while p < key.len() && key[p].is_ascii_digit() {
                    idx = idx.wrapping_mul(10).wrapping_add(u32::from(key[p] - b'0'));
                    p += 1;
                }
            }
            let extended = p < key.len() && key[p] == b'*';
            if extended {
                p += 1;
            }
            if p >= key.len() {
                conts.push(Cont {
                    key: key[..star].to_vec(),
                    value,
                    idx,
                    extended,
                });
            } else {
                result.push((key, value));
            }
        }
        self.nul_replacement = saved;
        if conts.is_empty() {
            return result;
        }
        conts.sort_by(|a, b| a.key.cmp(&b.key).then(a.idx.cmp(&b.idx)));
        let mut i = 0;
        while i < conts.len() {
            let mut ok = true;
            let mut have_extended = false;
            let mut next_idx = 0u32;
            let mut j = i;
            while j < conts.len() {
                if !conts[i].key.eq_ignore_ascii_case(&conts[j].key) {
                    break;
                }
                if conts[j].idx != next_idx {
                    ok = false;
                }
                if conts[j].extended {
                    have_extended = true;
                }
                next_idx = next_idx.wrapping_add(1);
                j += 1;
            }
            let next = j;
            if !ok {
                for c in &conts[i..next] {
                    let mut key = c.key.clone();
                    key.extend_from_slice(format!("*{}", c.idx).as_bytes());
                    if c.extended {
                        key.push(b'*');
                    }
                    result.push((key, c.value.clone()));
                }
            } else {
                let mut v = Vec::new();
                if !conts[i].extended && have_extended {
                    v.extend_from_slice(b"''");
                }
                for c in &conts[i..next] {
                    if !c.extended && have_extended {
                        for &b in &c.value {
                            if b == b'%' {
                                v.extend_from_slice(b"%25");
                            } else {
                                v.push(b);
                            }
                        }
                    } else {
                        v.extend_from_slice(&c.value);
                    }
                }
                let mut key = conts[i].key.clone();
                if have_extended {
                    key.push(b'*');
                }
                result.push((key, v));
            }
            i = next;
        }
        result
    }
}
