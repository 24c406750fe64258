//! The XML signature of a trusted list, checked by the `xmlsec1` CLI against pinned signer
//! certificates only.
//!
//! `--enabled-key-data key-name` stops xmlsec1 from taking the key out of the signature's own
//! `KeyInfo/X509Data`: the only keys it can use are the pinned one we hand over with
//! `--pubkey-cert-pem`. One run per pinned certificate, because with several keys loaded
//! xmlsec1 tries only the first that fits the algorithm.
//!
//! xmlsec1 checks what the references cover; that they cover the whole list is our job
//! ([`check_structure`]): exactly one `ds:Signature`, a child of the root, with a reference to
//! `""` (or the root's `Id`) through the enveloped-signature transform. Otherwise a signed
//! fragment could be wrapped in unsigned content (XML signature wrapping).

use std::process::Command;

use openssl::x509::X509;
use roxmltree::Document;

use super::parse::err;
use crate::TrustError;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// The pinned certificate the list's signature verifies with; an error says why none does.
pub fn verify(xml: &[u8], name: &str, signers: &[X509]) -> Result<X509, TrustError> {
    let text = std::str::from_utf8(xml).map_err(|e| err(name, format!("not UTF-8: {e}")))?;
    let doc = super::parse::document(text, name)?;
    check_structure(&doc, name)?;
    if signers.is_empty() {
        return Err(err(
            name,
            "no pinned signer certificate (--signer, [trust] list_signers or an imported LOTL \
             naming this territory), so the list cannot be trusted",
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| err(name, format!("temporary directory: {e}")))?;
    let xml_path = dir.path().join("list.xml");
    std::fs::write(&xml_path, xml).map_err(|e| err(name, format!("temporary copy: {e}")))?;
    let mut failures = Vec::new();
    for (i, signer) in signers.iter().enumerate() {
        let pem = signer
            .to_pem()
            .map_err(|e| err(name, format!("signer certificate: {e}")))?;
        let pem_path = dir.path().join(format!("signer{i}.pem"));
        std::fs::write(&pem_path, pem).map_err(|e| err(name, format!("temporary copy: {e}")))?;
        let out = Command::new("xmlsec1")
            .args(["--verify", "--id-attr:Id", "TrustServiceStatusList"])
            .args(["--enabled-reference-uris", "same-doc,empty"])
            .args(["--enabled-key-data", "key-name", "--pubkey-cert-pem"])
            .arg(&pem_path)
            .arg(&xml_path)
            .output()
            .map_err(|e| {
                err(
                    name,
                    format!("cannot run xmlsec1 (Debian package xmlsec1): {e}"),
                )
            })?;
        if out.status.success() {
            return Ok(signer.clone());
        }
        let reason = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("error") || l.starts_with("FAIL"))
            .map(|l| l.trim().to_string())
            .find(|l| !l.is_empty())
            .unwrap_or_else(|| "signature does not verify".to_string());
        failures.push(format!("{}: {reason}", super::subject_line(signer)));
    }
    Err(err(
        name,
        format!(
            "the XML signature does not verify with any pinned signer ({})",
            failures.join("; ")
        ),
    ))
}

/// The one signature covers the whole list (see the module comment).
pub fn check_structure(doc: &Document<'_>, name: &str) -> Result<(), TrustError> {
    let root = doc.root_element();
    let is_sig = |n: &roxmltree::Node<'_, '_>| {
        n.is_element()
            && n.tag_name().name() == "Signature"
            && n.tag_name().namespace() == Some(DSIG)
    };
    let all: Vec<_> = doc.descendants().filter(is_sig).collect();
    let sig = match all.as_slice() {
        [] => return Err(err(name, "the list is not signed (no ds:Signature)")),
        [one] => *one,
        _ => {
            return Err(err(
                name,
                format!("{} ds:Signature elements, expected one", all.len()),
            ));
        }
    };
    if sig.parent() != Some(root) {
        return Err(err(
            name,
            "ds:Signature is not a child of TrustServiceStatusList",
        ));
    }
    let root_ref = root.attribute("Id").map(|id| format!("#{id}"));
    let signed_info = sig
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "SignedInfo")
        .ok_or_else(|| err(name, "ds:Signature without SignedInfo"))?;
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
        return Err(err(
            name,
            "the signature does not cover the whole list (no enveloped reference to it)",
        ));
    }
    Ok(())
}
