//! The evidence store on a real PostgreSQL server, as several gateway nodes use it: one
//! linear hash chain under concurrent writers, retries that land on another node, rights
//! that forbid the gateway role to change what was written, blobs in the database.

use std::path::Path;
use std::sync::Arc;

use demail_e2e::PgServer;
use demail_e2e::postgres::{DATABASE, GATEWAY};
use demail_evidence::{
    Barrier, Digest, Error, GroupCommitter, Location, NewSubmission, Recorded, Store,
};
use time::macros::datetime;

const NODES: usize = 4;
const PER_NODE: u32 = 40;

fn location(value: &str, password_file: &Path) -> Location {
    Location::parse(value, Path::new("/"), Some(password_file.to_path_buf()))
        .unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn submission(store: &Store, node: usize, n: u32) -> NewSubmission {
    let message = format!(
        "From: clerk{n}@node{node}.example\r\nTo: buerger@example.de-mail.de\r\n\
         Message-ID: <m{n}.{node}@city.example>\r\nSubject: Bescheid {n}\r\n\r\nHallo\r\n"
    );
    let content = store.put_blob(message.as_bytes()).expect("put blob");
    NewSubmission {
        private_id: format!("node{node}-{n:06}"),
        origin_key: Digest::of(format!("origin {node} {n}").as_bytes()),
        tenant: "verband".into(),
        account: "stadt@verband.de-mail.de".into(),
        clerk: format!("clerk{n}@node{node}.example"),
        sasl_login: None,
        recipients: vec!["buerger@example.de-mail.de".into()],
        subject: format!("Bescheid {n}"),
        message_id: format!("<m{n}.{node}@city.example>"),
        queue_id: format!("4Q{n:05}"),
        options: vec!["dispatch".into()],
        content,
        size: message.len() as u64,
        time: datetime!(2026-11-02 09:00 UTC),
    }
}

#[test]
fn several_nodes_write_one_chain_and_the_gateway_role_cannot_change_it() {
    let pg = PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let owner = location(&pg.owner_url(DATABASE), &pg.owner_password_file());
    let gateway = location(&pg.gateway_url(DATABASE), &pg.gateway_password_file());

    // Before the migration the gateway's store refuses to open and says what to run.
    let Err(err) = Store::open_at(&gateway, tmp.path()) else {
        panic!("an unmigrated database must not open");
    };
    assert!(
        err.to_string().contains("demailctl evidence migrate"),
        "{err}"
    );
    // The gateway role cannot apply the migration itself.
    assert!(Store::migrate(&gateway, tmp.path(), &[]).is_err());
    let (before, after) = Store::migrate(&owner, tmp.path(), &[GATEWAY.to_string()]).unwrap();
    assert_eq!(before, 0);
    assert!(after >= 1);
    // Migrating again changes nothing.
    assert_eq!(
        Store::migrate(&owner, tmp.path(), &[GATEWAY.to_string()]).unwrap(),
        (after, after)
    );

    // NODES writers at once, half of them with the group committer the milter uses.
    let gateway = Arc::new(gateway);
    let threads: Vec<_> = (0..NODES)
        .map(|node| {
            let gateway = Arc::clone(&gateway);
            let blobs = tmp.path().join(format!("node{node}"));
            std::thread::spawn(move || {
                let store = Store::open_at(&gateway, &blobs).expect("node opens the store");
                if node % 2 == 0 {
                    for n in 0..PER_NODE {
                        let s = submission(&store, node, n);
                        assert!(matches!(
                            store.record_submission(&s).unwrap(),
                            Recorded::Inserted(_)
                        ));
                    }
                } else {
                    let gc = GroupCommitter::open_at(&gateway, &blobs, Barrier::SyncFs).unwrap();
                    let inner: Vec<_> = (0..PER_NODE)
                        .map(|n| {
                            let s = submission(&store, node, n);
                            let bytes = format!("message {node} {n}").into_bytes();
                            let mut s2 = s.clone();
                            s2.content = Digest::of(&bytes);
                            s2.size = bytes.len() as u64;
                            (s2, bytes)
                        })
                        .collect();
                    std::thread::scope(|scope| {
                        for (s, bytes) in inner {
                            let gc = &gc;
                            scope.spawn(move || {
                                assert!(matches!(
                                    gc.submit_inline(s, bytes).unwrap(),
                                    Recorded::Inserted(_)
                                ));
                            });
                        }
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }

    // One linear chain over everything: every event links to the one before it.
    let reader = Store::open_at(&gateway, tmp.path()).unwrap();
    let report = reader.verify_chain().unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, (NODES as u64) * u64::from(PER_NODE));
    let head = report.head.expect("head");
    assert_eq!(head.event_id, report.events as i64);
    let ids = pg.psql(
        DATABASE,
        "SELECT count(DISTINCT id), min(id), max(id) FROM events",
    );
    assert_eq!(ids, format!("{0}|1|{0}", report.events));

    // A retry of node 0's message that lands on node 1: the same record, nothing written.
    let node1 = Store::open_at(&gateway, &tmp.path().join("node1")).unwrap();
    let retry = submission(&node1, 0, 7);
    let found = node1
        .submission_by_origin_key(&retry.origin_key)
        .unwrap()
        .expect("node 1 sees node 0's record");
    assert_eq!(found.private_id, "node0-000007");
    assert!(matches!(
        node1.record_submission(&retry).unwrap(),
        Recorded::AlreadyPresent(_)
    ));
    assert_eq!(node1.head().unwrap(), Some(head));
    assert_eq!(
        node1
            .find("node3-000039")
            .unwrap()
            .expect("lookup by private-id")
            .subject,
        "Bescheid 39"
    );

    // A blob of several MiB goes into the database (bytea), not into a node's directory.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = node1.put_blob(&big).unwrap();
    assert_eq!(node1.read_blob(&d).unwrap(), big);
    assert!(!node1.blob_path(&d).exists());
    let stored = pg.psql(
        DATABASE,
        &format!(
            "SELECT length(bytes) FROM blobs WHERE digest = '\\x{}'",
            d.hex()
        ),
    );
    assert_eq!(stored, big.len().to_string());
    // Another node reads it.
    assert_eq!(reader.read_blob(&d).unwrap(), big);

    // The gateway role may not change or delete anything: its grants say so.
    let gw = demail_sql_conn(&pg.gateway_url(DATABASE), &pg.gateway_password_file());
    for sql in [
        "UPDATE events SET kind = kind WHERE id = 1",
        "DELETE FROM events WHERE id = 1",
        "DELETE FROM submissions",
        "UPDATE blobs SET bytes = '\\x00'",
        "DELETE FROM blobs",
        "TRUNCATE events",
        "DROP TABLE events",
        "ALTER TABLE events DISABLE TRIGGER ALL",
    ] {
        let Err(err) = gw.batch(sql) else {
            panic!("the gateway role ran {sql}");
        };
        let text = err.to_string();
        assert!(
            text.contains("permission denied") || text.contains("must be owner"),
            "{sql}: {text}"
        );
    }
    // Even the owner cannot change events or blobs without first dropping the triggers.
    let own = demail_sql_conn(&pg.owner_url(DATABASE), &pg.owner_password_file());
    for sql in [
        "UPDATE events SET kind = kind WHERE id = 1",
        "DELETE FROM events WHERE id = 1",
        "UPDATE blobs SET bytes = '\\x00'",
        "TRUNCATE blobs",
        "TRUNCATE events CASCADE",
    ] {
        let Err(err) = own.batch(sql) else {
            panic!("the owner ran {sql}");
        };
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let after = reader.verify_chain().unwrap();
    assert!(after.is_intact());
    assert_eq!(after.head, Some(head));

    // What the owner can still do behind the triggers' back is detected.
    pg.psql(
        DATABASE,
        "ALTER TABLE events DISABLE TRIGGER ALL; \
         UPDATE events SET payload = replace(payload, 'Bescheid 5', 'Bescheid 6') \
           WHERE private_id = 'node2-000005'; \
         ALTER TABLE events ENABLE TRIGGER ALL",
    );
    let tampered = reader.verify_chain().unwrap();
    assert!(!tampered.is_intact(), "a changed event must be detected");
}

fn demail_sql_conn(value: &str, password_file: &Path) -> demail_sql::Conn {
    let Location::Postgres(pg) = location(value, password_file) else {
        unreachable!()
    };
    demail_sql::Conn::connect(&pg).expect("connect")
}

#[test]
fn a_foreign_database_is_refused() {
    let pg = PgServer::start();
    let db = pg.create_database();
    pg.psql(&db, "CREATE TABLE events (id int)");
    let tmp = tempfile::tempdir().unwrap();
    let owner = location(&pg.owner_url(&db), &pg.owner_password_file());
    let Err(err) = Store::migrate(&owner, tmp.path(), &[]) else {
        panic!("a database with foreign tables must not be migrated");
    };
    assert!(matches!(err, Error::NotEvidenceDatabase { .. }), "{err}");
    assert!(
        err.to_string().contains("events"),
        "names the foreign table: {err}"
    );
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM events"), "0");
}
