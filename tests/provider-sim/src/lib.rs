//! A De-Mail provider's gateway as a test peer (BSI TR-01201, as far as a provider's gateway
//! is visible to an organisation): it takes the city's outbound De-Mail over SMTP with TLS and
//! a client certificate, applies the checks a provider applies, and stores what it accepts.
//!
//! The receiving side lives in [`receive`]; the sending side (confirmations, notifications,
//! inbound De-Mail to the city) in [`send`].
//! [`pki`] generates the throw-away PKI that tests, the end-to-end harness and the demo share.

pub mod config;
pub mod error;
pub mod pki;
pub mod receive;
pub mod send;
mod tls;
pub mod xmlsig;

pub use config::{SimConfig, TlsMode};
pub use error::{ConfigError, PkiError, TlsSetupError};
pub use receive::{Accepted, DeMailOptions, Limits, Rejection, Simulator, Stage, StoredRecord};
pub use send::{
    ConfirmationKind, Dispatched, Forge, InboundSpec, NotificationKind, Outgoing, OutgoingKind,
    RecipientState, SendConfig, SendError, Target, Transport,
};
