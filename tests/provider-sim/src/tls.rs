//! The TLS server context: our certificate, and client certificates required from `client_ca`.

use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::{X509, X509NameRef, X509Ref};

use crate::config::SimConfig;
use crate::error::TlsSetupError;

/// Builds the acceptor. Only `client_ca` is trusted for client certificates (no system store),
/// and a handshake without a client certificate fails: the provider admits gateways only.
pub(crate) fn acceptor(cfg: &SimConfig) -> Result<SslAcceptor, TlsSetupError> {
    let file_err = |key, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsSetupError::File { key, path, source }
    };
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate_chain_file(&cfg.server_cert)
        .map_err(file_err("server_cert", &cfg.server_cert))?;
    b.set_private_key_file(&cfg.server_key, SslFiletype::PEM)
        .map_err(file_err("server_key", &cfg.server_key))?;
    b.check_private_key()
        .map_err(file_err("server_key", &cfg.server_key))?;

    let pem = std::fs::read(&cfg.client_ca).map_err(|source| TlsSetupError::Read {
        key: "client_ca",
        path: cfg.client_ca.clone(),
        source,
    })?;
    let cas = X509::stack_from_pem(&pem).map_err(file_err("client_ca", &cfg.client_ca))?;
    if cas.is_empty() {
        return Err(TlsSetupError::NoClientCa(cfg.client_ca.clone()));
    }
    for ca in &cas {
        b.cert_store_mut().add_cert(ca.clone())?;
        // Sent in the CertificateRequest so clients know which certificate to present.
        b.add_client_ca(ca)?;
    }
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // Required by OpenSSL for session resumption when peers are verified.
    b.set_session_id_context(b"demail-provider-sim")?;
    Ok(b.build())
}

/// `C=DE, O=Example, CN=gateway`: the subject's entries in certificate order.
pub(crate) fn subject_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(e.data().as_slice()));
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lower-case hex SHA-256 of the certificate's DER (the usual pinning fingerprint).
pub(crate) fn fingerprint(cert: &X509Ref) -> String {
    cert.digest(MessageDigest::sha256())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}
