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

    /// Flips bit 0 of byte `at` of blob `d`, as someone with write access to the files could:
    /// in its database row (past the trigger), or in its file.
    pub fn flip_blob_bit(&self, d: &Digest, at: usize) {
        let raw = self.raw();
        let key = &d.0[..];
        let row = raw.query_row("SELECT bytes FROM blobs WHERE digest = ?1", [key], |r| {
            r.get::<_, Vec<u8>>(0)
        });
        if let Ok(mut bytes) = row {
            bytes[at] ^= 1;
            raw.execute_batch("DROP TRIGGER IF EXISTS blobs_no_update")
                .unwrap();
            raw.execute(
                "UPDATE blobs SET bytes = ?1 WHERE digest = ?2",
                rusqlite::params![bytes, key],
            )
            .unwrap();
            return;
        }
        let path = self.open().blob_path(d);
        let mut perm = std::fs::metadata(&path).expect("blob file").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&path, perm).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
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
