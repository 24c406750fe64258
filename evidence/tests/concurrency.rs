//! Several recorders at once, as the milter's connections are: each with its own `Store`, or
//! sharing one behind a `Mutex`. The chain must stay linear and complete.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::{Fixture, T0, submission};
use demail_evidence::{Recorded, Store};
use time::Duration;

const OWN: usize = 6; // threads with their own Store
const SHARED: usize = 3; // threads sharing one Store
const EACH: u32 = 20;
const CONTESTED: u32 = 8; // private-ids every thread tries to record

#[test]
fn concurrent_recorders_build_one_consistent_chain() {
    let fx = Arc::new(Fixture::new());
    let barrier = Arc::new(Barrier::new(OWN + SHARED));
    // The database does not exist yet: opening races with creation and migration too.
    let mut handles = Vec::new();
    for t in 0..OWN {
        let (fx, barrier) = (fx.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            let store = Store::open(&fx.db, &fx.blobs).expect("concurrent open");
            work(t, |f| f(&store))
        }));
    }
    let shared = {
        let fx = fx.clone();
        Arc::new(Mutex::new(fx.open()))
    };
    for t in OWN..OWN + SHARED {
        let (shared, barrier) = (shared.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            work(t, |f| f(&shared.lock().unwrap()))
        }));
    }
    let mut inserted_contested: HashMap<String, usize> = HashMap::new();
    let mut recorded = 0;
    for h in handles {
        let outcomes = h.join().expect("recorder thread");
        for (id, inserted) in outcomes {
            if id.starts_with("contested") {
                *inserted_contested.entry(id).or_default() += usize::from(inserted);
            } else {
                assert!(inserted, "{id} is unique to its thread");
                recorded += 1;
            }
        }
    }
    assert_eq!(inserted_contested.len(), CONTESTED as usize);
    for (id, n) in &inserted_contested {
        assert_eq!(*n, 1, "{id} inserted exactly once across all threads");
    }

    let store = fx.open();
    let total = recorded + CONTESTED as usize;
    assert_eq!(recorded, (OWN + SHARED) * EACH as usize);
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events as usize, total);
    assert_eq!(
        report.head.unwrap().event_id as usize,
        total,
        "ids 1..=n without gaps"
    );
    assert_eq!(store.list(None, None, usize::MAX).unwrap().len(), total);
    for t in 0..OWN + SHARED {
        let s = store
            .find(&format!("t{t}-{:06}", EACH - 1))
            .unwrap()
            .expect("last of each thread");
        assert_eq!(store.recipient_status(&s.private_id).unwrap().len(), 2);
    }
}

/// Records this thread's own submissions, interleaved with the contested ones.
fn work(
    t: usize,
    with: impl Fn(&dyn Fn(&Store) -> (String, bool)) -> (String, bool),
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for n in 0..EACH {
        out.push(with(&|store| {
            let s = submission(
                store,
                &format!("t{t}"),
                n,
                T0 + Duration::seconds(i64::from(n)),
            );
            let r = store.record_submission(&s).expect("record");
            (s.private_id, matches!(r, Recorded::Inserted(_)))
        }));
        if n < CONTESTED {
            out.push(with(&|store| {
                let s = submission(store, "contested", n, T0);
                let r = store.record_submission(&s).expect("record contested");
                assert_eq!(r.submission().private_id, s.private_id);
                (s.private_id, r.is_inserted())
            }));
        }
    }
    out
}
