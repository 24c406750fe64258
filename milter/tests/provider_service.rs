//! Connections on the provider's dedicated smtpd ({daemon_name} = provider_service) are not
//! outbound: they are accepted at connect and pass unchanged.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn provider_service_passes_through() {
    let milter = Milter::start().await;
    let mut conn = milter.open().await;
    let mut mail = Mail::new(
        "absender@example.de-mail.de",
        &["info@magdeburg.de-mail.de"],
    );
    mail.daemon = "demail-in".into();
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.connect, Status::Accept);
    conn.close().await.unwrap();

    // The same envelope on another service is outbound, and refused (not an allowed sender).
    let mut conn = milter.open().await;
    mail.daemon = "smtpd".into();
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.connect, Status::Continue);
    assert!(reply(&out.rcpts[0]).starts_with("550 5.7.1 "));
    conn.close().await.unwrap();
    milter.stop().await;
}
