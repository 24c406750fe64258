//! Crash safety with a real process kill: a child records submissions (streaming each message
//! into a blob) and prints each private-id once `record_submission` has returned; the parent
//! SIGKILLs it at varying points. Afterwards every acknowledged record must be complete, the
//! chain intact, and no temp file may survive `Store::open`.
//!
//! Odd rounds record through a `GroupCommitter` from several threads, so kills also land
//! between a batch's deferred blobs, its barrier and its commit.
//!
//! SIGKILL does not lose the page cache, so this checks atomicity and clean-up, not fsync.
//! The file runs without the libtest harness: the same binary is parent and child.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Fixture, T0, submission};
use demail_evidence::{GroupCommitter, Store};

const CHILD_ENV: &str = "DEMAIL_EVIDENCE_CRASH_CHILD";
const ROUNDS: u64 = 6;

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}

fn child(dir: &Path) {
    let round: u64 = std::env::var("ROUND")
        .expect("ROUND")
        .parse()
        .expect("ROUND number");
    if round % 2 == 1 {
        return group_child(dir, round);
    }
    let store =
        Store::open(&dir.join("state/evidence.sqlite"), &dir.join("blobs")).expect("child open");
    let mut out = std::io::stdout().lock();
    // Bounded so a lost parent cannot leave a runaway child.
    for n in 0..10_000 {
        let mut s = submission(&store, &format!("r{round}"), n, T0);
        // A bigger, chunked blob so that kills also land in the middle of a blob write.
        let mut w = store.blob_writer().expect("writer");
        for chunk in message(round, n) {
            w.write_all(chunk.as_bytes()).expect("write");
        }
        let (content, size) = w.finish().expect("finish");
        s.content = content;
        s.size = size;
        store.record_submission(&s).expect("record");
        writeln!(out, "{}", s.private_id).expect("ack");
        out.flush().expect("ack flush");
    }
}

/// The message bytes of submission `n` of `round`: big and chunked, so that kills also land in
/// the middle of a blob write.
fn message(round: u64, n: u32) -> impl Iterator<Item = String> {
    (0..64u32).map(move |i| format!("{round}/{n}/{i}: {}\r\n", "x".repeat(4000)))
}

fn group_child(dir: &Path, round: u64) {
    let (db, blobs) = (dir.join("state/evidence.sqlite"), dir.join("blobs"));
    // `submission` needs a store for its own small blob; the record goes through `c`.
    let store = Store::open(&db, &blobs).expect("child open");
    let c = std::sync::Arc::new(GroupCommitter::open(&db, &blobs).expect("committer"));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (c, store) = (c.clone(), Store::open(&db, &blobs).expect("child open"));
            std::thread::spawn(move || {
                for n in (t..10_000).step_by(4) {
                    let mut s = submission(&store, &format!("r{round}"), n, T0);
                    let mut w = c.blob_writer().expect("writer");
                    for chunk in message(round, n) {
                        w.write_all(chunk.as_bytes()).expect("write");
                    }
                    let blob = w.finish_deferred().expect("finish");
                    (s.content, s.size) = (blob.digest(), blob.len());
                    c.submit(s.clone(), blob).expect("submit");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{}", s.private_id).expect("ack");
                    out.flush().expect("ack flush");
                }
            })
        })
        .collect();
    drop(store);
    for t in threads {
        t.join().expect("recorder thread");
    }
}

fn parent() {
    let fx = Fixture::new();
    drop(fx.open());
    let exe = std::env::current_exe().expect("own executable");
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, fx.dir.path())
            .env("ROUND", round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..(3 + round * 2) {
            acked.push(lines.next().expect("child died early").expect("ack line"));
        }
        // Vary the moment of death within the next record.
        std::thread::sleep(Duration::from_micros(round * 700));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Acks the child managed to print before dying count too.
        acked.extend(lines.map_while(Result::ok));
    }

    let temps = || {
        std::fs::read_dir(&fx.blobs)
            .expect("blob dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .map(|e| e.path())
            .collect::<Vec<_>>()
    };
    let left_by_kills = temps().len();
    let store = fx.open();
    assert!(
        temps().is_empty(),
        "temp files survived open: {:?}",
        temps()
    );
    let report = store.verify_chain().expect("verify");
    assert!(report.is_intact(), "after kills: {:?}", report.problems);
    for id in &acked {
        let s = store
            .find(id)
            .expect("find")
            .unwrap_or_else(|| panic!("acknowledged {id} lost"));
        assert_eq!(
            store
                .verify_blob(&s.content)
                .expect("blob of acknowledged record"),
            s.size
        );
        assert_eq!(store.recipient_status(id).expect("status").len(), 2);
    }
    assert!(report.events as usize >= acked.len());
    println!(
        "crash: {ROUNDS} kills, {} acknowledged records intact, {} events in an intact chain, \
         {left_by_kills} temp files removed on open",
        acked.len(),
        report.events
    );
}
