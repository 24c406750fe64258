//! The pure-Rust verifier: `bergshamra` (no C code, no subprocess).
//!
//! The key manager holds only the pinned certificate and `trusted_keys_only` keeps bergshamra
//! from using any key the document carries (its `KeyInfo` only orders candidates). With no
//! trust anchors configured bergshamra does no X.509 path or validity check on the pinned
//! certificate, exactly like xmlsec1 with `--pubkey-cert-pem`: pinning is the trust decision,
//! and lists are signed by certificates that expire long before the archived list is judged.
//!
//! bergshamra's own reference-position check (`strict_verification`) stays off: it rejects the
//! XAdES `SignedProperties` reference every ETSI list has (a descendant of the signature).
//! [`super::check_structure`] does the anti-wrapping check for both verifiers instead.

use bergshamra::core::Error as BError;
use bergshamra::{DsigContext, KeysManager, VerifyResult};
use openssl::x509::X509;

use super::{XmlSigError, XmlSignatureVerifier};

/// Verifies in-process with bergshamra (RustCrypto provider).
#[derive(Debug, Clone, Copy, Default)]
pub struct RustVerifier;

impl XmlSignatureVerifier for RustVerifier {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn check_signature(&self, xml: &[u8], signer: &X509) -> Result<(), XmlSigError> {
        let der = signer
            .to_der()
            .map_err(|e| XmlSigError::CannotJudge(format!("signer certificate: {e}")))?;
        let key = bergshamra::keys::loader::load_x509_cert_der(&der).map_err(|e| {
            XmlSigError::CannotJudge(format!("bergshamra cannot use the signer's key: {e}"))
        })?;
        let mut keys = KeysManager::new();
        keys.add_key(key);
        // `Id` attributes are IDs by default (what xmlsec1 needs --id-attr for); naming it
        // again with add_id_attr would make every Id a "duplicate ID".
        let ctx = DsigContext::new(keys)
            .with_trusted_keys_only(true)
            .with_strict_verification(false);
        let text = std::str::from_utf8(xml)
            .map_err(|e| XmlSigError::Structure(format!("not UTF-8: {e}")))?;
        match bergshamra::verify(&ctx, text) {
            Ok(VerifyResult::Valid { .. }) => Ok(()),
            Ok(VerifyResult::Invalid { reason }) => {
                Err(XmlSigError::Rejected(format!("bergshamra: {reason}")))
            }
            Err(e @ BError::UnsupportedAlgorithm(_)) => {
                Err(XmlSigError::CannotJudge(format!("bergshamra: {e}")))
            }
            Err(e) => Err(XmlSigError::Rejected(format!("bergshamra: {e}"))),
        }
    }
}
