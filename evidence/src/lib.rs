//! Evidence store of demail-gateway: an append-only SQLite event log whose rows form a SHA-256
//! hash chain, content-addressed blob files for the exact bytes of each message, and
//! projections (lookup tables, per-recipient status) derived from the events.
//!
//! Layout on disk: the database file (WAL mode, plus `-wal`/`-shm`) and a blob directory with
//! `ab/abcdef…` files named by their SHA-256. Nothing here knows SMTP or IMAP.
//!
//! Guarantees:
//! - Durability: a blob is fsynced (file and directory) by [`BlobWriter::finish`], or, after
//!   [`BlobWriter::finish_deferred`], by the group commit that records it; a record is
//!   committed with `synchronous=FULL` before [`Store::record_submission`] returns, in one
//!   transaction (event plus lookup row), so a crash leaves no record or a complete one.
//! - Integrity: event N stores the hash of event N-1; [`Store::verify_chain`] recomputes every
//!   link and blob digest and names the first event that does not match. Events cut off the
//!   end of the chain leave it valid, so keep [`ChainReport::head`] elsewhere to detect that.
//! - Group commit: [`GroupCommitter`] records submissions from many threads in batches that
//!   share one blob flush and one SQLite commit, with the same guarantees per submission.
//! - Concurrency: see [`Store`]. Blob temp files are `flock`ed while written, so the blob
//!   directory must be on a local file system.

mod backup;
mod berlin;
mod blob;
mod chain;
mod confirmation;
mod copy;
mod digest;
mod error;
mod export;
mod group;
mod log;
pub mod matching;
mod prune;
mod qes;
mod schema;
mod status;
mod store;
mod submission;
mod ustar;
mod verify;

#[cfg(test)]
mod tests;

pub use backup::{BACKUP_FORMAT, BACKUP_VERSION, BackupSummary, RestoreSummary};
pub use blob::{BlobWriter, INLINE_MAX, PendingBlob};
pub use chain::EventRecord;
pub use confirmation::{Confirmation, ConfirmationKind, ConfirmationRecorded, NewConfirmation};
pub use copy::CopySummary;
pub use demail_sql::Location;
pub use digest::{Digest, OriginKey, ParseDigestError};
pub use error::{Error, Result};
pub use export::ExportSummary;
pub use group::{Barrier, GroupCommitter};
pub use log::Event;
pub use prune::{PruneOutcome, PruneRecord, PrunedBlob};
pub use qes::{NewQesCheck, QesCheck, QesCheckRecorded};
pub use status::{
    Outstanding, RecipientStatus, Status, deemed_served_deadline, german_time, outstanding,
    project_status,
};
pub use store::{DEFAULT_BUSY_TIMEOUT, Store};
pub use submission::{NewSubmission, Recorded, Submission};
pub use verify::{ChainHead, ChainReport, Problem};
