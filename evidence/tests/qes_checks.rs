//! QES checks of poststelle mail: recording, idempotency, chain verification, tampering, and
//! that they change no De-Mail status.

mod common;

use common::{Fixture, T0, submission};
use demail_evidence::{NewQesCheck, Problem, QesCheckRecorded, Status, Store};
use serde_json::json;

fn check(store: &Store, n: u32) -> NewQesCheck {
    let raw = format!(
        "Received: from x\r\nFrom: buerger{n}@example.org\r\nSubject: Antrag {n}\r\n\r\nsigned {n}\r\n"
    );
    NewQesCheck {
        raw: store.put_blob(raw.as_bytes()).unwrap(),
        queue_id: format!("4Q{n:05}"),
        recipients: vec!["poststelle@magdeburg.example".into()],
        message_id: format!("<a{n}@example.org>"),
        report: json!([{"indication": "TOTAL_PASSED", "qualification": "QESig"}]),
        indication: "TOTAL_PASSED".into(),
        qualification: "QESig".into(),
        time: T0,
    }
}

#[test]
fn recorded_once_per_message_and_read_back() {
    let f = Fixture::new();
    let store = f.open();
    let c = check(&store, 1);
    let first = store.record_qes_check(&c).unwrap();
    assert!(first.is_inserted());
    assert_eq!(first.check().data, c);
    let again = store.record_qes_check(&c).unwrap();
    assert!(matches!(again, QesCheckRecorded::AlreadyPresent(_)));
    assert_eq!(again.check().event_id, first.check().event_id);
    assert_eq!(store.qes_check_by_raw(&c.raw).unwrap().unwrap().data, c);
    let ev = store.event(first.check().event_id).unwrap().unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.private_id.as_str()),
        ("qes-check", "")
    );
    assert_eq!(ev.blobs, c.raw.hex());
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 1);
}

#[test]
fn refused_without_blob_or_with_empty_fields() {
    let f = Fixture::new();
    let store = f.open();
    let mut c = check(&store, 2);
    c.raw = demail_evidence::Digest::of(b"never stored");
    assert!(store.record_qes_check(&c).is_err());
    let mut c = check(&store, 3);
    c.indication = " ".into();
    let e = store.record_qes_check(&c).unwrap_err().to_string();
    assert!(e.contains("indication"), "{e}");
    let mut c = check(&store, 4);
    c.recipients.clear();
    assert!(store.record_qes_check(&c).is_err());
    assert_eq!(store.verify_chain().unwrap().events, 0);
}

#[test]
fn mixed_with_submissions_chain_verifies_and_status_is_unchanged() {
    let f = Fixture::new();
    let store = f.open();
    let s = submission(&store, "q", 1, T0);
    store.record_submission(&s).unwrap();
    store.record_qes_check(&check(&store, 5)).unwrap();
    let s2 = submission(&store, "q", 2, T0);
    store.record_submission(&s2).unwrap();
    assert!(store.verify_chain().unwrap().is_intact());
    let st = store.recipient_status_at(&s.private_id, T0).unwrap();
    assert!(st.iter().all(|r| r.status == Status::Submitted));
    // The empty private-id holds the QES check; its projection has no recipients, no error.
    assert!(store.recipient_status_at("", T0).unwrap().is_empty());
}

#[test]
fn tampered_report_or_blob_is_named() {
    let f = Fixture::new();
    let store = f.open();
    let c = check(&store, 6);
    let id = store.record_qes_check(&c).unwrap().check().event_id;
    let raw = f.raw();
    raw.execute_batch("DROP TRIGGER events_no_update").unwrap();
    raw.execute(
        "UPDATE events SET payload = replace(payload, 'TOTAL_PASSED', 'TOTAL_FAILED') WHERE id = ?1",
        [id],
    )
    .unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(report.first_bad_event(), Some(id), "{report:?}");
    assert!(matches!(report.problems[0], Problem::Hash { .. }));

    let f = Fixture::new();
    let store = f.open();
    let c = check(&store, 7);
    let id = store.record_qes_check(&c).unwrap().check().event_id;
    f.flip_blob_bit(&c.raw, 3);
    let report = store.verify_chain().unwrap();
    assert_eq!(report.first_bad_event(), Some(id), "{report:?}");
    assert!(matches!(report.problems[0], Problem::BlobMismatch { .. }));
}

#[test]
fn missing_projection_row_is_reported() {
    let f = Fixture::new();
    let store = f.open();
    let c = check(&store, 8);
    let id = store.record_qes_check(&c).unwrap().check().event_id;
    let raw = f.raw();
    raw.execute_batch("DROP TRIGGER qes_checks_no_delete; DELETE FROM qes_checks")
        .unwrap();
    let report = store.verify_chain().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Projection { event_id: Some(e), .. } if *e == id)),
        "{report:?}"
    );
}
