//! Reading the event log in order, for readers that keep their own projection up to date
//! (the IMAP proxy): each refresh reads only the events after the last one it saw.

use demail_sql::args;

use crate::chain::{KIND_CONFIRMATION, KIND_PRUNE, KIND_QES_CHECK, KIND_SUBMISSION};
use crate::prune::{self, PruneRecord};
use crate::{Confirmation, Digest, Error, Result, Store, Submission, confirmation, submission};

/// One event of the log, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Submission(Submission),
    Confirmation(Confirmation),
    /// Blobs removed at the end of their retention period (the events stay).
    Prune {
        event_id: i64,
        record: PruneRecord,
    },
    /// A QES check of mail to the poststelle: about no De-Mail, its payload is not read.
    QesCheck {
        event_id: i64,
    },
}

impl Event {
    pub fn event_id(&self) -> i64 {
        match self {
            Event::Submission(s) => s.event_id,
            Event::Confirmation(c) => c.event_id,
            Event::Prune { event_id, .. } | Event::QesCheck { event_id } => *event_id,
        }
    }
}

// The payload of a QES check (a verification report per signature) is skipped in SQL.
const AFTER_SQL: &str = "SELECT id, kind, time, CASE WHEN kind = 'qes-check' THEN '' \
     ELSE payload END FROM events WHERE id > ?1 ORDER BY id LIMIT ?2";

impl Store {
    /// Up to `limit` events with an id above `after_id`, oldest first, in one read snapshot:
    /// a reader that passes the last id it got sees every event exactly once. An event of a kind
    /// this version does not know is corruption (the schema check rules out a newer writer).
    pub fn events_after(&self, after_id: i64, limit: usize) -> Result<Vec<Event>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.conn().query(AFTER_SQL, args![after_id, limit])?;
        rows.into_iter()
            .map(|r| {
                let (id, kind, time, payload) = (r.int(0)?, r.text(1)?, r.text(2)?, r.text(3)?);
                Ok(match kind.as_str() {
                    KIND_SUBMISSION => Event::Submission(submission::decode(id, &payload)?),
                    KIND_CONFIRMATION => {
                        Event::Confirmation(confirmation::decode(id, &time, &payload)?)
                    }
                    KIND_PRUNE => Event::Prune {
                        event_id: id,
                        record: prune::decode(id, &payload)?,
                    },
                    KIND_QES_CHECK => Event::QesCheck { event_id: id },
                    other => {
                        return Err(Error::Corrupt(format!(
                            "event {id}: unknown kind {other:?}"
                        )));
                    }
                })
            })
            .collect()
    }

    /// The length of a stored blob without reading it; `BlobMissing` when it is neither in
    /// the database nor a file (never stored, or pruned).
    pub fn blob_len(&self, d: &Digest) -> Result<u64> {
        self.blobs().len(d)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::{ConfirmationKind, NewConfirmation, NewQesCheck, NewSubmission, project_status};

    fn sub(store: &Store, n: u32) -> NewSubmission {
        let body = format!("Subject: s{n}\r\n\r\nm{n}\r\n");
        NewSubmission {
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
            options: vec!["dispatch".into()],
            content: store.put_blob(body.as_bytes()).unwrap(),
            size: body.len() as u64,
            time: datetime!(2026-11-02 9:00 UTC),
        }
    }

    #[test]
    fn events_after_pages_through_every_kind_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("b")).unwrap();
        assert!(store.events_after(0, 10).unwrap().is_empty());
        store.record_submission(&sub(&store, 1)).unwrap();
        let raw = store.put_blob(b"confirmation").unwrap();
        store
            .record_confirmation(&NewConfirmation {
                kind: ConfirmationKind::Dispatch,
                private_id: Some("p1".into()),
                recipient: "r@x.de-mail.de".into(),
                provider_message_id: None,
                raw,
                xml: None,
                pdf: None,
                report: serde_json::json!({"big": "report"}),
                indication: "TOTAL_PASSED".into(),
                stated_time: None,
                trusted: true,
            })
            .unwrap();
        let qes_raw = store.put_blob(b"to the poststelle").unwrap();
        store
            .record_qes_check(&NewQesCheck {
                raw: qes_raw,
                queue_id: String::new(),
                recipients: vec!["poststelle@t.example".into()],
                message_id: String::new(),
                report: serde_json::json!([]),
                indication: "TOTAL_PASSED".into(),
                qualification: "QESig".into(),
                time: datetime!(2026-11-02 9:00 UTC),
            })
            .unwrap();
        store.record_submission(&sub(&store, 2)).unwrap();
        let all = store.events_after(0, 100).unwrap();
        let ids: Vec<i64> = all.iter().map(Event::event_id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert!(matches!(&all[0], Event::Submission(s) if s.private_id == "p1"));
        assert!(matches!(&all[1], Event::Confirmation(c) if c.data.raw == raw));
        assert!(matches!(all[2], Event::QesCheck { event_id: 3 }));
        // Paging: the cursor is the last id seen.
        let first = store.events_after(0, 2).unwrap();
        let rest = store
            .events_after(first.last().unwrap().event_id(), 2)
            .unwrap();
        assert_eq!(
            first
                .iter()
                .chain(&rest)
                .map(Event::event_id)
                .collect::<Vec<_>>(),
            ids
        );
        assert!(store.events_after(4, 100).unwrap().is_empty());
        assert!(store.events_after(i64::MAX, 100).unwrap().is_empty());
        assert_eq!(store.blob_len(&raw).unwrap(), 12);
        let absent = Digest::of(b"never stored");
        assert!(matches!(
            store.blob_len(&absent),
            Err(Error::BlobMissing { .. })
        ));
    }

    #[test]
    fn unknown_kind_is_corruption_naming_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e.sqlite");
        let store = Store::open(&db, &dir.path().join("b")).unwrap();
        store.record_submission(&sub(&store, 1)).unwrap();
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute_batch(
            "INSERT INTO events (id, time, kind, private_id, payload, blobs, prev_hash, hash) \
             VALUES (2, '2026-11-02T09:00:00Z', 'teleported', '', '{}', '', randomblob(32), randomblob(32))",
        )
        .unwrap();
        let err = store.events_after(0, 10).unwrap_err();
        assert!(err.to_string().contains("event 2"), "{err}");
    }

    fn conf(
        store: &Store,
        pid: &str,
        kind: ConfirmationKind,
        at: time::OffsetDateTime,
        trusted: bool,
    ) -> NewConfirmation {
        let raw = store
            .put_blob(format!("{pid} {} {at} {trusted}", kind.label()).as_bytes())
            .unwrap();
        NewConfirmation {
            kind,
            private_id: Some(pid.into()),
            recipient: "R@x.de-mail.de ".into(),
            provider_message_id: None,
            raw,
            xml: None,
            pdf: None,
            report: serde_json::json!({}),
            indication: "TOTAL_PASSED".into(),
            stated_time: Some(at),
            trusted,
        }
    }

    /// The in-memory projection agrees with the store's at every instant, ignores untrusted
    /// confirmations, and ignores confirmations of another De-Mail handed in by mistake.
    #[test]
    fn project_status_agrees_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("b")).unwrap();
        let mut s1 = sub(&store, 1);
        s1.options = vec!["dispatch".into(), "retrieve".into()];
        store.record_submission(&s1).unwrap();
        store.record_submission(&sub(&store, 2)).unwrap();
        let t = datetime!(2026-11-02 10:00 UTC);
        for c in [
            conf(&store, "p1", ConfirmationKind::Dispatch, t, true),
            conf(&store, "p1", ConfirmationKind::Retrieve, t, false),
            conf(&store, "p2", ConfirmationKind::Retrieve, t, true),
            conf(
                &store,
                "p2",
                ConfirmationKind::Notification("x".into()),
                t,
                true,
            ),
        ] {
            store.record_confirmation(&c).unwrap();
        }
        let events = store.events_after(0, 100).unwrap();
        let Event::Submission(s) = &events[0] else {
            panic!("{events:?}")
        };
        let confs: Vec<Confirmation> = events
            .iter()
            .filter_map(|e| match e {
                Event::Confirmation(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        for now in [
            t,
            datetime!(2026-11-05 22:59:59 UTC),
            datetime!(2026-11-05 23:00:00 UTC),
            datetime!(2027-01-01 0:00 UTC),
        ] {
            let mine = project_status(s, &confs, now);
            assert_eq!(mine, store.recipient_status_at("p1", now).unwrap(), "{now}");
            assert_eq!(mine[0].status, crate::Status::Dispatched);
        }
        assert!(project_status(s, &confs, datetime!(2026-11-05 23:00:00 UTC))[0].deemed_served);
        assert!(!project_status(s, &confs, datetime!(2026-11-05 22:59:59 UTC))[0].deemed_served);
    }

    #[test]
    fn prune_events_name_the_removed_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.sqlite"), &dir.path().join("b")).unwrap();
        let s = sub(&store, 1);
        store.record_submission(&s).unwrap();
        let outcome = store
            .prune(
                1,
                time::OffsetDateTime::now_utc() + time::Duration::days(800),
                false,
            )
            .unwrap();
        assert_eq!(outcome.removed.len(), 1);
        let events = store.events_after(1, 10).unwrap();
        let [
            Event::Prune {
                event_id: 2,
                record,
            },
        ] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert_eq!(record.removed[0].digest, s.content);
        assert!(matches!(
            store.blob_len(&s.content),
            Err(Error::BlobMissing { .. })
        ));
    }
}
