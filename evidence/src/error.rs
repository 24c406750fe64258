//! The one error type of the evidence store.

use std::path::PathBuf;

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("evidence database: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("evidence database: {0}")]
    Database(#[from] demail_sql::Error),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Stored data that cannot be what this crate wrote.
    #[error("evidence store corrupt: {0}")]
    Corrupt(String),

    /// A caller handed in a value the store refuses to record.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    #[error("blob {digest} missing (expected at {})", path.display())]
    BlobMissing { digest: Digest, path: PathBuf },

    #[error("blob {}: content hashes to {actual}, its name says {expected}", path.display())]
    BlobMismatch {
        expected: Digest,
        actual: Digest,
        path: PathBuf,
    },

    /// A batch of the group committer failed as a whole (nothing of it was recorded).
    #[error("evidence database: group commit failed: {0}")]
    GroupCommit(String),

    /// The group committer's writer thread is gone; open a new committer.
    #[error("evidence group committer stopped")]
    CommitterStopped,

    /// A backup that cannot be written, or a backup file that is refused for restore.
    #[error("{}: {reason}", path.display())]
    Backup { path: PathBuf, reason: String },

    #[error("{}: not a demail evidence database ({reason})", path.display())]
    NotEvidenceDatabase { path: PathBuf, reason: String },

    #[error(
        "{}: schema version {found}, this program knows up to {supported}{hint}",
        path.display()
    )]
    SchemaVersion {
        path: PathBuf,
        found: i64,
        supported: i64,
        hint: &'static str,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl Error {
    pub(crate) fn backup(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Backup {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
