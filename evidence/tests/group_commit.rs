//! Many threads recording through one `GroupCommitter`, as the milter's sessions do: every
//! waiter must get its own answer, contested private-ids must be inserted once, and the chain
//! must stay linear and complete. Run with both blob barriers.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Barrier as Gate};
use std::thread;

use common::{Fixture, T0};
use demail_evidence::{Barrier, Digest, Error, GroupCommitter, NewSubmission, Recorded};

const THREADS: usize = 12;
const EACH: u32 = 25;
const CONTESTED: u32 = 10;

fn submission(c: &GroupCommitter, private_id: &str, body: &str) -> (NewSubmission, Recorded) {
    let mut w = c.blob_writer().expect("writer");
    w.write_all(body.as_bytes()).expect("write");
    let blob = w.finish_deferred().expect("finish");
    let s = NewSubmission {
        private_id: private_id.to_string(),
        origin_key: Digest::of(body.as_bytes()),
        tenant: "t".into(),
        account: "t@t.de-mail.de".into(),
        clerk: "clerk@t.example".into(),
        sasl_login: None,
        recipients: vec!["buerger@example.de-mail.de".into()],
        subject: format!("Bescheid {private_id}"),
        message_id: format!("<{private_id}@t.example>"),
        queue_id: "4Q".into(),
        options: vec!["dispatch".into()],
        content: blob.digest(),
        size: blob.len(),
        time: T0,
    };
    let r = c.submit(s.clone(), blob).expect("submit");
    (s, r)
}

fn run(barrier: Barrier) {
    let fx = Fixture::new();
    let c = Arc::new(GroupCommitter::open_with(&fx.db, &fx.blobs, barrier).expect("open"));
    let gate = Arc::new(Gate::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (c, gate) = (c.clone(), gate.clone());
            thread::spawn(move || {
                gate.wait();
                let mut out = Vec::new();
                for n in 0..EACH {
                    let id = format!("t{t}-{n}");
                    out.push(submission(&c, &id, &format!("own {id}")));
                    if n < CONTESTED {
                        // Each thread's copy has its own bytes: the record must still be
                        // the first one's, whoever that was.
                        let id = format!("contested-{n}");
                        out.push(submission(&c, &id, &format!("{id} from t{t}")));
                    }
                    if n % 7 == 3 {
                        // An invalid submission amid the others fails alone.
                        let mut w = c.blob_writer().expect("writer");
                        w.write_all(b"x").expect("write");
                        let blob = w.finish_deferred().expect("finish");
                        let mut s = out[0].0.clone();
                        s.private_id = format!("bad {t} {n}");
                        (s.content, s.size) = (blob.digest(), blob.len());
                        let err = c.submit(s, blob).expect_err("white space in private-id");
                        assert!(matches!(
                            err,
                            Error::Invalid {
                                field: "private_id",
                                ..
                            }
                        ));
                    }
                }
                out
            })
        })
        .collect();

    let mut inserted: HashMap<String, (NewSubmission, i64)> = HashMap::new();
    let mut answers = Vec::new();
    for h in handles {
        answers.extend(h.join().expect("recorder thread"));
    }
    for (s, r) in &answers {
        if let Recorded::Inserted(rec) = r {
            assert_eq!(rec.private_id, s.private_id);
            assert_eq!(rec.content, s.content, "the waiter got its own record");
            let dup = inserted.insert(s.private_id.clone(), (s.clone(), rec.event_id));
            assert!(dup.is_none(), "{} inserted twice", s.private_id);
        } else {
            assert!(s.private_id.starts_with("contested-"), "{}", s.private_id);
        }
    }
    assert_eq!(inserted.len(), THREADS * EACH as usize + CONTESTED as usize);
    // Every AlreadyPresent answer is exactly the record that was inserted.
    for (s, r) in &answers {
        let (first, event_id) = &inserted[&s.private_id];
        assert_eq!(r.submission().event_id, *event_id);
        assert_eq!(r.submission().content, first.content);
    }
    drop(c);

    let store = fx.open();
    let report = store.verify_chain().expect("verify");
    assert!(report.is_intact(), "{barrier:?}: {:?}", report.problems);
    assert_eq!(report.events as usize, inserted.len());
    assert_eq!(
        report.head.expect("head").event_id as usize,
        inserted.len(),
        "ids 1..=n without gaps"
    );
    for (id, (s, event_id)) in &inserted {
        let found = store.find(id).expect("find").expect("recorded");
        assert_eq!(found.event_id, *event_id);
        assert_eq!(store.verify_blob(&s.content).expect("blob"), s.size);
    }
}

#[test]
fn many_threads_through_one_committer_syncfs() {
    run(Barrier::SyncFs);
}

#[test]
fn many_threads_through_one_committer_each_file() {
    run(Barrier::EachFile);
}
