//! A clerk authorised by SASL login writes as an account with `reply_to_clerk`: the envelope
//! sender and From become the account, Reply-To becomes the clerk (so the provider's
//! confirmations reach the clerk).

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn sasl_login_with_reply_to_clerk() {
    let milter = Milter::start().await;
    let mut mail = Mail::new(
        "anna.schmidt@intern.example",
        &["antrag@example.de-mail.de"],
    )
    .header("Reply-To", " Erika <erika@intern.example>")
    .header("reply-to", " second@intern.example");
    mail.sasl = Some("wohngeld-anna".into());

    let mut conn = milter.open().await;
    let out = transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end of message");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();

    assert!(actions.has_change_sender("<wohngeld@magdeburg.de-mail.de>", None));
    assert!(actions.has_change_header(
        "From",
        1,
        " \"Landeshauptstadt Magdeburg\" <wohngeld@magdeburg.de-mail.de>"
    ));
    assert!(actions.has_change_header("Reply-To", 1, " <anna.schmidt@intern.example>"));
    assert!(actions.has_delete_header("reply-to", 2));
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-dispatch").as_deref(),
        Some("yes")
    );
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-receipt").as_deref(),
        Some("no")
    );

    let record = recorded(&milter, &mail).expect("recorded");
    assert_eq!(record.sasl_login.as_deref(), Some("wohngeld-anna"));
    assert_eq!(record.account, "wohngeld@magdeburg.de-mail.de");
    assert_eq!(record.subject, "Test");
    let expected = postfix_result(&mail, &actions);
    assert_eq!(record.content, demail_evidence::Digest::of(&expected));
    let text = String::from_utf8(expected).unwrap();
    assert!(
        text.contains("\r\nReply-To: <anna.schmidt@intern.example>\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("eply-",).count(), 1, "{text}");
    milter.stop().await;
}
