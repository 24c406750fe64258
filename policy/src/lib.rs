//! Configuration and pure policy decisions of demail-gateway.
//!
//! Everything the daemons decide about addresses, senders and shipping options is asked here,
//! so the business rules live in one place and are unit-tested without sockets.

mod config;
mod decide;
mod error;
mod options;
mod config_parse;
mod decide_impl;

pub use config::*;
pub use decide::*;
pub use error::{ConfigError, ConfigErrors};
pub use options::{DeMailOption, Options};

/// Where the daemons and `demailctl` look for the configuration unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/demail/demail.toml";
