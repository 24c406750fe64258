//! Changing stored evidence the way someone with write access to the evidence files could: for
//! the tests that show the readers and `evidence verify` notice.

use std::path::Path;

use demail_evidence::{Digest, Store};
use rusqlite::{Connection, params};

/// Flips one bit in the middle of the stored blob `d`, wherever it is kept (a row of the
/// database's `blobs` table, or a file of the blob directory).
pub fn flip_blob_bit(database: &Path, blobs: &Path, d: &Digest) {
    let conn = Connection::open(database).expect("open the evidence database");
    let row: Option<Vec<u8>> = conn
        .query_row(
            "SELECT bytes FROM blobs WHERE digest = ?1",
            params![&d.0[..]],
            |r| r.get(0),
        )
        .ok();
    if let Some(mut bytes) = row {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        // The trigger only stops accidents; whoever owns the file can drop it.
        conn.execute_batch("DROP TRIGGER IF EXISTS blobs_no_update")
            .expect("drop the trigger");
        conn.execute(
            "UPDATE blobs SET bytes = ?1 WHERE digest = ?2",
            params![bytes, &d.0[..]],
        )
        .expect("change the blob row");
        return;
    }
    let store = Store::open_read_only(database, blobs).expect("open the store");
    let path = store.blob_path(d);
    let mut perms = std::fs::metadata(&path).expect("blob file").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("make the blob writable");
    let mut bytes = std::fs::read(&path).expect("read the blob file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).expect("write the blob file");
}
