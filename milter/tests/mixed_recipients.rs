//! De-Mail is a closed network: a recipient that would mix De-Mail and ordinary mail in one
//! message is refused at RCPT with the policy's text, whichever comes first.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn mixed_recipients_are_refused() {
    let milter = Milter::start().await;
    let mut conn = milter.open().await;

    // De-Mail first: the ordinary recipient is refused, the De-Mail goes on alone.
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de", "nachbar@example.org"],
    );
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.rcpts[0], Status::Continue);
    let text = reply(&out.rcpts[1]);
    assert!(text.starts_with("550 5.7.1 "), "{text}");
    assert!(
        text.contains("geschlossenes Netz") && text.contains("closed network"),
        "{text}"
    );
    let (_, status) = out.eom.expect("the De-Mail part goes on");
    assert_eq!(status, Status::Accept);

    // Ordinary first: the De-Mail recipient is refused, the ordinary mail passes unchanged.
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["nachbar@example.org", "buerger@example.de-mail.de"],
    );
    let mut out = Outcome::empty();
    envelope(&mut conn, &mail, &mut out).await;
    assert_eq!(out.rcpts[0], Status::Continue);
    assert!(reply(&out.rcpts[1]).contains("closed network"));
    // Ordinary mail: accepted at end of header (nothing forged to rename).
    assert_eq!(out.data, Some(Status::Continue));
    assert_eq!(out.content, Some(Status::Accept));
    conn.close().await.unwrap();

    assert!(recorded(&milter, &mail).is_none());
    assert_eq!(submissions(&milter).len(), 1);
    milter.stop().await;
}
