//! Blob files: content addressing, temp-file hygiene, concurrent writers.

mod common;

use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::thread;

use common::Fixture;
use demail_evidence::{Digest, Store};

fn temps(fx: &Fixture) -> Vec<String> {
    fs::read_dir(&fx.blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn writer_names_the_file_by_its_sha256() {
    let fx = Fixture::new();
    let store = fx.open();
    let mut w = store.blob_writer().unwrap();
    w.write_all(b"hello ").unwrap();
    w.write_all(b"world").unwrap();
    assert_eq!(w.len(), 11);
    let (d, len) = w.finish().unwrap();
    assert_eq!(len, 11);
    assert_eq!(d, Digest::of(b"hello world"));
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"hello world");
    assert_eq!(
        store.put_blob(b"hello world").unwrap(),
        d,
        "same content, same address"
    );
    assert_eq!(store.verify_blob(&d).unwrap(), 11);
    let empty = store.put_blob(b"").unwrap();
    assert_eq!(store.read_blob(&empty).unwrap(), b"");
    assert!(temps(&fx).is_empty());
}

#[test]
fn an_abandoned_writer_leaves_nothing() {
    let fx = Fixture::new();
    let store = fx.open();
    let mut w = store.blob_writer().unwrap();
    w.write_all(b"half a message").unwrap();
    assert_eq!(temps(&fx).len(), 1);
    drop(w);
    assert!(temps(&fx).is_empty());
}

#[test]
fn open_removes_crash_leftovers_but_not_live_writers() {
    let fx = Fixture::new();
    let store = fx.open();
    // What a writer killed before `finish` leaves behind: an unlocked temp file.
    fs::write(fx.blobs.join(".tmp-4242-0-1"), b"partial").unwrap();
    let mut live = store.blob_writer().unwrap();
    live.write_all(b"still arriving").unwrap();
    live.flush().unwrap();
    assert_eq!(temps(&fx).len(), 2);

    // Another process (say demailctl) opens the store meanwhile.
    let _other = Store::open(&fx.db, &fx.blobs).unwrap();
    assert_eq!(
        temps(&fx).len(),
        1,
        "the leftover is gone, the live one stays"
    );

    live.write_all(b", done").unwrap();
    let (d, _) = live.finish().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), b"still arriving, done");
    assert!(temps(&fx).is_empty());
}

#[test]
fn concurrent_writers_of_the_same_content_agree() {
    let fx = Fixture::new();
    let store = fx.open();
    drop(store);
    let fx = Arc::new(fx);
    let content: Arc<Vec<u8>> = Arc::new((0..200_000u32).map(|i| (i % 251) as u8).collect());
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (fx, content) = (fx.clone(), content.clone());
            thread::spawn(move || {
                let store = fx.open();
                (0..5)
                    .map(|_| store.put_blob(&content).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let expected = Digest::of(&content);
    for h in handles {
        assert!(h.join().unwrap().iter().all(|d| *d == expected));
    }
    let store = fx.open();
    assert_eq!(store.read_blob(&expected).unwrap(), *content);
    assert!(temps(&fx).is_empty());
}
