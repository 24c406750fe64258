//! A De-Mail above `[gateway] max_message_size` is refused with 552 5.3.4 as soon as the limit
//! is crossed, and nothing is recorded.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn oversize_demail_is_refused() {
    let milter = Milter::start_with(Options {
        max_size: "4KiB",
        ..Options::default()
    })
    .await;
    let mut conn = milter.open().await;
    let mut mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    );
    mail.body = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(100);
    let out = transact(&mut conn, &mail).await;
    let status = out.content.expect("refused while the content streams");
    let text = reply(&status);
    assert!(text.starts_with("552 5.3.4 "), "{text}");
    assert!(
        text.contains("4096 Bytes") && text.contains("4096 bytes"),
        "{text}"
    );
    assert!(out.eom.is_none());

    // Just under the limit as received, but our fields push it over: refused at the end.
    let mut mail = mail.clone();
    mail.queue_id = "4XyZ1235Q".into();
    let head = mail.received_bytes().len() - mail.body.len();
    mail.body = b"x".repeat(4096 - head - 2);
    mail.body.extend_from_slice(b"\r\n");
    assert_eq!(mail.received_bytes().len(), 4096);
    let mut out = Outcome::empty();
    envelope(&mut conn, &mail, &mut out).await;
    let (_, status) = out.eom.expect("end of message reached");
    assert!(reply(&status).starts_with("552 5.3.4 "));
    conn.close().await.unwrap();

    assert!(recorded(&milter, &mail).is_none());
    assert_eq!(submissions(&milter).len(), 0);
    milter.stop().await;
}

#[tokio::test]
async fn ordinary_mail_is_not_size_checked() {
    let milter = Milter::start_with(Options {
        max_size: "1KiB",
        ..Options::default()
    })
    .await;
    let mut conn = milter.open().await;
    let mut mail = Mail::new("erika.muster@magdeburg.example", &["nachbar@example.org"]);
    mail.body = vec![b'x'; 10_000];
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.data, Some(Status::Continue));
    assert_eq!(
        out.content,
        Some(Status::Accept),
        "accepted at end of header"
    );
    conn.close().await.unwrap();
    milter.stop().await;
}
