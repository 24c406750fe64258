//! The sending side: what a TR-01201 provider sends back to the city's gateway. For every
//! accepted message and recipient it assigns an `X-de-mail-message-id`, signs the dispatched
//! copy (`X-de-mail-integrity`, qualified), and sends a Versandbestätigung, an
//! Eingangsbestätigung or a notification (`unknown-recipient`, `closed-account`), and an
//! Abholbestätigung when told the recipient logged in. It also injects inbound De-Mails and
//! forgeries for tests. Everything goes by SMTP with implicit TLS and the provider's client
//! certificate to the city's `demail-in`.
//!
//! Conventions of ours (the TR leaves them open): system addresses `Versandbestaetigung@`,
//! `Eingangsbestaetigung@`, `Abholbestaetigung@` and `Meldung@<provider domain>`; a
//! confirmation carries the original's `X-de-mail-message-id` and `X-de-mail-private-id`; the
//! recipient it is about is in its XML `Metadata` (`X-de-mail-actual-recipient`, `to=addr`)
//! and in its text (`Empfänger: addr`); parts `bestaetigung.xml`/`.pdf` (`meldung.*` for
//! notifications) after a `text/plain` part, all base64.

/// How the simulated provider builds and seals its messages (tests use it to seal their own).
pub mod compose;
pub mod config;
mod control;
pub mod mime;
pub mod pdf;
mod provider;
mod smtp;
mod worker;
mod xml;

use std::path::PathBuf;

use thiserror::Error;
use time::OffsetDateTime;

use crate::receive::DeMailOptions;
use crate::xmlsig::XmlSignError;

pub use config::SendConfig;
pub use control::{ControlServer, control_command};
pub use provider::Provider;
pub use smtp::{Delivery, Target, Transport};
pub(crate) use worker::Worker;

/// The three confirmations of TR-01201 (PVD_IO §3.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfirmationKind {
    /// Versandbestätigung.
    Dispatch,
    /// Eingangsbestätigung.
    Receipt,
    /// Abholbestätigung.
    Retrieve,
}

impl ConfirmationKind {
    /// `X-de-mail-message-type`.
    pub fn message_type(self) -> &'static str {
        match self {
            ConfirmationKind::Dispatch => "confirmation of dispatch",
            ConfirmationKind::Receipt => "confirmation of receipt",
            ConfirmationKind::Retrieve => "confirmation of retrieve",
        }
    }

    /// The German name, as in the subject `*Versandbestätigung* ...`.
    pub fn title(self) -> &'static str {
        match self {
            ConfirmationKind::Dispatch => "Versandbestätigung",
            ConfirmationKind::Receipt => "Eingangsbestätigung",
            ConfirmationKind::Retrieve => "Abholbestätigung",
        }
    }

    /// Local part of the system address that sends it.
    pub fn system_local_part(self) -> &'static str {
        match self {
            ConfirmationKind::Dispatch => "Versandbestaetigung",
            ConfirmationKind::Receipt => "Eingangsbestaetigung",
            ConfirmationKind::Retrieve => "Abholbestaetigung",
        }
    }
}

/// Why a message could not be delivered (`X-de-mail-notification-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    UnknownRecipient,
    ClosedAccount,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::UnknownRecipient => "unknown-recipient",
            NotificationKind::ClosedAccount => "closed-account",
        }
    }

    fn german(self) -> &'static str {
        match self {
            NotificationKind::UnknownRecipient => "Empfänger unbekannt",
            NotificationKind::ClosedAccount => "Konto des Empfängers geschlossen",
        }
    }
}

/// What the simulator made of a recipient of an accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Has a mailbox here: dispatched and stored.
    Delivered,
    /// Not a known recipient: not dispatched, notification sent.
    Unknown,
    /// Known but closed: not dispatched, notification sent.
    Closed,
}

/// One recipient's copy of an accepted message, as the provider dispatched it.
#[derive(Debug, Clone)]
pub struct Dispatched {
    /// `X-de-mail-message-id` assigned by the simulator (`<...@provider domain>`).
    pub message_id: String,
    /// Queue id of the receiving side (`Accepted::id`).
    pub accepted_id: String,
    /// The sending account (envelope sender).
    pub sender: String,
    /// Where confirmations go: the original's Reply-To if set, else the sender.
    pub confirm_to: String,
    pub recipient: String,
    pub private_id: Option<String>,
    /// The original subject, decoded.
    pub subject: String,
    pub options: DeMailOptions,
    pub state: RecipientState,
    /// The copy as dispatched: provider fields added, signed (`X-de-mail-integrity`).
    pub signed: Vec<u8>,
    /// Its `X-de-mail-integrity` value, unfolded: the `Hash` of every confirmation.
    pub integrity: String,
    pub dispatched_at: OffsetDateTime,
    /// When the recipient logged in (the Abholbestätigung was made).
    pub retrieved_at: Option<OffsetDateTime>,
}

/// What a sent message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingKind {
    Confirmation(ConfirmationKind),
    Notification(NotificationKind),
    /// An inbound De-Mail to the city ([`InboundSpec`]).
    Inbound,
}

/// A message the simulator sent (or tried to send) to the city.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: OutgoingKind,
    /// True for messages made wrong on purpose ([`Forge`] other than `None`) and for every
    /// message of [`Provider::forge_confirmation`] (outside the normal flow).
    pub forged: bool,
    /// The `X-de-mail-message-id` of the original it is about (of itself, for inbound).
    pub message_id: String,
    pub private_id: Option<String>,
    /// The original recipient a confirmation or notification is about (inbound: its `to`).
    pub about_recipient: String,
    pub mail_from: String,
    pub rcpt_to: String,
    /// The exact bytes sent (CRLF line ends, before dot-stuffing).
    pub data: Vec<u8>,
    pub target: Target,
    pub delivery: Delivery,
}

impl Outgoing {
    pub fn delivered(&self) -> bool {
        self.delivery.result.is_ok()
    }
}

/// How to make a message wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forge {
    #[default]
    None,
    /// One character of the `b=` signature value changed (SIG_CRYPTO_FAILURE).
    BadSignature,
    /// A line added to the body after signing (HASH_FAILURE).
    TamperedBody,
    /// No `X-de-mail-integrity` / `X-de-mail-signature-certificate` at all.
    NoIntegrity,
}

/// An inbound De-Mail to inject into the city ([`Provider::inject`]).
#[derive(Debug, Clone)]
pub struct InboundSpec {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `X-de-mail-authoritative: yes` (and `X-de-mail-auth-level: high`).
    pub authoritative: bool,
    pub private: bool,
    /// Signed with the qualified certificate; else only hashed (`a=sha256`).
    pub signed: bool,
    pub forge: Forge,
    /// `X-de-mail-account-holder`; default: the `from` address.
    pub account_holder: Option<String>,
    /// Where to send it; default: `deliver_to` with implicit TLS.
    pub target: Option<Target>,
}

impl InboundSpec {
    /// A signed, not sender-authenticated De-Mail with no forgery, to the configured target.
    pub fn new(from: &str, to: &str, subject: &str, body: &str) -> InboundSpec {
        InboundSpec {
            from: from.into(),
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
            authoritative: false,
            private: false,
            signed: true,
            forge: Forge::None,
            account_holder: None,
            target: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum SendError {
    #[error("send configuration: key `{0}`: {1}")]
    Config(&'static str, String),
    #[error("{key} {path}: {reason}")]
    File {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS client: {0}")]
    Tls(String),
    #[error("X-de-mail-integrity: {0}")]
    Sign(#[from] demail_trust::integrity::IntegrityError),
    #[error("XML signature: {0}")]
    Xml(#[from] XmlSignError),
    #[error("no dispatched message has X-de-mail-message-id or X-de-mail-private-id {0:?}")]
    UnknownMessage(String),
    #[error("{0}: the sender did not request an Abholbestätigung")]
    RetrieveNotRequested(String),
    #[error("{id}: already retrieved at {at} (an Abholbestätigung is made at the first login)")]
    AlreadyRetrieved { id: String, at: String },
    #[error("{0}: the message was not delivered (recipient unknown or account closed)")]
    NotDelivered(String),
    #[error("inbound message: {0}")]
    BadSpec(String),
    #[error("the sending side is not configured (RunOptions::send)")]
    NotConfigured,
    #[error("the simulator is stopping")]
    Stopped,
}
