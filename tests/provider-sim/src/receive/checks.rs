//! What a TR-01201 provider checks in a submitted message (PVD_IO §3.1, PVD_FU §3.3): it parses,
//! it has a Message-ID, its From is the sending account, and the option fields are well formed.

use mail_parser::MessageParser;

use super::DeMailOptions;
use super::headers::{self, Field};

/// Longest `X-de-mail-private-id` value, in characters (PVD_IO §3.1).
pub(crate) const MAX_PRIVATE_ID_CHARS: usize = 1024;

const OPTION_FIELDS: [&str; 5] = [
    "X-de-mail-confirmation-of-dispatch",
    "X-de-mail-confirmation-of-receipt",
    "X-de-mail-confirmation-of-retrieve",
    "X-de-mail-authoritative",
    "X-de-mail-private",
];

/// The spec spelling and the one a real client (DWD's AFD) uses.
const PRIVATE_ID_FIELDS: [&str; 2] = ["X-de-mail-private-id", "X-de-mail-privat-id"];

/// What the simulator keeps from an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageFacts {
    pub message_id: String,
    pub private_id: Option<String>,
    pub subject: Option<String>,
    pub options: DeMailOptions,
}

/// A rejected message: the complete reply line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal(pub String);

fn format_error(text: impl std::fmt::Display) -> Refusal {
    Refusal(format!("554 5.6.0 {text}"))
}

/// Runs every check on `data` (CRLF line ends), sent with envelope sender `mail_from`.
pub(crate) fn check_message(data: &[u8], mail_from: &str) -> Result<MessageFacts, Refusal> {
    let fields = headers::parse(data).map_err(|e| {
        format_error(format_args!(
            "Malformed header section, line {}: {}",
            e.line, e.what
        ))
    })?;
    let Some(parsed) = MessageParser::default().parse(data) else {
        return Err(format_error("Message cannot be parsed as RFC 5322"));
    };

    let message_id = single(&fields, "Message-ID")?
        .filter(|f| !f.value.is_empty())
        .ok_or_else(|| format_error("Message-ID header field missing"))?;
    check_from(&fields, mail_from)?;
    let options = check_options(&fields)?;
    let private_id = check_private_id(&fields)?;
    Ok(MessageFacts {
        message_id: String::from_utf8_lossy(&message_id.value).into_owned(),
        private_id,
        subject: parsed.subject().map(str::to_string),
        options,
    })
}

/// The field `name` if present; an error if it occurs more than once.
fn single<'a>(fields: &'a [Field], name: &str) -> Result<Option<&'a Field>, Refusal> {
    let mut found = fields.iter().filter(|f| f.is(name));
    let first = found.next();
    let extra = found.count();
    if extra > 0 {
        return Err(format_error(format_args!(
            "Header field {name} occurs {} times; at most once allowed",
            extra + 1
        )));
    }
    Ok(first)
}

fn check_from(fields: &[Field], mail_from: &str) -> Result<(), Refusal> {
    let from = single(fields, "From")?.ok_or_else(|| format_error("From header field missing"))?;
    // Let mail-parser read the address syntax (comments, quoting, encoded words) of exactly
    // the field we selected by its strict name.
    let mut mini = b"From: ".to_vec();
    mini.extend_from_slice(&from.value);
    mini.extend_from_slice(b"\r\n\r\n");
    let parsed = MessageParser::default().parse(&mini);
    let addrs: Vec<String> = parsed
        .as_ref()
        .and_then(|m| m.from())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let [addr] = addrs.as_slice() else {
        return Err(format_error(format_args!(
            "From must name exactly one address (found {})",
            addrs.len()
        )));
    };
    if !addr.eq_ignore_ascii_case(mail_from) {
        return Err(Refusal(format!(
            "550 5.7.1 From <{}> does not match the envelope sender <{}>",
            printable(addr.as_bytes()),
            printable(mail_from.as_bytes())
        )));
    }
    Ok(())
}

fn check_options(fields: &[Field]) -> Result<DeMailOptions, Refusal> {
    let mut values = [false; OPTION_FIELDS.len()];
    for (slot, name) in values.iter_mut().zip(OPTION_FIELDS) {
        if let Some(f) = single(fields, name)? {
            *slot = match f.value.as_slice() {
                b"yes" => true,
                b"no" => false,
                other => {
                    return Err(format_error(format_args!(
                        "Header field {name}: value \"{}\" is not exactly \"yes\" or \"no\"",
                        printable(other)
                    )));
                }
            };
        }
    }
    let [dispatch, receipt, retrieve, authoritative, private] = values;
    Ok(DeMailOptions {
        dispatch,
        receipt,
        retrieve,
        authoritative,
        private,
    })
}

/// Length-checks every private-id field (both spellings); the topmost one counts.
fn check_private_id(fields: &[Field]) -> Result<Option<String>, Refusal> {
    let mut first = None;
    for f in fields
        .iter()
        .filter(|f| PRIVATE_ID_FIELDS.iter().any(|n| f.is(n)))
    {
        let value = String::from_utf8_lossy(&f.value).into_owned();
        let chars = value.chars().count();
        if chars > MAX_PRIVATE_ID_CHARS {
            return Err(format_error(format_args!(
                "Header field {} is {chars} characters long; at most {MAX_PRIVATE_ID_CHARS} allowed",
                f.name
            )));
        }
        first.get_or_insert(value);
    }
    Ok(first)
}

/// A short, single-line rendering of untrusted bytes for a reply text.
pub(crate) fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: &str = "info@magdeburg.de-mail.de";

    fn msg(headers: &str) -> Vec<u8> {
        format!("{headers}\r\n\r\nHallo.\r\n")
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    fn base(extra: &str) -> Vec<u8> {
        let mut h = String::from(
            "From: Stadt Magdeburg <Info@Magdeburg.de-mail.de>\nTo: b@x.de-mail.de\n\
             Message-ID: <1@magdeburg.example>\nSubject: Bescheid",
        );
        if !extra.is_empty() {
            h.push('\n');
            h.push_str(extra);
        }
        msg(&h)
    }

    fn refusal(data: &[u8]) -> String {
        check_message(data, SENDER).expect_err("must be refused").0
    }

    #[test]
    fn a_good_message_passes_with_its_facts() {
        let data = base(
            "X-de-mail-confirmation-of-dispatch: yes\nx-de-mail-confirmation-of-receipt:no\n\
             X-de-mail-private: yes\nX-de-mail-privat-id: akte-42",
        );
        let facts = check_message(&data, SENDER).expect("accepted");
        assert_eq!(facts.message_id, "<1@magdeburg.example>");
        assert_eq!(facts.private_id.as_deref(), Some("akte-42"));
        assert_eq!(facts.subject.as_deref(), Some("Bescheid"));
        assert_eq!(
            facts.options,
            DeMailOptions {
                dispatch: true,
                private: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn option_values_are_exactly_yes_or_no() {
        for bad in ["Yes", "YES", "true", "", "yes please", "ja"] {
            let r = refusal(&base(&format!("X-de-mail-authoritative: {bad}")));
            assert!(
                r.starts_with("554 5.6.0 Header field X-de-mail-authoritative"),
                "{r}"
            );
        }
        let r = refusal(&base("X-de-mail-confirmation-of-retrieve: Yes"));
        assert!(
            r.contains("X-de-mail-confirmation-of-retrieve: value \"Yes\""),
            "{r}"
        );
    }

    #[test]
    fn option_fields_at_most_once() {
        let r = refusal(&base(
            "X-de-mail-confirmation-of-receipt: yes\nX-DE-MAIL-CONFIRMATION-OF-RECEIPT: yes",
        ));
        assert_eq!(
            r,
            "554 5.6.0 Header field X-de-mail-confirmation-of-receipt occurs 2 times; at most once allowed"
        );
    }

    #[test]
    fn private_id_length() {
        let ok = "ä".repeat(MAX_PRIVATE_ID_CHARS);
        assert!(check_message(&base(&format!("X-de-mail-private-id: {ok}")), SENDER).is_ok());
        let long = "x".repeat(MAX_PRIVATE_ID_CHARS + 1);
        for name in PRIVATE_ID_FIELDS {
            let r = refusal(&base(&format!("{name}: {long}")));
            assert!(
                r.starts_with(&format!("554 5.6.0 Header field {name} is 1025")),
                "{r}"
            );
        }
    }

    #[test]
    fn from_must_be_the_envelope_sender() {
        let data = base("").replace_bytes("Info@Magdeburg", "other@magdeburg");
        assert_eq!(
            refusal(&data),
            "550 5.7.1 From <other@magdeburg.de-mail.de> does not match the envelope sender \
             <info@magdeburg.de-mail.de>"
        );
        let two = base("").replace_bytes(
            "<Info@Magdeburg.de-mail.de>",
            "info@magdeburg.de-mail.de, evil@x.de-mail.de",
        );
        assert!(refusal(&two).contains("exactly one address (found 2)"));
        let none = msg("To: b@x.de-mail.de\nMessage-ID: <1@x>");
        assert_eq!(refusal(&none), "554 5.6.0 From header field missing");
        let twice = base("From: info@magdeburg.de-mail.de");
        assert!(refusal(&twice).contains("From occurs 2 times"));
    }

    #[test]
    fn message_id_and_syntax() {
        let no_id = msg("From: info@magdeburg.de-mail.de\nSubject: x");
        assert_eq!(refusal(&no_id), "554 5.6.0 Message-ID header field missing");
        let empty_id = msg("From: info@magdeburg.de-mail.de\nMessage-ID:");
        assert_eq!(
            refusal(&empty_id),
            "554 5.6.0 Message-ID header field missing"
        );
        let broken = msg("From: info@magdeburg.de-mail.de\nthis is not a header");
        assert_eq!(
            refusal(&broken),
            "554 5.6.0 Malformed header section, line 2: header line without a colon"
        );
        assert!(refusal(b"").starts_with("554 5.6.0"));
    }

    trait ReplaceBytes {
        fn replace_bytes(&self, from: &str, to: &str) -> Vec<u8>;
    }

    impl ReplaceBytes for Vec<u8> {
        fn replace_bytes(&self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8_lossy(self).replace(from, to).into_bytes()
        }
    }
}
