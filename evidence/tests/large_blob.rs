//! A 50 MB message streamed through `BlobWriter` in its own process, so the peak RSS measured
//! here belongs to this test alone.

mod common;

use std::io::Write;

use common::Fixture;
use demail_evidence::{Digest, NewSubmission};
use time::OffsetDateTime;

const SIZE: usize = 50 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Peak resident set size of this process so far (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Deterministic, incompressible-looking bytes (xorshift), generated chunk by chunk.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

#[test]
fn fifty_megabytes_stream_through_a_small_buffer() {
    let fx = Fixture::new();
    let store = fx.open();
    let before = peak_rss_kib();

    let mut w = store.blob_writer().unwrap();
    let mut expected = openssl::sha::Sha256::new();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut chunk = vec![0u8; CHUNK];
    let mut written = 0;
    while written < SIZE {
        // Odd-sized writes exercise the buffering.
        let n = (CHUNK - 17).min(SIZE - written);
        noise.fill(&mut chunk[..n]);
        w.write_all(&chunk[..n]).unwrap();
        expected.update(&chunk[..n]);
        written += n;
    }
    let (digest, len) = w.finish().unwrap();
    let grown_kib = peak_rss_kib().saturating_sub(before);

    assert_eq!(len, SIZE as u64);
    assert_eq!(digest, Digest(expected.finish()));
    assert_eq!(
        std::fs::metadata(store.blob_path(&digest)).unwrap().len(),
        SIZE as u64
    );
    assert!(
        grown_kib < 8 * 1024,
        "writing 50 MB grew the peak RSS by {grown_kib} KiB"
    );

    // Recording and verifying the chain stream the blob as well.
    let s = NewSubmission {
        private_id: "big-1".into(),
        origin_key: Digest::of(b"big"),
        tenant: "t".into(),
        account: "a@t.de-mail.de".into(),
        clerk: "c@t.example".into(),
        sasl_login: None,
        recipients: vec!["r@x.de-mail.de".into()],
        subject: "Bauantrag mit Plänen".into(),
        message_id: "<big@t.example>".into(),
        queue_id: "Q".into(),
        options: vec![],
        content: digest,
        size: len,
        time: OffsetDateTime::now_utc(),
    };
    let before = peak_rss_kib();
    assert!(store.record_submission(&s).unwrap().is_inserted());
    assert_eq!(store.verify_blob(&digest).unwrap(), SIZE as u64);
    let report = store.verify_chain().unwrap();
    let grown_kib = peak_rss_kib().saturating_sub(before);
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.blobs, 1);
    assert!(
        grown_kib < 8 * 1024,
        "verifying 50 MB grew the peak RSS by {grown_kib} KiB"
    );
}
