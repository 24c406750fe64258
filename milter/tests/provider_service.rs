//! Connections on the provider's dedicated smtpd ({daemon_name} = provider_service) are
//! inbound: never checked as outbound De-Mail, always verified and tagged at the end.

mod common;
mod inbound_support;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn provider_service_is_inbound_not_outbound() {
    let pki = inbound_support::ProviderPki::new();
    let milter = pki.milter("").await;
    let mut mail = Mail::new(
        "absender@example.de-mail.de",
        &["info@magdeburg.de-mail.de"],
    );
    mail.daemon = "demail-in".into();
    let ended =
        inbound_support::deliver(&milter, &mail, Some(inbound_support::PROVIDER_CLIENT)).await;
    let (actions, status) = ended.eom.expect("the whole message is received");
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-DeMail-Verified").as_deref(),
        Some("none; qualified=no; reason=\"no X-de-mail-integrity field\"")
    );

    // The same envelope on another service is outbound, and refused (not an allowed sender).
    let mut conn = milter.open().await;
    mail.daemon = "smtpd".into();
    let out = transact(&mut conn, &mail).await;
    assert!(common::goes_on(&out.connect), "{:?}", out.connect);
    assert!(reply(&out.rcpts[0]).starts_with("550 5.7.1 "));
    conn.close().await.unwrap();
    assert!(submissions(&milter).is_empty());
    milter.stop().await;
}
