//! The virtual folders' contents: which evidence a login sees, as IMAP mailboxes with stable
//! UIDs, flags and a persisted, only increasing HIGHESTMODSEQ. Reads the evidence store (never
//! writes it); keeps its own state (UIDVALIDITY, UID map, per-login `\Seen`/`\Flagged`) in the
//! `[imap_proxy] state` SQLite file.
//!
//! Blocking (SQLite, blob files): sessions call it from `spawn_blocking`.

use std::sync::Arc;

use time::OffsetDateTime;

/// Which virtual folder (`[imap_proxy.folders]`): the role, not its configured name, keys the
/// state, so renaming a folder keeps its UIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Versandbestätigungen (provider messages as received).
    Dispatch,
    /// Eingangsbestätigungen.
    Receipt,
    /// Abholbestätigungen.
    Retrieve,
    /// Fehlermeldungen (notifications).
    Failed,
    /// Sent De-Mails a requested confirmation is still missing for (generated notice + original).
    Pending,
    /// Sent De-Mails deemed served (generated notice + original).
    DeemedServed,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Dispatch,
        Role::Receipt,
        Role::Retrieve,
        Role::Failed,
        Role::Pending,
        Role::DeemedServed,
    ];

    /// Stable key in the state file.
    pub fn key(self) -> &'static str {
        match self {
            Role::Dispatch => "dispatch",
            Role::Receipt => "receipt",
            Role::Retrieve => "retrieve",
            Role::Failed => "failed",
            Role::Pending => "pending",
            Role::DeemedServed => "deemed-served",
        }
    }
}

/// Per-login flags the proxy keeps (PERMANENTFLAGS `\Seen \Flagged`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub seen: bool,
    pub flagged: bool,
}

/// One message of a virtual folder as one login sees it.
#[derive(Clone, Debug)]
pub struct Item {
    pub uid: u32,
    pub internal_date: OffsetDateTime,
    /// Length of the message bytes (RFC822.SIZE).
    pub size: u64,
    pub flags: Flags,
    /// MODSEQ of the last change of this item's flags (or of its arrival).
    pub modseq: u64,
}

/// A folder as one login sees it at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub role: Role,
    pub uid_validity: u32,
    /// Above every UID ever assigned in this folder for this login.
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// Ascending by UID.
    pub items: Vec<Item>,
}

/// A STORE on one item: `Some(v)` sets the flag to `v`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlagChange {
    pub seen: Option<bool>,
    pub flagged: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("evidence store: {0}")]
    Evidence(#[from] demail_evidence::Error),
    #[error("proxy state {path}: {source}")]
    State {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Shared by every session of one proxy process.
pub struct Mailboxes {
    _private: (),
}

impl Mailboxes {
    /// Opens the evidence store read-only and the state file (created if missing).
    pub fn open(
        _config: Arc<demail_policy::Config>,
        _state: &std::path::Path,
    ) -> Result<Mailboxes, MailboxError> {
        Ok(Mailboxes { _private: () })
    }

    /// The folder as `login` sees it now: new evidence gets the next UIDs, items that left
    /// (a pending De-Mail that got its confirmation) are gone.
    pub fn snapshot(&self, _login: &str, role: Role) -> Result<Snapshot, MailboxError> {
        Ok(Snapshot {
            role,
            uid_validity: 1,
            uid_next: 1,
            highest_modseq: 1,
            items: Vec::new(),
        })
    }

    /// The exact bytes of one item (`None`: no such UID for this login).
    pub fn content(
        &self,
        _login: &str,
        _role: Role,
        _uid: u32,
    ) -> Result<Option<Arc<Vec<u8>>>, MailboxError> {
        Err(MailboxError::Other("not built yet".into()))
    }

    /// Applies a flag change; returns the item's new flags and MODSEQ (`None`: no such UID).
    pub fn store_flags(
        &self,
        _login: &str,
        _role: Role,
        _uid: u32,
        _change: FlagChange,
    ) -> Result<Option<(Flags, u64)>, MailboxError> {
        Err(MailboxError::Other("not built yet".into()))
    }
}
