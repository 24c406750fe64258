//! Error types of the simulator library (one enum per concern).

use std::io;
use std::path::PathBuf;

use openssl::error::ErrorStack;
use thiserror::Error;

/// A problem with a simulator configuration (file or struct).
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// The TLS server context could not be built from the configured files.
#[derive(Debug, Error)]
pub enum TlsSetupError {
    #[error("{key} {path}: {source}")]
    File {
        key: &'static str,
        path: PathBuf,
        source: ErrorStack,
    },
    #[error("cannot read {key} {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("client_ca {0}: no PEM certificate found")]
    NoClientCa(PathBuf),
    #[error("TLS context: {0}")]
    Context(#[from] ErrorStack),
}

/// Generating the test PKI failed.
#[derive(Debug, Error)]
pub enum PkiError {
    #[error("openssl while {context}: {source}")]
    Openssl { context: String, source: ErrorStack },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid subject alternative name {0:?} (expected a DNS name, IP address or e-mail)")]
    BadSan(String),
    #[error("invalid certificate file name {0:?} (letters, digits, '-', '_' and '.' only)")]
    BadName(String),
    #[error("signing the trusted list: {0}")]
    XmlSign(#[from] crate::xmlsig::XmlSignError),
}

impl PkiError {
    pub(crate) fn ossl(context: impl Into<String>) -> impl FnOnce(ErrorStack) -> PkiError {
        let context = context.into();
        move |source| PkiError::Openssl { context, source }
    }
}
