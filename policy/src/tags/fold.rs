//! How a subject is read for the comparison with our tags: what a clerk's eye cannot tell
//! apart must compare equal. The subject itself is only ever changed by removing text.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Default-ignorable code points (Unicode `Default_Ignorable_Code_Point`), the bidi controls
/// and the remaining control characters: invisible, or able to reorder what is shown, so
/// they can hide or fake a tag. They are removed from a subject we rewrite.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
        || (c.is_control() && !c.is_whitespace())
}

/// White space as a reader sees it (NBSP and the other Unicode spaces, and the blank
/// braille pattern, which renders as a space).
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{2800}'
}

/// The character NFKC starts `c` with (fullwidth `［` is `[`).
fn base(c: char) -> char {
    let mut first = None;
    decompose_compatible(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

const OPENERS: &str = "([{<«‹⁅〈《「『【〔〖〘〚❨❪❬❮❰❲❴⟦⟨⟪⟬⟮⦃⦅⦇⦉⦋⦍⦏⦑⦓⦕⦗⌈⌊⸢⸤⸦⸨";
const CLOSERS: &str = ")]}>»›⁆〉》」』】〕〗〙〛❩❫❭❯❱❳❵⟧⟩⟫⟭⟯⦄⦆⦈⦊⦌⦎⦐⦒⦔⦖⦘⌉⌋⸣⸥⸧⸩";

pub(super) fn is_opener(c: char) -> bool {
    OPENERS.contains(base(c))
}

pub(super) fn is_closer(c: char) -> bool {
    CLOSERS.contains(base(c))
}

/// Punctuation and brackets: they separate words but are not compared (a `[QES-gültig]` or
/// `⟦QES gültig⟧` reads as the tag).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || is_opener(c)
        || is_closer(c)
        || matches!(c as u32,
            0x00A1 | 0x00A7 | 0x00B6 | 0x00B7 | 0x00BF | 0x2010..=0x2027 | 0x2030..=0x205E
            | 0x2E00..=0x2E7F | 0x3001..=0x3003 | 0x301C..=0x301F | 0x30FB | 0xFE10..=0xFE19
            | 0xFE30..=0xFE6B | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40
            | 0xFF5B..=0xFF65)
}

/// Letters of other scripts, and Latin letters without a decomposition, that look like a
/// Latin letter (the Greek and Cyrillic capitals and lower-case letters that share a glyph).
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        'Α' | 'α' | 'А' | 'а' | 'ɑ' | 'æ' => 'a',
        'Β' | 'β' | 'В' | 'в' | 'Ь' => 'b',
        'Ϲ' | 'ϲ' | 'С' | 'с' => 'c',
        'ԁ' | 'đ' | 'ð' => 'd',
        'Ε' | 'ε' | 'Е' | 'е' => 'e',
        'ɡ' => 'g',
        'Η' | 'Н' | 'н' | 'Һ' | 'һ' | 'ħ' => 'h',
        'Ι' | 'ι' | 'І' | 'і' | 'Ӏ' | 'ӏ' | 'ı' | 'ł' => 'l',
        'ϳ' | 'Ј' | 'ј' => 'j',
        'Κ' | 'κ' | 'К' | 'к' => 'k',
        'Μ' | 'М' | 'м' => 'm',
        'Ν' | 'η' => 'n',
        'Ο' | 'ο' | 'О' | 'о' | 'ø' | 'Ø' => 'o',
        'Ρ' | 'ρ' | 'Р' | 'р' => 'p',
        'Ԛ' | 'ԛ' => 'q',
        'Ѕ' | 'ѕ' => 's',
        'Τ' | 'τ' | 'Т' | 'т' | 'ŧ' => 't',
        'μ' | 'υ' => 'u',
        'ν' => 'v',
        'Ԝ' | 'ԝ' => 'w',
        'Χ' | 'χ' | 'Х' | 'х' => 'x',
        'Υ' | 'У' | 'у' | 'Ү' | 'ү' => 'y',
        'Ζ' => 'z',
        _ => return None,
    })
}

/// The comparison form of one (decomposed, unmarked) character: lower case (full case
/// folding of `ß`), look-alike letters merged, `i`/`l`/`1` one class (a capital I and a small
/// l share a glyph in most fonts), `0` as `o`.
fn fold_char(c: char, out: &mut Vec<char>) {
    let lower: Vec<char> = match homoglyph(c) {
        Some(h) => vec![h],
        None => c.to_lowercase().collect(),
    };
    for l in lower {
        match l {
            'ß' => out.extend(['s', 's']),
            'i' | 'l' | '1' => out.push('l'),
            '0' => out.push('o'),
            other => out.push(homoglyph(other).unwrap_or(other)),
        }
    }
}

/// One compared character and the bytes of the text it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unit {
    pub c: char,
    pub start: usize,
    pub end: usize,
    /// White space or punctuation stands between this unit and the previous one.
    pub gap_before: bool,
}

/// The text as compared: NFKC (compatibility decomposition), diacritics and invisible
/// characters dropped, case folded, look-alikes merged; white space and punctuation only
/// separate words. German transliteration (`ue` for `ü`) and the glyph pairs `rn`/`m`,
/// `vv`/`w` compare equal too.
pub(super) fn units(text: &str) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    let mut gap = false;
    let mut folded = Vec::new();
    for (start, c) in text.char_indices() {
        let end = start + c.len_utf8();
        if is_invisible(c) {
            continue;
        }
        let mut parts = Vec::new();
        decompose_compatible(c, |d| parts.push(d));
        for d in parts {
            if is_combining_mark(d) || is_invisible(d) {
                continue;
            }
            if is_space(d) || is_punctuation(d) {
                gap = true;
                continue;
            }
            folded.clear();
            fold_char(d, &mut folded);
            for &f in &folded {
                out.push(Unit {
                    c: f,
                    start,
                    end,
                    gap_before: gap,
                });
                gap = false;
            }
        }
    }
    merge_pairs(out)
}

/// `rn` -> `m`, `vv` -> `w`, and the `e` of a transliterated umlaut (`ae`, `oe`, `ue`)
/// dropped, within a word.
fn merge_pairs(units: Vec<Unit>) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::with_capacity(units.len());
    for u in units {
        if let Some(prev) = out.last_mut()
            && !u.gap_before
        {
            let merged = match (prev.c, u.c) {
                ('r', 'n') => Some('m'),
                ('v', 'v') => Some('w'),
                ('a' | 'o' | 'u', 'e') => Some(prev.c),
                _ => None,
            };
            if let Some(m) = merged {
                prev.c = m;
                prev.end = u.end;
                continue;
            }
        }
        out.push(u);
    }
    out
}

/// The folded characters of `text`, for a tag.
pub(super) fn core(text: &str) -> Vec<char> {
    units(text).into_iter().map(|u| u.c).collect()
}

/// Decodes RFC 2047 encoded-words still in `text` after the header was decoded: one that is
/// not separated by white space, or sits in a word, is left alone by strict decoders but shown
/// decoded by some mail clients. White space between two encoded-words is dropped.
pub fn decode_encoded_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_word = false;
    while let Some(at) = rest.find("=?") {
        let (before, candidate) = rest.split_at(at);
        match encoded_word(candidate) {
            Some((decoded, len)) => {
                if !(after_word && before.chars().all(is_space)) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[len..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `=?charset?B|Q?text?=` at the start of `s`: the decoded text and the word's length. The
/// word is only found here; decoding it (charsets, B and Q) is mail-parser's, as for every
/// other header the gateway reads.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (encoding, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let payload = &body[..end];
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'=')
    };
    if !token(charset)
        || !matches!(encoding, "B" | "b" | "Q" | "q")
        || payload.bytes().any(|b| b.is_ascii_whitespace())
    {
        return None;
    }
    // `body` starts after `=?charset?X?`.
    let len = s.len() - body.len() + end + 2;
    let header = format!("Subject: {}\r\n\r\n", &s[..len]);
    let decoded = mail_parser::MessageParser::default()
        .parse(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))?;
    // Not decodable (bad base64, unknown charset): left as it stands.
    (!decoded.starts_with("=?")).then_some((decoded, len))
}
