//! Tests that need the crate's internals: query plans, the hash encoding, connection settings.

use rusqlite::Connection;

use crate::chain::{self, event_hash};
use crate::submission as sub;
use crate::{Digest, NewSubmission, Problem, Store};

pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("blobs")).unwrap();
    (dir, store)
}

/// Records submission `n`; its content is a blob file for even `n`, a database row for odd.
pub(crate) fn record(store: &Store, n: u32) -> NewSubmission {
    let body = format!("message {n}");
    let content = if n.is_multiple_of(2) {
        let mut w = store.blob_writer().unwrap();
        std::io::Write::write_all(&mut w, body.as_bytes()).unwrap();
        w.finish().unwrap().0
    } else {
        store.put_blob(body.as_bytes()).unwrap()
    };
    let s = NewSubmission {
        private_id: format!("p{n}"),
        origin_key: Digest::of(body.as_bytes()),
        tenant: "t".into(),
        account: "a@t.de-mail.de".into(),
        clerk: "c@t.example".into(),
        sasl_login: None,
        recipients: vec!["r@x.de-mail.de".into()],
        subject: format!("s{n}"),
        message_id: format!("<{n}@t.example>"),
        queue_id: "Q".into(),
        options: vec![],
        content,
        size: body.len() as u64,
        time: time::macros::datetime!(2026-11-02 9:00 UTC),
    };
    store.record_submission(&s).unwrap();
    s
}

/// The `detail` column of EXPLAIN QUERY PLAN.
fn plan(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    stmt.query_map(params, |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every lookup must go through an index: at 1,000,000 records a SCAN or a sort would break
/// the < 1 ms target; a SEARCH on a b-tree stays logarithmic.
#[test]
fn every_lookup_searches_an_index() {
    let (_dir, store) = store();
    for n in 0..3 {
        record(&store, n);
    }
    let key = Digest::of(b"k");
    // (query, parameters, how the first table must be accessed)
    let cases: [(&str, &[&dyn rusqlite::ToSql], &str); 7] = [
        (
            sub::BY_PRIVATE_ID_SQL,
            &[&"p1"],
            "PRIMARY KEY (private_id=?)",
        ),
        (
            sub::BY_MESSAGE_ID_SQL,
            &[&"1@t.example"],
            "INDEX submissions_message_id (message_id=?)",
        ),
        (
            sub::BY_ORIGIN_KEY_SQL,
            &[&&key.0[..]],
            "INDEX submissions_origin_key (origin_key=?)",
        ),
        (
            sub::LIST_SQL,
            &[&0i64, &10i64],
            "INDEX submissions_time (time>?)",
        ),
        (
            sub::LIST_TENANT_SQL,
            &[&0i64, &10i64, &"t"],
            "INDEX submissions_tenant_time (tenant=? AND time>?)",
        ),
        (
            sub::EVENTS_OF_SQL,
            &[&"p1"],
            "INDEX events_private_id (private_id=?)",
        ),
        (
            sub::BY_EVENT_SQL,
            &[&1i64],
            "INDEX sqlite_autoindex_submissions_2 (event_id=?)",
        ),
    ];
    for (sql, params, access) in cases {
        let steps = plan(store.conn().sqlite().unwrap(), sql, params);
        let first = steps.first().map(String::as_str).unwrap_or_default();
        assert!(first.ends_with(access), "{sql}: {steps:?}");
        for step in &steps {
            assert!(step.starts_with("SEARCH"), "{sql}: {steps:?}");
            assert!(!step.contains("TEMP B-TREE"), "{sql} sorts: {steps:?}");
        }
        if sql.contains("CROSS JOIN") {
            assert_eq!(
                steps.get(1).map(String::as_str),
                Some("SEARCH e USING INTEGER PRIMARY KEY (rowid=?)")
            );
        }
    }
    let head = plan(
        store.conn().sqlite().unwrap(),
        "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
        &[],
    );
    assert_eq!(
        head,
        ["SCAN events"],
        "the head is read from the end of the rowid b-tree"
    );
}

#[test]
fn connection_syncs_fully() {
    let (_dir, store) = store();
    let sync: i64 = store
        .conn()
        .sqlite()
        .unwrap()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let mode: String = store
        .conn()
        .sqlite()
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// The documented encoding, rebuilt by hand, gives the same hash as the code.
#[test]
fn event_hash_follows_the_documented_encoding() {
    let prev = Digest::of(b"prev");
    let fields = ["2026-11-02T09:00:00Z", "submission", "p1", "{\"a\":1}", ""];
    let mut enc = b"demail-evidence/event/v1\0".to_vec();
    enc.extend_from_slice(&7i64.to_be_bytes());
    for f in fields {
        enc.extend_from_slice(&(f.len() as u64).to_be_bytes());
        enc.extend_from_slice(f.as_bytes());
    }
    enc.extend_from_slice(&32u64.to_be_bytes());
    enc.extend_from_slice(&prev.0);
    assert_eq!(event_hash(7, fields, &prev.0), Digest::of(&enc));
    // Length prefixes: moving a byte between adjacent fields changes the hash.
    let shifted = ["2026-11-02T09:00:00Z", "submissio", "np1", "{\"a\":1}", ""];
    assert_ne!(
        event_hash(7, fields, &prev.0),
        event_hash(7, shifted, &prev.0)
    );
}

/// An attacker who edits an event and recomputes its hash breaks the next link instead.
#[test]
fn relinking_an_edited_event_breaks_the_next_prev_hash() {
    let (dir, store) = store();
    for n in 0..4 {
        record(&store, n);
    }
    let raw = Connection::open(dir.path().join("e.sqlite")).unwrap();
    raw.execute_batch("DROP TRIGGER events_no_update").unwrap();
    let raw = demail_sql::Conn::Sqlite(raw);
    let sql = format!("{} LIMIT 1 OFFSET 1", chain::SELECT_ALL);
    let mut row = chain::EventRow::from_row(raw.query_opt(&sql, &[]).unwrap().unwrap()).unwrap();
    assert_eq!(row.id, 2);
    row.payload = row.payload.replace("\"s1\"", "\"s9\"");
    let rehashed = row.computed_hash();
    raw.execute(
        "UPDATE events SET payload = ?1, hash = ?2 WHERE id = 2",
        demail_sql::args![&row.payload, &rehashed.0],
    )
    .unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(report.first_bad_event(), Some(3), "{:?}", report.problems);
    assert!(matches!(
        report.problems[0],
        Problem::PrevHash { event_id: 3, .. }
    ));
}

#[test]
fn first_event_links_to_zero() {
    let (_dir, store) = store();
    record(&store, 0);
    let prev: Vec<u8> = store
        .conn()
        .sqlite()
        .unwrap()
        .query_row("SELECT prev_hash FROM events WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(prev, Digest::ZERO.0);
}
