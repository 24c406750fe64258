//! `verify_chain` against an attacker with write access to the files: every change is found
//! and the report names the first event concerned.

mod common;

use common::{Fixture, T0, submission};
use demail_evidence::{Error, Problem, Store};

/// A store with five submissions; returns it with the fixture.
fn five() -> (Fixture, Store) {
    let fx = Fixture::new();
    let store = fx.open();
    for n in 1..=5 {
        store
            .record_submission(&submission(&store, "mdb", n, T0))
            .unwrap();
    }
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, 5);
    (fx, store)
}

/// Drops the append-only guards, as someone editing the file would.
fn unguarded(fx: &Fixture) -> rusqlite::Connection {
    let raw = fx.raw();
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;
         DROP TRIGGER submissions_no_update; DROP TRIGGER submissions_no_delete;",
    )
    .unwrap();
    raw
}

#[test]
fn a_flipped_bit_in_an_event_payload_names_that_event() {
    let (fx, store) = five();
    let raw = unguarded(&fx);
    let payload: String = raw
        .query_row("SELECT payload FROM events WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    // Flip the lowest bit of one byte inside the subject ("Bescheid 3" -> "Bescheie 3").
    let at = payload.find("Bescheid 3").unwrap() + "Bescheid".len() - 1;
    let mut bytes = payload.into_bytes();
    bytes[at] ^= 0x01;
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(tampered.contains("Bescheie 3"));
    raw.execute("UPDATE events SET payload = ?1 WHERE id = 3", [&tampered])
        .unwrap();

    let report = store.verify_chain().unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.first_bad_event(), Some(3));
    assert!(
        matches!(report.problems[0], Problem::Hash { event_id: 3, .. }),
        "{:?}",
        report.problems
    );
    assert_eq!(
        report.problems.len(),
        1,
        "later links still match the stored hash: {:?}",
        report.problems
    );
    assert!(
        report.problems[0].to_string().starts_with("event 3: "),
        "{}",
        report.problems[0]
    );
}

#[test]
fn a_flipped_bit_in_other_columns_is_found_too() {
    for (column, expect_hash_problem) in [
        ("time", true),
        ("kind", true),
        ("blobs", true),
        ("prev_hash", false),
    ] {
        let (fx, store) = five();
        let raw = unguarded(&fx);
        let value: Vec<u8> = raw
            .query_row(
                &format!("SELECT CAST({column} AS BLOB) FROM events WHERE id = 2"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut flipped = value.clone();
        flipped[0] ^= 0x02;
        if column == "prev_hash" {
            raw.execute("UPDATE events SET prev_hash = ?1 WHERE id = 2", [&flipped])
                .unwrap();
        } else {
            let text = String::from_utf8(flipped).unwrap();
            raw.execute(
                &format!("UPDATE events SET {column} = ?1 WHERE id = 2"),
                [&text],
            )
            .unwrap();
        }
        let report = store.verify_chain().unwrap();
        assert_eq!(
            report.first_bad_event(),
            Some(2),
            "{column}: {:?}",
            report.problems
        );
        if expect_hash_problem {
            assert!(
                matches!(report.problems[0], Problem::Hash { event_id: 2, .. }),
                "{column}: {:?}",
                report.problems
            );
        } else {
            assert!(
                matches!(report.problems[0], Problem::PrevHash { event_id: 2, .. }),
                "{column}: {:?}",
                report.problems
            );
        }
    }
}

#[test]
fn a_deleted_event_is_reported_as_missing() {
    let (fx, store) = five();
    let raw = unguarded(&fx);
    raw.execute("DELETE FROM events WHERE id = 4", []).unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(
        report.problems[0],
        Problem::MissingEvents { from: 4, to: 4 }
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::PrevHash { event_id: 5, .. }))
    );
    // Its submissions row is left over without an event.
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Projection { event_id: None, .. }))
    );
}

#[test]
fn a_doctored_lookup_row_is_found() {
    let (fx, store) = five();
    let raw = unguarded(&fx);
    raw.execute(
        "UPDATE submissions SET tenant = 'evil' WHERE event_id = 2",
        [],
    )
    .unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(report.first_bad_event(), Some(2));
    match &report.problems[..] {
        [
            Problem::Projection {
                event_id: Some(2),
                reason,
            },
        ] => assert!(reason.contains("tenant"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flipped_bit_in_a_blob_names_blob_and_event() {
    let (fx, store) = five();
    let victim = store.find("mdb-000004").unwrap().unwrap();
    fx.flip_blob_bit(&victim.content, victim.size as usize / 2);

    let report = store.verify_chain().unwrap();
    match &report.problems[..] {
        [
            Problem::BlobMismatch {
                event_id: 4,
                digest,
                path: p,
                ..
            },
        ] => {
            assert_eq!(*digest, victim.content);
            // The row: the database file and the digest.
            assert!(
                p.to_string_lossy()
                    .ends_with(&format!("#blobs/{}", digest.hex())),
                "{}",
                p.display()
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        report.problems[0]
            .to_string()
            .contains(&victim.content.hex())
    );
    match store.read_blob(&victim.content) {
        Err(Error::BlobMismatch { expected, .. }) => assert_eq!(expected, victim.content),
        other => panic!("read_blob must refuse altered content: {other:?}"),
    }
    assert!(matches!(
        store.verify_blob(&victim.content),
        Err(Error::BlobMismatch { .. })
    ));

    // Removed from the table, as whoever owns the database could.
    fx.raw()
        .execute(
            "DELETE FROM blobs WHERE digest = ?1",
            [&victim.content.0[..]],
        )
        .unwrap();
    let report = store.verify_chain().unwrap();
    assert!(
        matches!(
            report.problems[..],
            [Problem::BlobMissing { event_id: 4, .. }]
        ),
        "{:?}",
        report.problems
    );
    assert!(matches!(
        store.read_blob(&victim.content),
        Err(Error::BlobMissing { .. })
    ));
}

#[test]
fn report_serialises_for_demailctl() {
    let (fx, store) = five();
    unguarded(&fx)
        .execute("DELETE FROM events WHERE id = 5", [])
        .unwrap();
    let report = store.verify_chain().unwrap();
    // Truncation at the end leaves a valid chain; the head tells (compare with a kept copy).
    assert_eq!(report.head.unwrap().event_id, 4);
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["events"], 4);
    assert_eq!(v["problems"][0]["problem"], "projection");
}
