//! Address lists as Dovecot 2.3's `message-address.c` parses them (with
//! MESSAGE_ADDRESS_PARSE_FLAG_FILL_MISSING, non-strict dots), for ENVELOPE and for the
//! FROM/TO/CC/BCC search keys (which match the normalized `message_address_write` form).

use super::rfc822::{Parser, is_atext};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub domain: Option<Vec<u8>>,
    pub invalid_syntax: bool,
}

struct Ctx<'a> {
    p: Parser<'a>,
    addrs: Vec<Address>,
    addr: Address,
    s: Vec<u8>,
}

impl Ctx<'_> {
    fn add(&mut self) {
        self.addrs.push(std::mem::take(&mut self.addr));
    }

    fn parse_nonstrict_dot_atom(&mut self) -> i32 {
        let mut ret = -1;
        loop {
            while self.p.cur() == b'.' && !self.p.at_end() {
                self.s.push(b'.');
                self.p.pos += 1;
                if self.p.at_end() {
                    return 0;
                }
                ret = 1;
            }
            if self.p.cur() == b'@' {
                break;
            }
            ret = self.p.parse_atom(&mut self.s);
            if !(ret > 0 && self.p.cur() == b'.') {
                break;
            }
        }
        ret
    }

    fn parse_local_part(&mut self) -> i32 {
        self.s.clear();
        let ret = if self.p.cur() == b'"' {
            self.p.parse_quoted_string(&mut self.s)
        } else {
            self.parse_nonstrict_dot_atom()
        };
        if ret < 0 {
            return -1;
        }
        self.addr.mailbox = Some(self.s.clone());
        ret
    }

    fn parse_domain(&mut self) -> i32 {
        self.s.clear();
        let ret = self.p.parse_domain(&mut self.s);
        if ret < 0 {
            return -1;
        }
        self.addr.domain = Some(self.s.clone());
        ret
    }

    fn parse_domain_list(&mut self) -> i32 {
        self.s.clear();
        loop {
            if self.p.at_end() {
                return 0;
            }
            if self.p.cur() != b'@' {
                break;
            }
            if !self.s.is_empty() {
                self.s.push(b',');
            }
            self.s.push(b'@');
            let mut tmp = std::mem::take(&mut self.s);
            let ret = self.p.parse_domain(&mut tmp);
            self.s = tmp;
            if ret <= 0 {
                return ret;
            }
            while self.p.skip_lwsp() > 0 && self.p.cur() == b',' {
                self.p.pos += 1;
            }
        }
        self.addr.route = Some(self.s.clone());
        1
    }

    fn parse_angle_addr(&mut self) -> i32 {
        self.p.pos += 1;
        if self.p.skip_lwsp() <= 0 {
            return -1;
        }
        if self.p.cur() == b'@' {
            if self.parse_domain_list() > 0 && self.p.cur() == b':' && !self.p.at_end() {
                self.p.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if self.p.at_end() {
                    return -1;
                }
            }
            if self.p.skip_lwsp() <= 0 {
                return -1;
            }
        }
        if self.p.cur() == b'>' {
            // <> isn't a valid address
        } else {
            if self.parse_local_part() <= 0 {
                return -1;
            }
            if self.p.cur() == b'@' && !self.p.at_end() && self.parse_domain() <= 0 {
                return -1;
            }
        }
        if self.p.cur() != b'>' || self.p.at_end() {
            return -1;
        }
        self.p.pos += 1;
        self.p.skip_lwsp()
    }

    fn parse_name_addr(&mut self) -> i32 {
        self.s.clear();
        let mut tmp = std::mem::take(&mut self.s);
        let ret = self.p.parse_phrase(&mut tmp);
        self.s = tmp;
        if ret <= 0 || self.p.cur() != b'<' {
            return -1;
        }
        self.addr.name = if self.s.is_empty() {
            None
        } else {
            Some(self.s.clone())
        };
        if self.parse_angle_addr() < 0 {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
            self.addr.invalid_syntax = true;
        }
        if self.p.at_end() { 0 } else { 1 }
    }

    fn parse_addr_spec(&mut self) -> i32 {
        let mut ret2 = -2;
        if let Some(c) = self.p.last_comment.as_mut() {
            c.clear();
        }
        let quoted_string = self.p.cur() == b'"';
        let mut ret = self.parse_local_part();
        if ret <= 0 {
            self.addr.invalid_syntax = true;
        }
        if ret != 0 && !self.p.at_end() && self.p.cur() == b'@' {
            ret2 = self.parse_domain();
            if ret2 <= 0 {
                ret = ret2;
            }
        }
        let comment = self.p.last_comment.clone().unwrap_or_default();
        if !comment.is_empty() {
            self.addr.name = Some(comment);
        } else if ret2 == -2 {
            self.s.push(b' ');
            let orig = self.s.len();
            let mut tmp = std::mem::take(&mut self.s);
            let _ = self.p.parse_phrase(&mut tmp);
            self.s = tmp;
            if self.s.len() != orig {
                self.addr.mailbox = None;
                self.addr.name = Some(self.s.clone());
            } else if !quoted_string {
                self.addr.domain = Some(Vec::new());
            }
            self.addr.invalid_syntax = true;
            ret = -1;
        }
        ret
    }

    fn add_fixed(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
            self.addr.invalid_syntax = true;
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
            self.addr.invalid_syntax = true;
        }
        self.add();
    }

    fn parse_mailbox(&mut self) -> i32 {
        let start = self.p.pos;
        let mut ret = self.parse_name_addr();
        if ret < 0 {
            self.p.pos = start;
            ret = self.parse_addr_spec();
            if self.addr.invalid_syntax
                && self.addr.name.is_none()
                && self.addr.mailbox.is_some()
                && self.addr.domain.is_none()
            {
                self.addr.name = self.addr.mailbox.take();
            }
        }
        if ret < 0 {
            self.addr.invalid_syntax = true;
        }
        self.add_fixed();
        ret
    }

    fn parse_group(&mut self) -> i32 {
        self.s.clear();
        let mut tmp = std::mem::take(&mut self.s);
        let r = self.p.parse_phrase(&mut tmp);
        self.s = tmp;
        if r <= 0 || self.p.cur() != b':' {
            return -1;
        }
        self.p.pos += 1;
        let mut ret = self.p.skip_lwsp();
        if ret <= 0 {
            self.addr.invalid_syntax = true;
        }
        self.addr.mailbox = Some(self.s.clone());
        self.add();
        if ret > 0 && self.p.cur() != b';' {
            loop {
                let _ = self.parse_mailbox();
                if self.p.at_end() || self.p.cur() != b',' {
                    break;
                }
                self.p.pos += 1;
                if self.p.skip_lwsp() <= 0 {
                    ret = -1;
                    break;
                }
            }
        }
        if ret >= 0 {
            if self.p.at_end() || self.p.cur() != b';' {
                ret = -1;
            } else {
                self.p.pos += 1;
                ret = self.p.skip_lwsp();
            }
        }
        if ret < 0 {
            self.addr.invalid_syntax = true;
        }
        self.add();
        if ret == 0 { 0 } else { 1 }
    }

    fn parse_address(&mut self) -> i32 {
        let start = self.p.pos;
        let ret = self.parse_group();
        if ret < 0 {
            self.p.pos = start;
            return self.parse_mailbox();
        }
        ret
    }

    fn parse_address_list(&mut self) {
        loop {
            if self.parse_address() == 0 {
                break;
            }
            if self.p.at_end() || self.p.cur() != b',' {
                break;
            }
            self.p.pos += 1;
            let ret = self.p.skip_lwsp();
            if ret <= 0 {
                if ret < 0 {
                    self.add_fixed();
                }
                break;
            }
        }
    }
}

/// `message_address_parse(..., FILL_MISSING)`.
pub(crate) fn parse(value: &[u8]) -> Vec<Address> {
    let mut p = Parser::new(value);
    p.last_comment = Some(Vec::new());
    p.nul_replacement = true;
    let mut ctx = Ctx {
        p,
        addrs: Vec::new(),
        addr: Address::default(),
        s: Vec::new(),
    };
    if ctx.p.skip_lwsp() > 0 {
        ctx.parse_address_list();
    }
    ctx.addrs
}

fn maybe_escape(out: &mut Vec<u8>, s: &[u8], escape_dot: bool) {
    if s.iter().all(|&c| is_atext(c) || (!escape_dot && c == b'.')) {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for &c in s {
        if matches!(c, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

/// `message_address_write`: the normalized form SEARCH FROM/TO/CC/BCC match against.
pub(crate) fn write(addrs: &[Address]) -> Vec<u8> {
    let mut out = Vec::new();
    if addrs.is_empty() {
        return out;
    }
    if addrs[0].mailbox.is_none() && addrs[0].domain.is_none() {
        out.extend_from_slice(b"<>");
        return out;
    }
    let mut first = true;
    let mut in_group = false;
    for a in addrs {
        if first {
            first = false;
        } else {
            out.extend_from_slice(b", ");
        }
        match &a.domain {
            None => {
                if !in_group {
                    match &a.mailbox {
                        Some(m) if !m.is_empty() => {
                            if contains(m, b"=?") {
                                out.extend_from_slice(m);
                            } else {
                                maybe_escape(&mut out, m, true);
                            }
                        }
                        _ => out.extend_from_slice(b"\"\""),
                    }
                    out.extend_from_slice(b": ");
                    first = true;
                } else {
                    if out.ends_with(b", ") {
                        out.truncate(out.len() - 2);
                    } else if out.ends_with(b": ") {
                        out.truncate(out.len() - 1);
                    }
                    out.push(b';');
                }
                in_group = !in_group;
            }
            Some(domain) => {
                let mailbox = a.mailbox.as_deref().unwrap_or_default();
                if let Some(name) = &a.name {
                    if contains(name, b"=?") {
                        out.extend_from_slice(name);
                    } else {
                        maybe_escape(&mut out, name, true);
                    }
                }
                if a.route.is_some() || !mailbox.is_empty() || !domain.is_empty() {
                    if a.name.as_ref().is_some_and(|n| !n.is_empty()) {
                        out.push(b' ');
                    }
                    out.push(b'<');
                    if let Some(r) = &a.route {
                        out.extend_from_slice(r);
                        out.push(b':');
                    }
                    if mailbox.is_empty() {
                        out.extend_from_slice(b"\"\"");
                    } else {
                        maybe_escape(&mut out, mailbox, false);
                    }
                    if !domain.is_empty() {
                        out.push(b'@');
                        out.extend_from_slice(domain);
                    }
                    out.push(b'>');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Address {
        let a = parse(v.as_bytes());
        assert_eq!(a.len(), 1, "{v}: {a:?}");
        a.into_iter().next().unwrap()
    }

    #[test]
    fn common_forms() {
        let a = one("Amt <amt@example.de>");
        assert_eq!(a.name.as_deref(), Some(&b"Amt"[..]));
        assert_eq!(a.mailbox.as_deref(), Some(&b"amt"[..]));
        assert_eq!(a.domain.as_deref(), Some(&b"example.de"[..]));
        let a = one("amt@example.de (Das Amt)");
        assert_eq!(a.name.as_deref(), Some(&b"Das Amt"[..]));
        let a = one("\"Doe, John\" <j@x.y>");
        assert_eq!(a.name.as_deref(), Some(&b"Doe, John"[..]));
        let g = parse(b"undisclosed-recipients:;");
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].mailbox.as_deref(),
            Some(&b"undisclosed-recipients"[..])
        );
        assert_eq!(g[1], Address::default());
        let a = one("justname");
        assert_eq!(a.mailbox.as_deref(), Some(&b"justname"[..]));
        assert_eq!(a.domain.as_deref(), Some(&b"MISSING_DOMAIN"[..]));
    }

    #[test]
    fn write_normalizes() {
        assert_eq!(write(&parse(b"Amt <amt@x.de>")), b"Amt <amt@x.de>");
        assert_eq!(write(&parse(b"amt@x.de")), b"<amt@x.de>");
        assert_eq!(write(&parse(b"\"A, B\" <a@b>")), b"\"A, B\" <a@b>");
    }
}
