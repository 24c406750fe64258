//! The XML signature of a trusted list, checked against pinned signer certificates only.
//!
//! Two verifiers sit behind [`XmlSignatureVerifier`]: [`Xmlsec1`] (the Debian `xmlsec1` CLI,
//! the default) and [`RustVerifier`] (the pure-Rust `bergshamra` crate). `tests/tl_diff.rs`
//! checks that both judge the same lists alike. The environment variable
//! [`VERIFIER_ENV`] (`xmlsec1` or `rust`) selects one for [`verify`]; it is not a
//! configuration key because the choice is an operator's experiment, not policy.
//!
//! Neither verifier decides what the signature must cover: [`check_structure`] requires
//! exactly one `ds:Signature`, a child of the root, with a reference to `""` (or the root's
//! `Id`) through the enveloped-signature transform, and the parser refuses a DTD. Otherwise a
//! signed fragment could be wrapped in unsigned content (XML signature wrapping).

mod rust;
mod xmlsec1;

use openssl::x509::X509;
use roxmltree::{Document, Node, ParsingOptions};

use super::parse::err;
use crate::TrustError;
pub use rust::RustVerifier;
pub use xmlsec1::Xmlsec1;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Selects the verifier [`verify`] uses: `xmlsec1` (also when unset) or `rust`.
pub const VERIFIER_ENV: &str = "DEMAIL_TL_XML_VERIFIER";

/// Why a list's signature was not accepted with one signer certificate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlSigError {
    /// Not a list we are willing to verify: no UTF-8, not XML, a DTD, no single enveloped
    /// signature over the whole list.
    #[error("{0}")]
    Structure(String),
    /// The verifier judged the signature: it does not verify with this certificate.
    #[error("{0}")]
    Rejected(String),
    /// The verifier could not judge (tool missing, algorithm it does not implement,
    /// certificate key it cannot load). Never counts as a verdict on the list.
    #[error("{0}")]
    CannotJudge(String),
}

/// One way to check a trusted list's XML signature against one pinned certificate.
pub trait XmlSignatureVerifier {
    /// A short name for messages (`xmlsec1`, `rust`).
    fn name(&self) -> &'static str;

    /// The cryptographic check alone: the signature over `xml` verifies with `signer`'s key
    /// (never with a key the document carries). Callers want [`Self::verify`].
    fn check_signature(&self, xml: &[u8], signer: &X509) -> Result<(), XmlSigError>;

    /// [`check_structure`] (with the DTD-free parse), then [`Self::check_signature`].
    fn verify(&self, xml: &[u8], signer: &X509) -> Result<(), XmlSigError> {
        precheck(xml)?;
        self.check_signature(xml, signer)
    }
}

/// The verifier [`VERIFIER_ENV`] names (xmlsec1 when unset).
pub fn selected() -> Result<Box<dyn XmlSignatureVerifier>, TrustError> {
    match std::env::var(VERIFIER_ENV) {
        Err(std::env::VarError::NotPresent) => by_name(None),
        Ok(v) => by_name(Some(&v)),
        Err(e) => Err(TrustError::Input(format!("{VERIFIER_ENV}: {e}"))),
    }
}

/// `xmlsec1` (also for `None`) or `rust`.
pub fn by_name(name: Option<&str>) -> Result<Box<dyn XmlSignatureVerifier>, TrustError> {
    match name {
        None | Some("xmlsec1") => Ok(Box::new(Xmlsec1)),
        Some("rust") => Ok(Box::new(RustVerifier)),
        Some(other) => Err(TrustError::Input(format!(
            "{VERIFIER_ENV}={other:?}: expected \"xmlsec1\" or \"rust\""
        ))),
    }
}

/// The pinned certificate the list's signature verifies with (using the [`selected`]
/// verifier); an error says why none does.
pub fn verify(xml: &[u8], name: &str, signers: &[X509]) -> Result<X509, TrustError> {
    verify_with(selected()?.as_ref(), xml, name, signers)
}

/// [`verify`] with a given verifier.
pub fn verify_with(
    verifier: &dyn XmlSignatureVerifier,
    xml: &[u8],
    name: &str,
    signers: &[X509],
) -> Result<X509, TrustError> {
    precheck(xml).map_err(|e| err(name, e))?;
    if signers.is_empty() {
        return Err(err(
            name,
            "no pinned signer certificate (--signer, [trust] list_signers or an imported LOTL \
             naming this territory), so the list cannot be trusted",
        ));
    }
    let mut failures = Vec::new();
    for signer in signers {
        match verifier.check_signature(xml, signer) {
            Ok(()) => return Ok(signer.clone()),
            Err(e) => failures.push(format!("{}: {e}", super::subject_line(signer))),
        }
    }
    Err(err(
        name,
        format!(
            "the XML signature does not verify with any pinned signer ({}: {})",
            verifier.name(),
            failures.join("; ")
        ),
    ))
}

/// UTF-8, XML without a DTD (no entity tricks), and [`check_structure`].
pub fn precheck(xml: &[u8]) -> Result<(), XmlSigError> {
    let structure = |what: String| XmlSigError::Structure(what);
    let text = std::str::from_utf8(xml).map_err(|e| structure(format!("not UTF-8: {e}")))?;
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options)
        .map_err(|e| structure(format!("not XML: {e}")))?;
    check_structure(&doc)
}

/// The one signature covers the whole list (see the module comment).
pub fn check_structure(doc: &Document<'_>) -> Result<(), XmlSigError> {
    let structure = |what: &str| XmlSigError::Structure(what.to_string());
    let root = doc.root_element();
    let is_sig = |n: &Node<'_, '_>| {
        n.is_element()
            && n.tag_name().name() == "Signature"
            && n.tag_name().namespace() == Some(DSIG)
    };
    let all: Vec<_> = doc.descendants().filter(is_sig).collect();
    let sig = match all.as_slice() {
        [] => return Err(structure("the list is not signed (no ds:Signature)")),
        [one] => *one,
        _ => {
            return Err(XmlSigError::Structure(format!(
                "{} ds:Signature elements, expected one",
                all.len()
            )));
        }
    };
    if sig.parent() != Some(root) {
        return Err(structure(
            "ds:Signature is not a child of TrustServiceStatusList",
        ));
    }
    let root_ref = root.attribute("Id").map(|id| format!("#{id}"));
    let signed_info = sig
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "SignedInfo")
        .ok_or_else(|| structure("ds:Signature without SignedInfo"))?;
    let whole = signed_info
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Reference")
        .any(|r| {
            let uri = r.attribute("URI");
            let covers_root = uri == Some("") || (uri.is_some() && uri == root_ref.as_deref());
            let enveloped = r.descendants().any(|t| {
                t.is_element()
                    && t.tag_name().name() == "Transform"
                    && t.attribute("Algorithm") == Some(ENVELOPED)
            });
            covers_root && enveloped
        });
    if !whole {
        return Err(structure(
            "the signature does not cover the whole list (no enveloped reference to it)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name() {
        assert_eq!(by_name(None).unwrap().name(), "xmlsec1");
        assert_eq!(by_name(Some("xmlsec1")).unwrap().name(), "xmlsec1");
        assert_eq!(by_name(Some("rust")).unwrap().name(), "rust");
        let e = by_name(Some("Rust")).err().unwrap().to_string();
        assert!(e.contains("DEMAIL_TL_XML_VERIFIER=\"Rust\""), "{e}");
    }

    #[test]
    fn precheck_refuses_a_dtd_and_non_utf8() {
        let dtd = b"<!DOCTYPE x [<!ENTITY a \"b\">]><TrustServiceStatusList/>";
        assert!(matches!(precheck(dtd), Err(XmlSigError::Structure(m)) if m.contains("not XML")));
        assert!(
            matches!(precheck(b"\xff<a/>"), Err(XmlSigError::Structure(m)) if m.contains("UTF-8"))
        );
        let unsigned = b"<TrustServiceStatusList/>";
        assert!(
            matches!(precheck(unsigned), Err(XmlSigError::Structure(m)) if m.contains("not signed"))
        );
    }
}
