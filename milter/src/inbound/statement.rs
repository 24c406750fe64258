//! What a confirmation or notification states: its `urn:de-mail` XML part and its PDF part,
//! both found by content in any MIME part (TR-01201 names neither MIME types nor file names).

use mail_parser::{MessageParser, PartType};

/// The namespace of the confirmation XML (PVD_IO §3.5.3).
pub const NAMESPACE: &str = "urn:de-mail";
/// Most MIME parts looked at: bounded cost for hostile messages.
const MAX_PARTS: usize = 64;
/// Most XML nodes parsed (a real confirmation has about a hundred).
const MAX_XML_NODES: u32 = 100_000;
/// XML parts larger than this are not parsed.
const MAX_XML_BYTES: usize = 4 << 20;

/// The root element of the XML part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Acknowledge,
    Notification,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Acknowledge => "Acknowledge-Message",
            Root::Notification => "Notification-Message",
        }
    }
}

/// The parsed XML: the elements the matching and the evidence need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statement {
    pub root: Option<Root>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    /// The original's `X-de-mail-integrity` as the provider computed it.
    pub hash: Option<String>,
    pub time: Option<String>,
    pub delivery_time: Option<String>,
    /// `Metadate` entries: (Name, Value) of the original's header fields.
    pub metadata: Vec<(String, String)>,
}

impl Statement {
    /// Values of the metadata fields called `name` (case-insensitive).
    pub fn meta<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metadata
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The parts found in a message.
#[derive(Debug, Default)]
pub struct Parts {
    /// The XML part's decoded bytes and what it states.
    pub xml: Option<(Vec<u8>, Statement)>,
    /// The PDF part's decoded bytes.
    pub pdf: Option<Vec<u8>>,
    /// Why no XML part was found or one was unusable, for the report.
    pub problems: Vec<String>,
}

/// Looks through the MIME parts of `raw` for the first `urn:de-mail` XML document and the
/// first PDF, by their content.
pub fn find(raw: &[u8]) -> Parts {
    let mut out = Parts::default();
    let Some(message) = MessageParser::default().parse(raw) else {
        out.problems
            .push("the message cannot be parsed as MIME".into());
        return out;
    };
    if message.parts.len() > MAX_PARTS {
        out.problems.push(format!(
            "{} MIME parts: only the first {MAX_PARTS} are looked at",
            message.parts.len()
        ));
    }
    for (i, part) in message.parts.iter().take(MAX_PARTS).enumerate() {
        let bytes: &[u8] = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            // A nested message is someone else's content, not the provider's statement.
            PartType::Message(_) | PartType::Multipart(_) => continue,
        };
        if out.pdf.is_none() && bytes.starts_with(b"%PDF-") {
            out.pdf = Some(bytes.to_vec());
        }
        if out.xml.is_none() && looks_like_xml(bytes) {
            match parse(bytes) {
                Ok(s) => out.xml = Some((bytes.to_vec(), s)),
                Err(e) => out.problems.push(format!("part {}: {e}", i + 1)),
            }
        }
    }
    if out.xml.is_none() {
        out.problems
            .push(format!("no XML part with a {NAMESPACE} root element"));
    }
    out
}

/// Cheap pre-check before a real parse: the namespace occurs and the text starts with `<`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
        && text
            .windows(NAMESPACE.len())
            .any(|w| w == NAMESPACE.as_bytes())
}

/// Parses a confirmation XML document; an error says what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<Statement, String> {
    if bytes.len() > MAX_XML_BYTES {
        return Err(format!("XML part larger than {MAX_XML_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("XML part is not UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| format!("XML part is not well-formed: {e}"))?;
    let root = doc.root_element();
    let name = root.tag_name();
    if name.namespace() != Some(NAMESPACE) {
        return Err(format!(
            "XML root element {} is not in namespace {NAMESPACE}",
            name.name()
        ));
    }
    let root_kind = match name.name() {
        "Acknowledge-Message" => Root::Acknowledge,
        "Notification-Message" => Root::Notification,
        other => return Err(format!("XML root element {other} is no confirmation")),
    };
    let mut metadata = Vec::new();
    if let Some(list) = child(root, "Metadata") {
        for m in list
            .children()
            .filter(|c| c.is_element() && c.has_tag_name((NAMESPACE, "Metadate")))
        {
            if let (Some(n), Some(v)) = (text_of(m, "Name"), text_of(m, "Value")) {
                metadata.push((n, v));
            }
        }
    }
    Ok(Statement {
        root: Some(root_kind),
        sender: text_of(root, "Sender"),
        subject: text_of(root, "Subject"),
        text: text_of(root, "Text"),
        hash: text_of(root, "Hash"),
        time: text_of(root, "Time"),
        delivery_time: text_of(root, "DeliveryTime"),
        metadata,
    })
}

/// The first child element `name` in our namespace.
fn child<'a, 'input>(
    parent: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    parent
        .children()
        .find(|c| c.is_element() && c.has_tag_name((NAMESPACE, name)))
}

/// The trimmed text of child element `name`, if it exists.
fn text_of(parent: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(parent, name).map(|n| n.text().unwrap_or_default().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Acknowledge-Message xmlns="urn:de-mail">
<Sender>Versandbestaetigung@provider.example</Sender>
<Metadata>
<Metadate><Name>X-de-mail-private-id</Name><Value>01ABC.stadt</Value><OriginalHeader>x</OriginalHeader></Metadate>
<Metadate><Name>Subject</Name><Value>Bescheid</Value><OriginalHeader>y</OriginalHeader></Metadate>
</Metadata>
<Subject>*Versandbestätigung* Bescheid</Subject>
<Text>Empfänger: a@b.de-mail.de</Text>
<Hash>v=1; a=sha256/rsa; bh=abc=; b=def=</Hash>
<Time>2026-01-02T03:04:05Z</Time>
</Acknowledge-Message>
"#;

    #[test]
    fn acknowledge_elements_are_read() {
        let s = parse(ACK.as_bytes()).unwrap();
        assert_eq!(s.root, Some(Root::Acknowledge));
        assert_eq!(s.time.as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(
            s.hash.as_deref(),
            Some("v=1; a=sha256/rsa; bh=abc=; b=def=")
        );
        assert_eq!(
            s.meta("x-de-mail-private-id").collect::<Vec<_>>(),
            ["01ABC.stadt"]
        );
        assert_eq!(s.meta("Subject").next(), Some("Bescheid"));
        assert_eq!(s.delivery_time, None);
    }

    #[test]
    fn wrong_namespace_or_root_is_refused() {
        let other_ns = ACK.replace("urn:de-mail", "urn:other");
        assert!(
            parse(other_ns.as_bytes())
                .unwrap_err()
                .contains("namespace")
        );
        let other_root = ACK.replace("Acknowledge-Message", "Receipt");
        assert!(
            parse(other_root.as_bytes())
                .unwrap_err()
                .contains("no confirmation")
        );
        assert!(parse(b"<a").unwrap_err().contains("well-formed"));
        let dtd = format!("<!DOCTYPE x [<!ENTITY e \"e\">]>{}", &ACK[39..]);
        assert!(parse(dtd.as_bytes()).is_err());
    }

    #[test]
    fn parts_are_found_by_content_not_by_type() {
        let b64 = openssl::base64::encode_block(ACK.as_bytes());
        let raw = format!(
            "From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nHallo\r\n\
             --B\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n\
             --B\r\nContent-Type: application/octet-stream\r\n\r\n%PDF-1.4\r\nrest\r\n\
             --B--\r\n"
        );
        let parts = find(raw.as_bytes());
        let (xml, s) = parts.xml.expect("xml found");
        assert_eq!(xml, ACK.as_bytes());
        assert_eq!(s.root, Some(Root::Acknowledge));
        assert!(parts.pdf.expect("pdf").starts_with(b"%PDF-1.4"));
    }

    #[test]
    fn a_message_without_xml_says_so() {
        let parts = find(b"From: a@b\r\n\r\nno xml <here> urn:de-mail\r\n");
        assert!(parts.xml.is_none());
        assert!(parts.pdf.is_none());
        assert!(
            parts.problems.iter().any(|p| p.contains("no XML part")),
            "{:?}",
            parts.problems
        );
    }
}
