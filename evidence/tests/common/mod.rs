//! Shared fixtures for the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use demail_evidence::{Digest, NewSubmission, Store};
use time::OffsetDateTime;
use time::macros::datetime;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub blobs: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("state/evidence.sqlite");
        let blobs = dir.path().join("blobs");
        Fixture { dir, db, blobs }
    }

    pub fn open(&self) -> Store {
        Store::open(&self.db, &self.blobs).expect("open store")
    }

    /// A raw connection that bypasses the store, as an attacker with file access would.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("raw connection")
    }
}

pub const T0: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);

/// Submission number `n` of tenant `tenant`; its message bytes are stored first.
pub fn submission(store: &Store, tenant: &str, n: u32, time: OffsetDateTime) -> NewSubmission {
    let message = format!(
        "From: clerk{n}@{tenant}.example\r\nTo: buerger{n}@example.de-mail.de\r\n\
         Message-ID: <m{n}.{tenant}@city.example>\r\nSubject: Bescheid {n}\r\n\r\nHallo {n}\r\n"
    );
    let content = store.put_blob(message.as_bytes()).expect("put blob");
    NewSubmission {
        private_id: format!("{tenant}-{n:06}"),
        origin_key: Digest::of(format!("origin {tenant} {n}").as_bytes()),
        tenant: tenant.to_string(),
        account: format!("{tenant}@{tenant}.de-mail.de"),
        clerk: format!("clerk{n}@{tenant}.example"),
        sasl_login: n.is_multiple_of(2).then(|| format!("login{n}")),
        recipients: vec![
            format!("buerger{n}@example.de-mail.de"),
            format!("amt{n}@behoerde.de-mail.de"),
        ],
        subject: format!("Bescheid {n}"),
        message_id: format!("<m{n}.{tenant}@city.example>"),
        queue_id: format!("4Q{n:05}"),
        options: vec!["dispatch".into(), "receipt".into()],
        content,
        size: message.len() as u64,
        time,
    }
}
