//! The receiving side: an SMTP server that takes De-Mail from the city's gateway the way a
//! provider's gateway would, rejecting what TR-01201 forbids, and storing what it accepts.

mod auth;
mod checks;
mod command;
mod conn;
mod headers;
mod server;
mod session;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use command::is_demail_domain;
pub use server::Simulator;
pub use store::StoredRecord;

/// One message the simulator accepted (and stored).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Queue id as in the reply `250 2.0.0 Ok: queued as <id>`; also the file stem.
    pub id: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// The message as received: dot-unstuffed, CRLF line ends, without the final `.\r\n`.
    pub data: Vec<u8>,
    /// Lower-case hex SHA-256 of `data`.
    pub sha256: String,
    /// Client certificate subject, entries in certificate order: `C=DE, O=..., CN=...`.
    pub client_cert_subject: String,
    /// Lower-case hex SHA-256 of the client certificate's DER.
    pub client_cert_sha256: String,
    pub eml_path: PathBuf,
    pub json_path: PathBuf,
    /// SMTP AUTH identity, when AUTH was required.
    pub auth_user: Option<String>,
    pub message_id: String,
    /// `X-de-mail-private-id` (or the `X-de-mail-privat-id` spelling), the topmost one.
    pub private_id: Option<String>,
    pub subject: Option<String>,
    pub options: DeMailOptions,
}

/// The TR-01201 option fields as sent (a missing field means `no`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeMailOptions {
    /// `X-de-mail-confirmation-of-dispatch: yes`
    pub dispatch: bool,
    /// `X-de-mail-confirmation-of-receipt: yes`
    pub receipt: bool,
    /// `X-de-mail-confirmation-of-retrieve: yes`
    pub retrieve: bool,
    /// `X-de-mail-authoritative: yes`
    pub authoritative: bool,
    /// `X-de-mail-private: yes`
    pub private: bool,
}

/// Where in the SMTP dialogue a rejection happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before any protocol (too many connections).
    Connect,
    /// The TLS handshake (implicit or after STARTTLS), e.g. no or a foreign client certificate.
    Tls,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    /// The DATA command itself.
    Data,
    /// The checks after the message was received.
    EndOfData,
    /// Any other command, unknown commands, syntax, timeouts, limits.
    Other,
}

/// A 4xx/5xx reply the simulator sent (or a failed handshake), for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub stage: Stage,
    /// The reply line without CRLF (for [`Stage::Tls`], a description of the failure).
    pub reply: String,
    pub peer: SocketAddr,
}

/// Bounds on what one client can make the simulator do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Octets of a command line without CRLF (RFC 5321 allows 512; extensions add some).
    pub max_command_line: usize,
    /// Octets of a message line as sent (without CRLF; RFC 5321: 998, plus a stuffed dot).
    pub max_data_line: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    /// Errors (4xx/5xx replies) after which the connection is closed with 421.
    pub max_errors: u32,
    pub max_auth_failures: u32,
    /// Read timeout while waiting for a command (and during the TLS handshake).
    pub command_timeout: Duration,
    /// Read timeout for each read while receiving message data.
    pub data_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_command_line: 2048,
            max_data_line: 999,
            max_recipients: 100,
            max_connections: 32,
            max_errors: 20,
            max_auth_failures: 3,
            command_timeout: Duration::from_secs(120),
            data_timeout: Duration::from_secs(180),
        }
    }
}

/// How the simulator runs beyond its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub limits: Limits,
    /// Log each transaction and rejection to stderr. Default: only if the environment
    /// variable `DEMAIL_SIM_LOG` is set (test output stays clean otherwise).
    pub log_to_stderr: bool,
    /// The sending side (confirmations to the city); `None`: the simulator only receives.
    pub send: Option<crate::send::SendConfig>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            limits: Limits::default(),
            log_to_stderr: std::env::var_os("DEMAIL_SIM_LOG").is_some(),
            send: None,
        }
    }
}
