//! One mail transaction as the milter collects it: envelope, header fields, spooled body, and
//! what kind of message it is.

use demail_evidence::OriginKey;
use demail_policy::Route;
use tempfile::SpooledTempFile;

use crate::header::{Field, render_received};

/// Bodies larger than this are spooled to a temporary file instead of memory.
pub const SPOOL_IN_MEMORY: usize = 1024 * 1024;

/// What a message is, decided once; every later stage follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not yet known (before DATA).
    Undecided,
    /// Every recipient is De-Mail: the content is ours to process, record and send.
    DeMail,
    /// Ordinary mail with a poststelle recipient, whose signatures we check.
    Poststelle,
    /// The pinned provider's traffic on its service, verified and recorded at the end.
    Provider,
    /// Any other mail. Only header fields that may need changing are kept; without any, it is
    /// accepted at end of header.
    Ordinary,
}

/// The TLS client certificate Postfix verified, by its names (Postfix has no fingerprint macro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    pub subject: String,
    pub issuer: Option<String>,
}

/// One mail transaction.
pub struct Message {
    pub queue_id: Option<String>,
    /// Envelope sender without angle brackets ("" for the null sender).
    pub sender: String,
    pub sasl_login: Option<String>,
    /// Each recipient where Postfix will deliver it (resolved address, De-Mail or not).
    pub recipients: Vec<Route>,
    /// What the message is; decided once (at MAIL for the provider, else at DATA).
    pub kind: Kind,
    /// The verified TLS client certificate of the connection, for the evidence.
    pub tls_client: Option<TlsClient>,
    pub fields: Vec<Field>,
    pub header_end_seen: bool,
    /// The envelope and the message as received: the origin key that makes retries
    /// idempotent. Started at end of header, when the envelope is complete.
    pub origin: Option<OriginKey>,
    pub body: SpooledTempFile,
    pub body_len: u64,
    /// Bytes received so far (headers as rendered, plus body), for the early size check.
    pub received_len: u64,
}

impl Message {
    /// The first body chunk or end of header: the header section as received starts the
    /// origin key, and the size estimate becomes exact.
    pub fn end_header(&mut self) {
        if !self.header_end_seen {
            self.header_end_seen = true;
            let head = render_received(&self.fields);
            let rcpts: Vec<&str> = self.recipients.iter().map(|r| r.address.as_str()).collect();
            let mut origin = OriginKey::new(&self.sender, self.sasl_login.as_deref(), &rcpts);
            origin.update(&head);
            self.origin = Some(origin);
            // The rendered size is exact (CRLF folding), replacing the estimate.
            let estimate: u64 = self
                .fields
                .iter()
                .map(|f| (f.name.len() + f.value.len() + 3) as u64)
                .sum();
            self.received_len = self.received_len - estimate + head.len() as u64;
        }
    }
}
