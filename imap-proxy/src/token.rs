//! A small tokenizer for the few IMAP commands and responses the proxy acts on (LOGIN, ID,
//! LIST, SELECT, STATUS, NAMESPACE, ...). Everything else travels as the original bytes, so
//! this never has to understand the whole grammar; what it cannot read is forwarded or answered
//! `BAD`, never dropped.

/// One argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// An atom (also NIL, numbers, `\Flags`, and `[...]` sections kept whole).
    Atom(Vec<u8>),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// A literal's bytes.
    Literal(Vec<u8>),
    List(Vec<Token>),
}

impl Token {
    /// The value of an astring or nstring argument (`NIL` is `None`).
    pub fn string(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) if a.eq_ignore_ascii_case(b"NIL") => None,
            Token::Atom(a) | Token::Quoted(a) | Token::Literal(a) => Some(a),
            Token::List(_) => None,
        }
    }

    pub fn is_atom(&self, word: &str) -> bool {
        matches!(self, Token::Atom(a) if a.eq_ignore_ascii_case(word.as_bytes()))
    }

    pub fn list(&self) -> Option<&[Token]> {
        match self {
            Token::List(l) => Some(l),
            _ => None,
        }
    }

    /// An atom as upper-case text (command names, options).
    pub fn upper(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(String::from_utf8_lossy(a).to_ascii_uppercase()),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Splits a whole message (the line with its literals and the CRLF) into tokens.
pub fn tokens(message: &[u8]) -> Result<Vec<Token>, ParseError> {
    let body = strip_crlf(message);
    let mut p = Parser { b: body, i: 0 };
    let out = p.sequence(None)?;
    Ok(out)
}

fn strip_crlf(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

const MAX_DEPTH: usize = 16;

impl Parser<'_> {
    fn sequence(&mut self, close: Option<u8>) -> Result<Vec<Token>, ParseError> {
        self.sequence_at(close, 0)
    }

    fn sequence_at(&mut self, close: Option<u8>, depth: usize) -> Result<Vec<Token>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError("lists nested too deeply".into()));
        }
        let mut out = Vec::new();
        loop {
            while self.i < self.b.len() && self.b[self.i] == b' ' {
                self.i += 1;
            }
            let Some(&c) = self.b.get(self.i) else {
                return match close {
                    None => Ok(out),
                    Some(_) => Err(ParseError("unterminated list".into())),
                };
            };
            match c {
                b')' if close == Some(b')') => {
                    self.i += 1;
                    return Ok(out);
                }
                b'(' => {
                    self.i += 1;
                    out.push(Token::List(self.sequence_at(Some(b')'), depth + 1)?));
                }
                b'"' => out.push(Token::Quoted(self.quoted()?)),
                b'{' | b'~' if self.literal_start() => out.push(Token::Literal(self.literal()?)),
                _ => out.push(Token::Atom(self.atom()?)),
            }
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.i += 1;
        let mut v = Vec::new();
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return Ok(v),
                b'\\' => match self.b.get(self.i) {
                    Some(&e @ (b'"' | b'\\')) => {
                        v.push(e);
                        self.i += 1;
                    }
                    _ => return Err(ParseError("bad escape in quoted string".into())),
                },
                b'\r' | b'\n' => return Err(ParseError("line break in quoted string".into())),
                _ => v.push(c),
            }
        }
        Err(ParseError("unterminated quoted string".into()))
    }

    fn literal_start(&self) -> bool {
        let rest = &self.b[self.i..];
        let rest = rest.strip_prefix(b"~").unwrap_or(rest);
        rest.first() == Some(&b'{')
    }

    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        if self.b[self.i] == b'~' {
            self.i += 1;
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        if self.b.get(self.i) == Some(&b'+') || self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if self.b.get(self.i) != Some(&b'}') || digits.is_empty() {
            return Err(ParseError("bad literal announcement".into()));
        }
        self.i += 1;
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ParseError("literal length out of range".into()))?;
        if self.b.get(self.i..self.i + 2) == Some(b"\r\n") {
            self.i += 2;
        } else if self.b.get(self.i) == Some(&b'\n') {
            self.i += 1;
        } else {
            return Err(ParseError(
                "literal announcement not at the end of a line".into(),
            ));
        }
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| ParseError("literal shorter than announced".into()))?;
        let v = self.b[self.i..end].to_vec();
        self.i = end;
        Ok(v)
    }

    fn atom(&mut self) -> Result<Vec<u8>, ParseError> {
        let start = self.i;
        let mut bracket = 0usize;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'[' => bracket += 1,
                b']' => bracket = bracket.saturating_sub(1),
                b' ' | b'(' | b')' if bracket == 0 => break,
                b'"' | b'{' if bracket == 0 && self.i == start => break,
                0..=0x1f | 0x7f => return Err(ParseError("control character in atom".into())),
                _ => {}
            }
            self.i += 1;
        }
        if self.i == start {
            let c = self.b[self.i];
            return Err(ParseError(format!(
                "unexpected {:?}",
                char::from(c).escape_default().to_string()
            )));
        }
        Ok(self.b[start..self.i].to_vec())
    }
}

/// Tag and command name (upper case) of a command's first line, and whether the command is
/// `UID <name>`; `None` when the line does not even have that shape.
pub fn head(line: &[u8]) -> Option<(Vec<u8>, String)> {
    let line = strip_crlf(line);
    let mut words = line.splitn(3, |&b| b == b' ');
    let tag = words.next()?;
    if tag.is_empty() || !tag.iter().all(|&b| is_tag_char(b)) {
        return None;
    }
    let mut name = String::from_utf8_lossy(words.next()?).to_ascii_uppercase();
    if name == "UID" {
        let sub = words.next()?.split(|&b| b == b' ').next()?;
        name = format!("UID {}", String::from_utf8_lossy(sub).to_ascii_uppercase());
    }
    if name.is_empty() {
        return None;
    }
    Some((tag.to_vec(), name))
}

fn is_tag_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
}

/// Writes `s` as an IMAP string: quoted when it can be, a literal otherwise.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|&c| (0x20..0x7f).contains(&c));
    if quotable {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// Whether the `{N}` ending this line sits inside a quoted string, where Dovecot does not see a
/// literal although a byte-level framer does. The proxy refuses such a line rather than frame
/// it differently from Dovecot.
pub fn announcement_inside_quotes(line: &[u8]) -> bool {
    let line = strip_crlf(line);
    let mut in_quotes = false;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            _ => {}
        }
        i += 1;
    }
    in_quotes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<Token> {
        tokens(s.as_bytes()).unwrap()
    }

    #[test]
    fn login_forms() {
        assert_eq!(
            t("a1 LOGIN alice \"p w\\\"x\"\r\n"),
            vec![
                Token::Atom(b"a1".to_vec()),
                Token::Atom(b"LOGIN".to_vec()),
                Token::Atom(b"alice".to_vec()),
                Token::Quoted(b"p w\"x".to_vec()),
            ]
        );
        let lit = t("a1 LOGIN {5+}\r\nalice {3}\r\npw!\r\n");
        assert_eq!(lit[2], Token::Literal(b"alice".to_vec()));
        assert_eq!(lit[3], Token::Literal(b"pw!".to_vec()));
    }

    #[test]
    fn lists_and_sections() {
        let v = t("1 list (subscribed) \"\" \"*\" return (special-use status (messages))\r\n");
        assert_eq!(v[2], Token::List(vec![Token::Atom(b"subscribed".to_vec())]));
        assert_eq!(v.len(), 7);
        let f = t("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)])");
        assert_eq!(
            f[3],
            Token::List(vec![Token::Atom(
                b"BODY.PEEK[HEADER.FIELDS (From To)]".to_vec()
            )])
        );
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        for bad in [
            "a LOGIN \"open",
            "a LOGIN {5}\r\nab",
            "a X ((((((((((((((((((((x))))))))))))))))))))",
            "a LOGIN {99999999999999999999}\r\n",
            "a LOGIN \"a\\x\"",
            "a LIST (x",
        ] {
            assert!(tokens(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn heads() {
        assert_eq!(
            head(b"A1 uid fetch 1:* FLAGS\r\n"),
            Some((b"A1".to_vec(), "UID FETCH".into()))
        );
        assert_eq!(head(b"A1 noop\r\n"), Some((b"A1".to_vec(), "NOOP".into())));
        assert_eq!(head(b"* noop\r\n"), None);
        assert_eq!(head(b"\r\n"), None);
    }

    #[test]
    fn quoted_announcement() {
        assert!(announcement_inside_quotes(b"a SEARCH SUBJECT \"x {5}\r\n"));
        assert!(!announcement_inside_quotes(b"a SEARCH SUBJECT {5}\r\n"));
        assert!(!announcement_inside_quotes(b"a LOGIN \"a\\\"\" {5}\r\n"));
    }

    #[test]
    fn strings_written_safely() {
        let mut o = Vec::new();
        write_string(&mut o, b"a\"b");
        assert_eq!(o, b"\"a\\\"b\"");
        let mut o = Vec::new();
        write_string(&mut o, "Bestätigung\r\n".as_bytes());
        assert!(o.starts_with(b"{14}\r\n"));
    }
}

#[cfg(test)]
mod mangled {
    use super::*;

    /// Random bytes and damaged commands never make the tokenizer panic (a panic ends the
    /// session); deterministic, so a failure can be replayed.
    #[test]
    fn random_input_never_panics() {
        let seeds: [&[u8]; 4] = [
            b"a1 LOGIN {5+}\r\nalice \"p\\\"w\"\r\n",
            b"12 list (subscribed) \"\" \"*\" return (special-use status (messages))\r\n",
            b"a ID (\"name\" \"x\" \"version\" NIL)\r\n",
            b"a FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To)] ~{3}\r\nabc)\r\n",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000usize {
            let mut m = seeds[round % seeds.len()].to_vec();
            for _ in 0..(1 + next() % 6) {
                let at = (next() as usize) % (m.len() + 1);
                if next() % 2 == 0 && at < m.len() {
                    m.remove(at);
                } else {
                    m.insert(
                        at,
                        b"{}()\"\\~+0123456789 \r\n\x00\xff"[(next() % 21) as usize],
                    );
                }
            }
            let _ = tokens(&m);
            let _ = head(&m);
            let _ = announcement_inside_quotes(&m);
            let _ = crate::mutf7::decode(&m);
            let mut f = crate::framing::Framer::new(256, 512);
            f.push(&m);
            while let Ok(Some(_)) = f.next() {}
        }
    }
}
