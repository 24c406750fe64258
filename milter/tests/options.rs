//! Options from `X-DeMail-Options` (programs) are applied and the field removed; an option the
//! tenant may not request (Abholbestätigung from a company) refuses the message at the end
//! with the policy's text; an unknown keyword too.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn x_demail_options_are_applied_and_removed() {
    let milter = Milter::start().await;
    let mail = Mail::new(
        "fachverfahren@magdeburg.example",
        &["firma@example.de-mail.de"],
    )
    .header("X-DeMail-Options", " authoritative, private");
    let mut conn = milter.open().await;
    let out = transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end of message");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();

    assert!(actions.has_delete_header("X-DeMail-Options", 1));
    assert_eq!(
        added(&actions, "X-de-mail-authoritative").as_deref(),
        Some("yes")
    );
    assert_eq!(added(&actions, "X-de-mail-private").as_deref(), Some("yes"));
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-retrieve").as_deref(),
        Some("no")
    );
    // The subject had no tag: it is left alone.
    assert!(!actions.has_change_header("Subject", indymilter_test::any(), indymilter_test::any()));
    let record = recorded(&milter, &mail).expect("recorded");
    assert_eq!(
        record.options,
        vec!["dispatch", "receipt", "authoritative", "private"]
    );
    milter.stop().await;
}

#[tokio::test]
async fn refused_options_reject_at_end_of_message() {
    let milter = Milter::start().await;
    let mut conn = milter.open().await;

    let mail = Mail::new("verwalter@hv.example", &["mieter@example.de-mail.de"])
        .set_header("Subject", " [Abholbestätigung] Kündigung");
    let out = transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end of message");
    let text = reply(&status);
    assert!(text.starts_with("554 5.7.1 "), "{text}");
    assert!(text.contains("Hausverwaltung"), "{text}");
    assert!(actions.actions.is_empty());

    let mail = Mail::new("verwalter@hv.example", &["mieter@example.de-mail.de"])
        .header("X-DeMail-Options", " express");
    let mut out = Outcome::empty();
    envelope(&mut conn, &mail, &mut out).await;
    let (_, status) = out.eom.expect("end of message");
    let text = reply(&status);
    assert!(text.starts_with("554 5."), "{text}");
    assert!(text.contains("express"), "{text}");

    assert!(recorded(&milter, &mail).is_none());
    assert_eq!(submissions(&milter).len(), 0);

    // Without the refused option the company's De-Mail goes out; its non-ASCII tenant name
    // becomes encoded-words in From (folded over two lines).
    let mail = Mail::new("verwalter@hv.example", &["mieter@example.de-mail.de"]);
    let mut out = Outcome::empty();
    envelope(&mut conn, &mail, &mut out).await;
    let (actions, status) = out.eom.expect("end of message");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();
    let bytes = postfix_result(&mail, &actions);
    let parsed = mail_parser::MessageParser::default()
        .parse(&bytes[..])
        .unwrap();
    let from = parsed.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.name(), Some("Hausverwaltung Müller GmbH"));
    assert_eq!(from.address(), Some("info@demail.provider.example"));
    let private_id = added(&actions, "X-de-mail-private-id").unwrap();
    assert!(
        private_id.ends_with(".hausverwaltung-mueller-gmbh"),
        "{private_id}"
    );
    let record = recorded(&milter, &mail).expect("recorded");
    assert_eq!(record.content, demail_evidence::Digest::of(&bytes));
    milter.stop().await;
}
