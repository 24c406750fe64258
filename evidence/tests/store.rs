//! Recording, lookups and projections through the public API, on real SQLite files.

mod common;

use common::{Fixture, T0, submission};
use demail_evidence::{Digest, Error, Recorded, Status, Store};
use time::Duration;

#[test]
fn round_trip_keeps_every_field() {
    let fx = Fixture::new();
    let store = fx.open();
    let mut new = submission(&store, "magdeburg", 1, T0);
    new.time = T0.to_offset(time::macros::offset!(+1)) + Duration::nanoseconds(123_456_789);
    new.subject = "Grüße \"mit\" Anführungszeichen\nund Zeilenumbruch".into();
    let Recorded::Inserted(inserted) = store.record_submission(&new).unwrap() else {
        panic!("first recording must insert");
    };
    assert_eq!(inserted.event_id, 1);

    let found = store
        .find(&new.private_id)
        .unwrap()
        .expect("found by private-id");
    assert_eq!(found, inserted);
    assert_eq!(found.private_id, new.private_id);
    assert_eq!(found.origin_key, new.origin_key);
    assert_eq!(found.tenant, new.tenant);
    assert_eq!(found.account, new.account);
    assert_eq!(found.clerk, new.clerk);
    assert_eq!(found.sasl_login, new.sasl_login);
    assert_eq!(found.recipients, new.recipients);
    assert_eq!(found.subject, new.subject);
    assert_eq!(found.message_id, new.message_id);
    assert_eq!(found.queue_id, new.queue_id);
    assert_eq!(found.options, new.options);
    assert_eq!(found.content, new.content);
    assert_eq!(found.size, new.size);
    assert_eq!(found.time, new.time);
    assert_eq!(found.time.offset(), new.time.offset(), "offset survives");

    let bytes = store.read_blob(&found.content).unwrap();
    assert_eq!(Digest::of(&bytes), found.content);
    assert_eq!(bytes.len() as u64, found.size);
    // Small: kept in the database, not as a file.
    let location = store.blob_location(&found.content).unwrap();
    assert!(
        location.ends_with(&format!("#blobs/{}", found.content.hex())),
        "{location}"
    );
    assert!(!store.blob_path(&found.content).exists());
    assert_eq!(
        store.submission_by_origin_key(&new.origin_key).unwrap(),
        Some(found)
    );
    assert_eq!(
        store
            .submission_by_origin_key(&Digest::of(b"other"))
            .unwrap(),
        None
    );
}

#[test]
fn replay_is_idempotent_and_returns_the_stored_record() {
    let fx = Fixture::new();
    let store = fx.open();
    let first = submission(&store, "halle", 7, T0);
    let stored = store.record_submission(&first).unwrap().into_submission();

    // A milter retry after a tempfail: same private-id, new queue id and time.
    let mut retry = first.clone();
    retry.queue_id = "4QRETRY".into();
    retry.time = T0 + Duration::minutes(5);
    match store.record_submission(&retry).unwrap() {
        Recorded::AlreadyPresent(existing) => assert_eq!(existing, stored),
        Recorded::Inserted(_) => panic!("a replay must not insert"),
    }
    let head = store.head().unwrap().unwrap();
    assert_eq!(head.event_id, 1, "nothing was appended");
    assert_eq!(store.list(None, None, 10).unwrap().len(), 1);
    assert!(store.verify_chain().unwrap().is_intact());
}

#[test]
fn reopen_after_drop_sees_everything_and_continues_the_chain() {
    let fx = Fixture::new();
    let (s1, head1) = {
        let store = fx.open();
        let s = store
            .record_submission(&submission(&store, "a", 1, T0))
            .unwrap()
            .into_submission();
        (s, store.head().unwrap().unwrap())
    };
    let store = fx.open();
    assert_eq!(store.find(&s1.private_id).unwrap(), Some(s1.clone()));
    assert_eq!(store.head().unwrap(), Some(head1));
    let s2 = store
        .record_submission(&submission(&store, "a", 2, T0))
        .unwrap()
        .into_submission();
    assert_eq!(s2.event_id, 2);
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, 2);
    assert_eq!(report.blobs, 2);
    drop(store);

    let ro = Store::open_read_only(&fx.db, &fx.blobs).unwrap();
    assert_eq!(ro.find(&s2.private_id).unwrap(), Some(s2));
    let err = ro
        .record_submission(&submission(&fx.open(), "a", 3, T0))
        .unwrap_err();
    assert!(
        matches!(err, Error::Database(_)),
        "read-only store refuses writes: {err}"
    );
}

#[test]
fn list_filters_by_tenant_and_time_newest_first() {
    let fx = Fixture::new();
    let store = fx.open();
    for n in 0..6u32 {
        let tenant = if n % 2 == 0 { "magdeburg" } else { "halle" };
        // Recorded out of time order on purpose: list orders by submission time.
        let t = T0 + Duration::hours(i64::from((n * 5) % 6));
        store
            .record_submission(&submission(&store, tenant, n, t))
            .unwrap();
    }
    let hours = |v: &[demail_evidence::Submission]| {
        v.iter()
            .map(|s| (s.time - T0).whole_hours())
            .collect::<Vec<_>>()
    };
    let all = store.list(None, None, 100).unwrap();
    assert_eq!(hours(&all), [5, 4, 3, 2, 1, 0]);
    let mdb = store.list(Some("magdeburg"), None, 100).unwrap();
    assert!(mdb.iter().all(|s| s.tenant == "magdeburg"));
    assert_eq!(hours(&mdb), [4, 2, 0]);
    let recent = store
        .list(None, Some(T0 + Duration::hours(2)), 100)
        .unwrap();
    assert_eq!(hours(&recent), [5, 4, 3, 2], "since is inclusive");
    let both = store
        .list(Some("halle"), Some(T0 + Duration::hours(2)), 100)
        .unwrap();
    assert_eq!(hours(&both), [5, 3]);
    assert_eq!(hours(&store.list(None, None, 2).unwrap()), [5, 4]);
    assert!(store.list(Some("nowhere"), None, 100).unwrap().is_empty());
    assert!(
        store
            .list(None, Some(T0 + Duration::days(365 * 300)), 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list(None, Some(T0 - Duration::days(365 * 300)), 100)
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn find_by_message_id_with_or_without_brackets() {
    let fx = Fixture::new();
    let store = fx.open();
    let s = store
        .record_submission(&submission(&store, "dessau", 3, T0))
        .unwrap()
        .into_submission();
    assert_eq!(s.message_id, "<m3.dessau@city.example>");
    assert_eq!(
        store.find("<m3.dessau@city.example>").unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(
        store.find("m3.dessau@city.example").unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(
        store.find(" <m3.dessau@city.example> ").unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(store.find("m4.dessau@city.example").unwrap(), None);
    assert_eq!(store.find("").unwrap(), None);
    assert_eq!(store.find("<>").unwrap(), None);

    // Two submissions sharing a Message-ID (separate BCC copies): the newest wins.
    let mut copy = submission(&store, "dessau", 4, T0 + Duration::minutes(1));
    copy.message_id = s.message_id.clone();
    let copy = store.record_submission(&copy).unwrap().into_submission();
    assert_eq!(store.find("m3.dessau@city.example").unwrap(), Some(copy));
    // The private-id still finds the first.
    assert_eq!(store.find(&s.private_id).unwrap(), Some(s));
}

#[test]
fn recipient_status_starts_submitted_at_submission_time() {
    let fx = Fixture::new();
    let store = fx.open();
    let mut new = submission(&store, "zeitz", 5, T0);
    new.recipients.push(new.recipients[0].clone()); // envelope named one twice
    store.record_submission(&new).unwrap();
    let st = store.recipient_status(&new.private_id).unwrap();
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].recipient, "buerger5@example.de-mail.de");
    assert_eq!(st[1].recipient, "amt5@behoerde.de-mail.de");
    assert!(
        st.iter()
            .all(|r| r.status == Status::Submitted && r.since == T0)
    );
    assert_eq!(st[0].status.to_string(), "submitted");
    let json = serde_json::to_value(&st[0]).unwrap();
    assert_eq!(json["status"], "submitted");
    assert_eq!(json["since"], "2026-11-02T09:00:00Z");
    assert!(store.recipient_status("unknown").unwrap().is_empty());
}

#[test]
fn submission_serialises_for_demailctl() {
    let fx = Fixture::new();
    let store = fx.open();
    let s = store
        .record_submission(&submission(&store, "aken", 2, T0))
        .unwrap()
        .into_submission();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["private_id"], "aken-000002");
    assert_eq!(v["content"], s.content.hex());
    assert_eq!(v["time"], "2026-11-02T09:00:00Z");
    assert_eq!(v["event_id"], 1);
    assert_eq!(v["sasl_login"], "login2");
}

#[test]
fn bad_submissions_are_refused_with_the_field_named() {
    let fx = Fixture::new();
    let store = fx.open();
    let good = submission(&store, "burg", 1, T0);
    let field_of = |s: &demail_evidence::NewSubmission| match store.record_submission(s) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let mut s = good.clone();
    s.private_id.clear();
    assert_eq!(field_of(&s), "private_id");
    s.private_id = "x".repeat(1025);
    assert_eq!(field_of(&s), "private_id");
    s.private_id = "a\r\nb".into();
    assert_eq!(field_of(&s), "private_id");
    let mut s = good.clone();
    s.recipients.clear();
    assert_eq!(field_of(&s), "recipients");
    let mut s = good.clone();
    s.tenant.clear();
    assert_eq!(field_of(&s), "tenant");
    let mut s = good.clone();
    s.size += 1;
    assert_eq!(field_of(&s), "size");
    let mut s = good.clone();
    s.time = time::macros::datetime!(2300-01-01 0:00 UTC);
    assert_eq!(field_of(&s), "time");

    // Evidence without its content is no evidence.
    let mut s = good.clone();
    s.content = Digest::of(b"never stored");
    assert!(matches!(
        store.record_submission(&s),
        Err(Error::BlobMissing { .. })
    ));
    assert!(store.head().unwrap().is_none(), "nothing recorded");
    assert!(store.record_submission(&good).unwrap().is_inserted());
}

#[test]
fn events_table_is_append_only() {
    let fx = Fixture::new();
    let store = fx.open();
    store
        .record_submission(&submission(&store, "wernigerode", 1, T0))
        .unwrap();
    let raw = fx.raw();
    for sql in [
        "UPDATE events SET payload = '{}' WHERE id = 1",
        "DELETE FROM events WHERE id = 1",
        "UPDATE submissions SET tenant = 'x'",
        "DELETE FROM submissions",
    ] {
        let err = raw.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert!(store.verify_chain().unwrap().is_intact());
}

#[test]
fn refuses_a_foreign_database() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.db.parent().unwrap()).unwrap();
    let other = rusqlite::Connection::open(&fx.db).unwrap();
    other
        .execute_batch("CREATE TABLE customers (name TEXT)")
        .unwrap();
    drop(other);
    match Store::open(&fx.db, &fx.blobs) {
        Err(e @ Error::NotEvidenceDatabase { .. }) => {
            assert!(e.to_string().contains("customers"), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a foreign database"),
    }
    let mode: String = rusqlite::Connection::open(&fx.db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        mode, "delete",
        "journal mode of the foreign file left alone"
    );
}

#[test]
fn database_is_in_wal_mode_with_full_sync() {
    let fx = Fixture::new();
    let _store = fx.open();
    let raw = fx.raw();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn opening_and_reading_do_not_wait_for_a_writer() {
    let fx = Fixture::new();
    let store = fx.open();
    let s = store
        .record_submission(&submission(&store, "stendal", 1, T0))
        .unwrap()
        .into_submission();
    // Its blob is a database row: stored before the lock is taken.
    let second = submission(&store, "stendal", 2, T0);
    // Another process holds the write lock (a milter mid-transaction).
    let writer = fx.raw();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let fx = std::sync::Arc::new(fx);
    let fx2 = fx.clone();
    std::thread::spawn(move || {
        let store = Store::open(&fx2.db, &fx2.blobs).unwrap();
        tx.send(store.find(&s.private_id).unwrap().map(|s| s.event_id))
            .unwrap();
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("open + find finished while locked");
    assert_eq!(got, Some(1));

    // A second writer waits for the lock instead of failing, up to the busy timeout.
    store
        .set_busy_timeout(std::time::Duration::from_millis(200))
        .unwrap();
    let err = store.record_submission(&second).unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    writer.execute_batch("COMMIT").unwrap();
    assert!(store.record_submission(&second).unwrap().is_inserted());
}
