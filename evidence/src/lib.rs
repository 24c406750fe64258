//! Evidence store of demail-gateway: an append-only SQLite event log whose rows form a SHA-256
//! hash chain, content-addressed blob files for the exact bytes of each message, and
//! projections (lookup tables, per-recipient status) derived from the events.
//!
//! Layout on disk: the database file (WAL mode, plus `-wal`/`-shm`) and a blob directory with
//! `ab/abcdef…` files named by their SHA-256. Nothing here knows SMTP or IMAP.

mod blob;
mod chain;
mod digest;
mod error;
mod schema;
mod status;
mod store;
mod submission;
mod verify;

#[cfg(test)]
mod tests;

pub use blob::BlobWriter;
pub use digest::{Digest, ParseDigestError};
pub use error::{Error, Result};
pub use status::{RecipientStatus, Status};
pub use store::{DEFAULT_BUSY_TIMEOUT, Store};
pub use submission::{NewSubmission, Recorded, Submission};
pub use verify::{ChainHead, ChainReport, Problem};
