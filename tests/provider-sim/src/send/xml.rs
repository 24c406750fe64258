//! The confirmation XML of PVD_IO §3.5.3 (namespace `urn:de-mail`): `Acknowledge-Message`
//! with an enveloped `ds:Signature`, and the unsigned `Notification-Message`.

use std::path::Path;

use super::SendError;
use super::mime::RawField;
use crate::xmlsig::{self, SIGNATURE_PLACEHOLDER, escape};

pub const NAMESPACE: &str = "urn:de-mail";

/// What an `Acknowledge-Message` states; element order as in the schema.
pub struct Acknowledge<'a> {
    pub sender: &'a str,
    pub metadata: &'a [RawField],
    pub subject: &'a str,
    pub text: &'a str,
    pub hash: &'a str,
    pub time: &'a str,
    pub delivery_time: Option<&'a str>,
}

/// The header fields of the original that the `Metadata` repeats (TR Table 1): the De-Mail
/// fields and the ordinary ones the integrity covers.
pub fn is_metadata(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-de-mail-")
        || matches!(
            n.as_str(),
            "from" | "date" | "message-id" | "subject" | "reply-to"
        )
}

/// The signed `Acknowledge-Message` (signed by xmlsec1 with `key` and `cert`).
pub fn acknowledge(a: &Acknowledge<'_>, key: &Path, cert: &Path) -> Result<String, SendError> {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!("<Acknowledge-Message xmlns=\"{NAMESPACE}\">\n"));
    element(&mut x, "Sender", a.sender);
    x.push_str("<Metadata>\n");
    for f in a.metadata.iter().filter(|f| is_metadata(&f.name)) {
        x.push_str("<Metadate>");
        x.push_str(&format!("<Name>{}</Name>", escape(&f.name)));
        x.push_str(&format!("<Value>{}</Value>", escape(&f.value)));
        x.push_str(&format!(
            "<OriginalHeader>{}</OriginalHeader>",
            escape(&f.raw)
        ));
        x.push_str("</Metadate>\n");
    }
    x.push_str("</Metadata>\n");
    element(&mut x, "Subject", a.subject);
    element(&mut x, "Text", a.text);
    element(&mut x, "Hash", a.hash);
    element(&mut x, "Time", a.time);
    if let Some(t) = a.delivery_time {
        element(&mut x, "DeliveryTime", t);
    }
    x.push_str(SIGNATURE_PLACEHOLDER);
    x.push_str("\n</Acknowledge-Message>\n");
    Ok(xmlsig::sign_enveloped(&x, "ack-signature", key, cert)?)
}

/// A `Notification-Message` (the schema gives it no signature; the mail is signed).
pub fn notification(subject: &str, text: &str, time: &str, sender: &str) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!("<Notification-Message xmlns=\"{NAMESPACE}\">\n"));
    element(&mut x, "Subject", subject);
    element(&mut x, "Text", text);
    element(&mut x, "Time", time);
    element(&mut x, "Sender", sender);
    x.push_str("</Notification-Message>\n");
    x
}

fn element(x: &mut String, name: &str, text: &str) {
    x.push_str(&format!("<{name}>{}</{name}>\n", escape(text)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_parses_with_its_elements_in_order() {
        let x = notification(
            "S <1>",
            "T & more\nzweite Zeile",
            "2026-01-01T00:00:00Z",
            "Meldung@p",
        );
        let doc = roxmltree::Document::parse(&x).expect("xml");
        let root = doc.root_element();
        assert_eq!(root.tag_name().namespace(), Some(NAMESPACE));
        assert_eq!(root.tag_name().name(), "Notification-Message");
        let names: Vec<&str> = root
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(names, ["Subject", "Text", "Time", "Sender"]);
        assert_eq!(
            root.first_element_child().and_then(|c| c.text()),
            Some("S <1>")
        );
    }

    #[test]
    fn metadata_selection() {
        for n in [
            "From",
            "x-de-mail-private-id",
            "X-De-Mail-Integrity",
            "Reply-To",
        ] {
            assert!(is_metadata(n), "{n}");
        }
        for n in ["To", "Received", "Content-Type", "X-Mailer"] {
            assert!(!is_metadata(n), "{n}");
        }
    }
}
