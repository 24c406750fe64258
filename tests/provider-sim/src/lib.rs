//! A De-Mail provider's gateway as a test peer (BSI TR-01201, as far as a provider's gateway
//! is visible to an organisation): it takes the city's outbound De-Mail over SMTP with TLS and
//! a client certificate, applies the checks a provider applies, and stores what it accepts.
//!
//! The receiving side lives in [`receive`]; a sending side (confirmations) will sit beside it.
//! [`pki`] generates the throw-away PKI that tests, the end-to-end harness and the demo share.

pub mod config;
pub mod error;
pub mod pki;
pub mod receive;
mod tls;
pub mod xmlsig;

pub use config::{SimConfig, TlsMode};
pub use error::{ConfigError, PkiError, TlsSetupError};
pub use receive::{Accepted, DeMailOptions, Limits, Rejection, Simulator, Stage, StoredRecord};
