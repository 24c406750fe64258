//! Internal errors. Every one of them ends the transaction with a tempfail: Postfix keeps the
//! mail and the client retries, so nothing is lost and nothing passes unrecorded.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("evidence store ({database}, {blobs}): {message}")]
    Evidence {
        database: String,
        blobs: PathBuf,
        message: String,
    },
    #[error("spooling the message body: {0}")]
    Spool(#[source] io::Error),
    #[error("writing the evidence blob: {0}")]
    Blob(#[source] io::Error),
    #[error("evidence task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("milter action {action} failed: {source}")]
    Action {
        action: &'static str,
        #[source]
        source: indymilter::ActionError,
    },
    #[error("header field {0} would contain a NUL byte")]
    Nul(String),
    #[error("invalid SMTP reply {code} {xcode}: {source}")]
    Reply {
        code: &'static str,
        xcode: String,
        #[source]
        source: indymilter::SmtpReplyError,
    },
    #[error("signature verification setup ([trust]): {0}")]
    Trust(String),
    #[error("verification report cannot be recorded: {0}")]
    Report(String),
    #[error("protocol state: {0}")]
    State(&'static str),
}
