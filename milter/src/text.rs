//! Small text codecs: RFC 2047 subjects and display names, SMTP reply text, tenant slugs.

use mail_parser::MessageParser;

/// Decodes a raw `Subject` value (RFC 2047 encoded-words, folding) to text.
pub fn decode_subject(raw: &[u8]) -> String {
    let mut message = Vec::with_capacity(raw.len() + 16);
    crate::header::write_field(&mut message, b"Subject", raw);
    message.extend_from_slice(b"\r\n");
    MessageParser::default()
        .parse(&message[..])
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// Encodes `text` for an unstructured field value: unchanged when it is printable ASCII, else
/// as UTF-8 "B" encoded-words of at most 64 characters each, folded with LF + space (Postfix
/// writes each line with CRLF). The result has no leading space.
pub fn encode_unstructured(text: &str) -> String {
    if is_plain_ascii(text) {
        return text.to_string();
    }
    encoded_words(text)
}

/// A display name plus address for `From`: a quoted string when the name is printable ASCII,
/// else encoded-words (which may not appear inside quotes).
pub fn mailbox(display_name: &str, address: &str) -> String {
    if display_name.trim().is_empty() {
        return format!("<{address}>");
    }
    if is_plain_ascii(display_name) {
        let mut quoted = String::with_capacity(display_name.len() + 2);
        quoted.push('"');
        for c in display_name.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        format!("{quoted} <{address}>")
    } else {
        format!("{} <{address}>", encoded_words(display_name))
    }
}

fn is_plain_ascii(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
        && !text.contains("=?")
}

/// RFC 2047 says a line holding encoded-words should not exceed 76 characters; 39 bytes of
/// UTF-8 become 52 base64 characters, so a word is 64 characters and fits after "Subject: ".
const WORD_INPUT_BYTES: usize = 39;

fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if !chunk.is_empty() && chunk.len() + c.len_utf8() > WORD_INPUT_BYTES {
            words.push(word(&chunk));
            chunk.clear();
        }
        // Control characters would break the header line; they carry no meaning in a subject.
        chunk.push(if c.is_control() { ' ' } else { c });
    }
    if !chunk.is_empty() {
        words.push(word(&chunk));
    }
    words.join("\n ")
}

fn word(chunk: &str) -> String {
    format!(
        "=?UTF-8?B?{}?=",
        openssl::base64::encode_block(chunk.as_bytes())
    )
}

/// SMTP reply text: ASCII only (RFC 5321), German umlauts transliterated, other non-ASCII and
/// control characters replaced, `%` doubled (Postfix reads milter replies Sendmail-style, where
/// `%%` stands for `%`), at most 900 characters (indymilter allows 980 per line).
pub fn smtp_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if out.len() >= 900 {
            break;
        }
        match c {
            '%' => out.push_str("%%"),
            ' '..='~' => out.push(c),
            '\t' | '\r' | '\n' => out.push(' '),
            other => out.push_str(transliterate(other).unwrap_or("?")),
        }
    }
    out
}

fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ä' => "ae",
        'ö' => "oe",
        'ü' => "ue",
        'Ä' => "Ae",
        'Ö' => "Oe",
        'Ü' => "Ue",
        'ß' => "ss",
        'é' | 'è' | 'ê' => "e",
        '–' | '—' => "-",
        '„' | '“' | '”' => "\"",
        _ => return None,
    })
}

/// A short, stable, ASCII form of a tenant name for `X-de-mail-private-id`:
/// "Landeshauptstadt Magdeburg" -> "landeshauptstadt-magdeburg" (at most 64 characters).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars() {
        let piece: String = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase().to_string()
        } else if let Some(t) = transliterate(c).filter(|t| t.chars().all(char::is_alphanumeric)) {
            t.to_ascii_lowercase()
        } else {
            dash = !out.is_empty();
            continue;
        };
        if dash {
            out.push('-');
            dash = false;
        }
        out.push_str(&piece);
        if out.len() >= 64 {
            out.truncate(64);
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "tenant".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words_and_folding() {
        assert_eq!(
            decode_subject(b" =?UTF-8?Q?[Abholbest=C3=A4tigung]?=\n =?ISO-8859-1?Q?Geb=FChr?="),
            "[Abholbestätigung]Gebühr"
        );
        assert_eq!(decode_subject(b" plain text"), "plain text");
        assert_eq!(decode_subject(b""), "");
    }

    #[test]
    fn encodes_only_when_needed_and_round_trips() {
        assert_eq!(encode_unstructured("Bescheid 2024"), "Bescheid 2024");
        let long = "Bescheid über die Gebühren für das Jahr 2024 – bitte prüfen Sie die Anlage";
        let enc = encode_unstructured(long);
        for line in enc.split('\n') {
            assert!(line.len() <= 65, "{line}");
        }
        assert_eq!(decode_subject(format!(" {enc}").as_bytes()), long);
        // Text that looks like an encoded word is encoded so it is not misread.
        assert!(encode_unstructured("=?x?=").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn mailbox_quotes_or_encodes() {
        assert_eq!(
            mailbox("Amt \"Z\"", "a@b.de-mail.de"),
            "\"Amt \\\"Z\\\"\" <a@b.de-mail.de>"
        );
        let m = mailbox("Stadt Rüdersdorf", "a@b.de-mail.de");
        assert!(m.starts_with("=?UTF-8?B?") && m.ends_with(" <a@b.de-mail.de>"));
        assert_eq!(mailbox("", "a@b"), "<a@b>");
    }

    #[test]
    fn smtp_text_is_ascii_and_escaped() {
        assert_eq!(
            smtp_text("Größe 100% überschritten\r\n"),
            "Groesse 100%% ueberschritten  "
        );
        assert_eq!(smtp_text("日本"), "??");
        assert!(smtp_text(&"x".repeat(2000)).len() <= 900);
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slug("Landeshauptstadt Magdeburg"),
            "landeshauptstadt-magdeburg"
        );
        assert_eq!(slug("  Amt Zarrentin (Süd) "), "amt-zarrentin-sued");
        assert_eq!(slug("!!!"), "tenant");
        assert!(slug(&"a".repeat(100)).len() <= 64);
    }
}
