//! The Debian `xmlsec1` CLI (package xmlsec1) as a verifier.
//!
//! `--enabled-key-data key-name` stops xmlsec1 from taking the key out of the signature's own
//! `KeyInfo/X509Data`: the only key it can use is the pinned one handed over with
//! `--pubkey-cert-pem`. One run per certificate, because with several keys loaded xmlsec1
//! tries only the first that fits the algorithm.

use std::process::Command;

use openssl::x509::X509;

use super::{XmlSigError, XmlSignatureVerifier};

/// Runs `xmlsec1 --verify` on a temporary copy of the list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xmlsec1;

impl XmlSignatureVerifier for Xmlsec1 {
    fn name(&self) -> &'static str {
        "xmlsec1"
    }

    fn check_signature(&self, xml: &[u8], signer: &X509) -> Result<(), XmlSigError> {
        let local = |what: String| XmlSigError::CannotJudge(what);
        let pem = signer
            .to_pem()
            .map_err(|e| local(format!("signer certificate: {e}")))?;
        let dir = tempfile::tempdir().map_err(|e| local(format!("temporary directory: {e}")))?;
        let xml_path = dir.path().join("list.xml");
        let pem_path = dir.path().join("signer.pem");
        std::fs::write(&xml_path, xml).map_err(|e| local(format!("temporary copy: {e}")))?;
        std::fs::write(&pem_path, pem).map_err(|e| local(format!("temporary copy: {e}")))?;
        let out = Command::new("xmlsec1")
            .args(["--verify", "--id-attr:Id", "TrustServiceStatusList"])
            .args(["--enabled-reference-uris", "same-doc,empty"])
            .args(["--enabled-key-data", "key-name", "--pubkey-cert-pem"])
            .arg(&pem_path)
            .arg(&xml_path)
            .output()
            .map_err(|e| local(format!("cannot run xmlsec1 (Debian package xmlsec1): {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        if out.status.code().is_none() {
            return Err(local(format!("xmlsec1 ended abnormally ({})", out.status)));
        }
        // xmlsec1 prints FAIL for a signature it judged; anything else is an error reading
        // the signature (bad base64, unresolvable reference), which is a rejection too.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .find(|l| l.contains("error"))
            .map(|l| format!("xmlsec1: {l}"))
            .unwrap_or_else(|| "signature does not verify".to_string());
        Err(XmlSigError::Rejected(reason))
    }
}
