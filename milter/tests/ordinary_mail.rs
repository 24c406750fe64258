//! Ordinary mail (no De-Mail recipient, not to the poststelle) is looked at for its header
//! fields only: without forged De-Mail fields or tags it is accepted at end of header, so its
//! body is never streamed to the milter (forgeries: `inbound_public.rs`).

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn ordinary_mail_is_accepted_untouched_at_end_of_header() {
    let milter = Milter::start().await;
    let mut conn = milter.open().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["nachbar@example.org", "kollege@magdeburg.example"],
    );
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.rcpts, vec![Status::Continue, Status::Continue]);
    assert_eq!(out.data, Some(Status::Continue));
    assert_eq!(out.content, Some(Status::Accept));
    assert!(out.eom.is_none());

    // Inbound from the Internet to an internal address: the same.
    let inbound = Mail::new("someone@example.org", &["kollege@magdeburg.example"]);
    let mut out = Outcome::empty();
    envelope(&mut conn, &inbound, &mut out).await;
    assert_eq!(out.content, Some(Status::Accept));
    assert!(out.eom.is_none());
    conn.close().await.unwrap();
    assert!(submissions(&milter).is_empty());
    milter.stop().await;
}
