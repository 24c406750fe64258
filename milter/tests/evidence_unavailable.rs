//! When the evidence cannot be written, the De-Mail is tempfailed (Postfix keeps it and the
//! client retries); ordinary mail is not affected.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn unwritable_evidence_means_tempfail() {
    // The blob directory lies below a regular file: no one (not even root) can create it.
    let milter = Milter::start_with(Options {
        blobs: "not-a-dir/blobs",
        ..Options::default()
    })
    .await;
    std::fs::write(milter.dir.path().join("not-a-dir"), b"a file").unwrap();

    let mut conn = milter.open().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    );
    let out = transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end of message reached");
    assert_eq!(status, Status::Tempfail { message: None });
    assert!(
        actions.actions.is_empty(),
        "no change is sent before the evidence is stored"
    );

    let ordinary = Mail::new("erika.muster@magdeburg.example", &["nachbar@example.org"]);
    let mut out = Outcome::empty();
    envelope(&mut conn, &ordinary, &mut out).await;
    // Accepted at end of header (nothing forged to rename), without touching the store.
    assert_eq!(out.data, Some(Status::Continue));
    assert_eq!(out.content, Some(Status::Accept));
    conn.close().await.unwrap();
    milter.stop().await;
}
