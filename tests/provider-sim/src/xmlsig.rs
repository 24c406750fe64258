//! Enveloped XML signatures made by the `xmlsec1` CLI: the trusted list's and the
//! confirmation XML's `ds:Signature` (exclusive C14N, RSA-SHA256, the signer's certificate in
//! `KeyInfo/X509Data`, one reference to the whole document).

use std::path::Path;
use std::process::Command;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum XmlSignError {
    #[error("xmlsec1 scratch files: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot run xmlsec1 (Debian package xmlsec1): {0}")]
    Spawn(std::io::Error),
    #[error("xmlsec1 --sign failed: {0}")]
    Failed(String),
    #[error("the template has no `{SIGNATURE_PLACEHOLDER}` marker for the signature")]
    NoPlaceholder,
}

/// Where [`sign_enveloped`] puts the `ds:Signature` template (as the root's last child).
pub const SIGNATURE_PLACEHOLDER: &str = "<!--ds:Signature-->";

/// The signature template: xmlsec1 fills DigestValue, SignatureValue and X509Certificate.
fn template(signature_id: &str) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"{signature_id}\">\
<ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
<ds:Reference URI=\"\">\
<ds:Transforms>\
<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
</ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
<ds:DigestValue></ds:DigestValue>\
</ds:Reference>\
</ds:SignedInfo>\
<ds:SignatureValue></ds:SignatureValue>\
<ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
</ds:Signature>"
    )
}

/// Signs `xml`, which must contain [`SIGNATURE_PLACEHOLDER`] where the signature goes, with
/// the PEM key and certificate; returns the signed document as xmlsec1 wrote it.
pub fn sign_enveloped(
    xml: &str,
    signature_id: &str,
    key: &Path,
    cert: &Path,
) -> Result<String, XmlSignError> {
    if !xml.contains(SIGNATURE_PLACEHOLDER) {
        return Err(XmlSignError::NoPlaceholder);
    }
    let doc = xml.replacen(SIGNATURE_PLACEHOLDER, &template(signature_id), 1);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("template.xml");
    let output = dir.path().join("signed.xml");
    std::fs::write(&input, doc)?;
    let mut key_arg = key.as_os_str().to_owned();
    key_arg.push(",");
    key_arg.push(cert.as_os_str());
    let out = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(&key_arg)
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .map_err(XmlSignError::Spawn)?;
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("no reason given")
            .trim()
            .to_string();
        return Err(XmlSignError::Failed(reason));
    }
    Ok(std::fs::read_to_string(&output)?)
}

/// Text content for XML: the five predefined entities, and CR as a character reference so an
/// original header line keeps its CRLF through XML end-of-line normalisation.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_cr_and_neutralises_markup() {
        assert_eq!(
            escape("a<b>&\"'\r\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#13;\n\u{FFFD}"
        );
        let xml = format!("<x>{}</x>", escape("Subject: a\r\n b\r\n"));
        let doc = roxmltree::Document::parse(&xml).expect("parses");
        assert_eq!(doc.root_element().text(), Some("Subject: a\r\n b\r\n"));
    }

    #[test]
    fn template_without_placeholder_is_refused() {
        let r = sign_enveloped("<x/>", "s", Path::new("k"), Path::new("c"));
        assert!(matches!(r, Err(XmlSignError::NoPlaceholder)));
    }
}
