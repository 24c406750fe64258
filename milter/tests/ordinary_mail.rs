//! Ordinary mail (no De-Mail recipient) is accepted at DATA without any change, so its
//! content is never streamed to the milter; provider-service traffic is passed through at
//! connect.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn ordinary_mail_is_accepted_untouched_at_data() {
    let milter = Milter::start().await;
    let mut conn = milter.open().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["nachbar@example.org", "kollege@magdeburg.example"],
    );
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.rcpts, vec![Status::Continue, Status::Continue]);
    assert_eq!(out.data, Some(Status::Accept));
    assert!(out.eom.is_none());

    // Inbound from the Internet to an internal address: the same.
    let inbound = Mail::new("someone@example.org", &["kollege@magdeburg.example"]);
    let mut out = Outcome::empty();
    envelope(&mut conn, &inbound, &mut out).await;
    assert_eq!(out.data, Some(Status::Accept));
    conn.close().await.unwrap();
    milter.stop().await;
}
