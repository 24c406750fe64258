//! A sender the policy does not allow to send De-Mail is refused at RCPT with the policy's
//! German/English text and 5.7.1; nothing reaches the evidence store.

mod common;

use common::*;

#[tokio::test]
async fn unauthorised_sender_is_refused_at_rcpt() {
    let milter = Milter::start().await;
    let mail = Mail::new("someone@example.org", &["buerger@example.de-mail.de"]);

    let mut conn = milter.open().await;
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.rcpts.len(), 1);
    let text = reply(&out.rcpts[0]);
    assert!(text.starts_with("550 5.7.1 "), "{text}");
    assert!(text.contains("someone@example.org"), "{text}");
    let (german, english) = text["550 5.7.1 ".len()..]
        .split_once(" / ")
        .expect("German / English");
    assert!(german.contains("nicht berechtigt"), "{german}");
    assert!(english.contains("not authorised"), "{english}");
    assert!(text.is_ascii());
    assert_eq!(out.data, None, "no DATA without an accepted recipient");

    // A bounce (null sender) cannot speak for an account either.
    let bounce = Mail::new("", &["buerger@example.de-mail.de"]);
    let mut out2 = Outcome::empty();
    envelope(&mut conn, &bounce, &mut out2).await;
    assert!(reply(&out2.rcpts[0]).starts_with("550 5.7.1 "));
    conn.close().await.unwrap();

    assert!(
        milter.config.evidence.database.is_missing(),
        "the evidence store was not even opened"
    );
    assert!(recorded(&milter, &mail).is_none());
    assert_eq!(submissions(&milter).len(), 0);
    milter.stop().await;
}
