//! The provider, pinned: its TLS client certificates (under a client CA of their own) and the
//! seal certificates that sign `X-de-mail-integrity`. Read once per configuration by the
//! milter and by `demailctl`, so both decide by the same certificates.

use std::path::{Path, PathBuf};

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509NameRef, X509StoreContext};

/// A pinned TLS client certificate, by what Postfix can tell about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPin {
    /// Subject common name: what Postfix passes a milter as `{cert_subject}`.
    pub subject_cn: String,
    /// Issuer common name: Postfix's `{cert_issuer}`.
    pub issuer_cn: String,
    /// SHA-256 of the DER certificate: what `check_ccert_access` compares.
    pub sha256: [u8; 32],
}

/// The pinned provider of one configuration.
#[derive(Debug, Clone, Default)]
pub struct ProviderPins {
    pub clients: Vec<ClientPin>,
    /// The seal certificates; a signature by any other certificate is not the provider's.
    pub signers: Vec<X509>,
}

impl ProviderPins {
    /// Reads the pinned certificates. Each client certificate must chain to `client_ca`
    /// (checked at the current time).
    /// Errors name the file.
    pub fn load(
        client_ca: Option<&Path>,
        client_certificates: &[PathBuf],
        signers: &[PathBuf],
    ) -> Result<ProviderPins, String> {
        let mut pins = ProviderPins::default();
        let ca = client_ca.map(read_pem_list).transpose()?;
        for path in client_certificates {
            for cert in read_pem_list(path)? {
                if let Some(ca) = &ca {
                    chains_to(&cert, ca).map_err(|e| {
                        format!(
                            "{}: the provider client certificate {:?} does not chain to \
                             provider_client_ca: {e}",
                            path.display(),
                            common_name(cert.subject_name())
                        )
                    })?;
                }
                pins.clients
                    .push(client_pin(&cert).map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
        for path in signers {
            pins.signers.extend(read_pem_list(path)?);
        }
        Ok(pins)
    }

    /// Whether the names Postfix reported for a verified client certificate are those of a
    /// pinned one.
    pub fn client_matches(&self, subject_cn: &str, issuer_cn: Option<&str>) -> bool {
        self.clients
            .iter()
            .any(|p| p.subject_cn == subject_cn && issuer_cn == Some(p.issuer_cn.as_str()))
    }
}

fn client_pin(cert: &X509) -> Result<ClientPin, String> {
    let digest = cert
        .digest(MessageDigest::sha256())
        .map_err(|e| crate::openssl_reasons(&e))?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&digest);
    Ok(ClientPin {
        subject_cn: common_name(cert.subject_name()),
        issuer_cn: common_name(cert.issuer_name()),
        sha256,
    })
}

/// The (last) common name, as Postfix reads it; empty when there is none.
fn common_name(name: &X509NameRef) -> String {
    name.entries_by_nid(Nid::COMMONNAME)
        .last()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default()
}

fn read_pem_list(path: &Path) -> Result<Vec<X509>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&data).map_err(|e| {
        format!(
            "{}: not PEM certificates: {}",
            path.display(),
            crate::openssl_reasons(&e)
        )
    })?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

fn chains_to(cert: &X509, anchors: &[X509]) -> Result<(), String> {
    let ossl = |e: openssl::error::ErrorStack| crate::openssl_reasons(&e);
    let mut store = X509StoreBuilder::new().map_err(ossl)?;
    for a in anchors {
        store.add_cert(a.clone()).map_err(ossl)?;
    }
    let store = store.build();
    let chain = Stack::new().map_err(ossl)?;
    let mut ctx = X509StoreContext::new().map_err(ossl)?;
    let (ok, why) = ctx
        .init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error().error_string().to_string()))
        })
        .map_err(ossl)?;
    if ok { Ok(()) } else { Err(why) }
}
