//! Configuration and pure policy decisions of demail-gateway.
//!
//! Everything the daemons decide about addresses, senders and shipping options is asked here,
//! so the business rules live in one place and are unit-tested without sockets.

mod address;
mod config;
mod config_parse;
mod decide;
mod decide_impl;
mod error;
mod options;
mod reload;
mod route;
mod suggest;
mod tags;
#[cfg(test)]
mod testutil;

pub use address::login_key;
pub use config::*;
pub use decide::*;
pub use error::{ConfigError, ConfigErrors};
pub use options::{DeMailOption, Options};
pub use reload::reloadable;
pub mod listener;
pub use route::{DEMAIL_TRANSPORT, ROUTE_FIELD, Resolved, Route, SEND_TRANSPORT};
pub use tags::{
    SIGNER_PLACEHOLDER, Signature, SignatureOutcome, Signed, attachment_template,
    decisive_signature, decode_encoded_words,
};

/// Where the daemons and `demailctl` look for the configuration unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/demail/demail.toml";
