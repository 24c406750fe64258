//! An authorised clerk sends a De-Mail asking for an Abholbestätigung in the subject: the tag
//! is removed, the option fields and the private id are set, the sender becomes the account,
//! forged provider fields and a stray Reply-To go, and the evidence holds exactly the bytes
//! Postfix will send.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn authorised_clerk_with_retrieve_tag() {
    let milter = Milter::start().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    )
    .without_header("Date")
    .set_header(
        "Subject",
        " =?UTF-8?Q?[Abholbest=C3=A4tigung]_Bescheid_=C3=BCber?=\n =?UTF-8?Q?_Wohngeld?=",
    )
    .header("Reply-To", " sekretariat@magdeburg.example")
    .header("X-de-mail-authoritative", " yes")
    .header("X-DE-MAIL-PRIVAT-ID", " forged")
    .header("Received", " from laptop (laptop [10.0.0.5]) by client")
    .header("X-Mailer", "\tOutlook 16.0");

    let mut conn = milter.open().await;
    let out = transact(&mut conn, &mail).await;
    assert_eq!(out.rcpts, vec![Status::Continue]);
    assert_eq!(out.data, Some(Status::Continue));
    let (actions, status) = out.eom.expect("end of message reached");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();

    assert!(actions.has_change_sender("<info@magdeburg.de-mail.de>", None));
    assert!(actions.has_change_header(
        "From",
        1,
        " \"Landeshauptstadt Magdeburg\" <info@magdeburg.de-mail.de>"
    ));
    // The subject tag is gone; the rest is re-encoded (non-ASCII).
    let subject = actions
        .actions
        .iter()
        .find_map(|a| match a {
            indymilter_test::EomAction::ChangeHeader {
                name,
                index: 1,
                value,
            } if name.to_bytes() == b"Subject" => Some(value.to_string_lossy().into_owned()),
            _ => None,
        })
        .expect("subject changed");
    assert!(subject.starts_with(" =?UTF-8?B?"), "{subject}");
    let raw = format!("Subject:{}\r\n\r\n", subject.replace('\n', "\r\n"));
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Bescheid über Wohngeld"));

    // Account defaults (dispatch, receipt) plus the tag (retrieve).
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-dispatch").as_deref(),
        Some("yes")
    );
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-receipt").as_deref(),
        Some("yes")
    );
    assert_eq!(
        added(&actions, "X-de-mail-confirmation-of-retrieve").as_deref(),
        Some("yes")
    );
    assert_eq!(
        added(&actions, "X-de-mail-authoritative").as_deref(),
        Some("no")
    );
    assert_eq!(added(&actions, "X-de-mail-private").as_deref(), Some("no"));
    let private_id = added(&actions, "X-de-mail-private-id").expect("private id");
    // Postfix routes the handled De-Mail to the provider by this field (milter_header_checks).
    assert_eq!(
        added(&actions, "X-DeMail-Route"),
        Some(format!("demail-send {private_id}"))
    );
    let (ulid, slug) = private_id.split_once('.').expect("ULID.slug");
    assert_eq!(ulid.len(), 26);
    assert!(ulid.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(slug, "landeshauptstadt-magdeburg");

    // Forged provider fields and the stray Reply-To are deleted; the clerk's Message-ID stays,
    // the missing Date is added.
    assert!(actions.has_delete_header("X-de-mail-authoritative", 1));
    assert!(actions.has_delete_header("X-DE-MAIL-PRIVAT-ID", 1));
    assert!(actions.has_delete_header("Reply-To", 1));
    assert!(added(&actions, "Message-ID").is_none());
    let date = added(&actions, "Date").expect("Date added");
    assert!(
        mail_parser::MessageParser::default()
            .parse(format!("Date: {date}\r\n\r\n").as_bytes())
            .and_then(|m| m.date().cloned())
            .is_some()
    );

    // The record: what Postfix will send after these changes, byte for byte.
    let expected = postfix_result(&mail, &actions);
    let text = String::from_utf8_lossy(&expected);
    assert!(!text.contains("Received:"), "{text}");
    assert!(text.contains("X-Mailer:\tOutlook 16.0\r\n"), "{text}");
    let record = recorded(&milter, &mail).expect("submission recorded");
    assert_eq!(record.private_id, private_id);
    assert_eq!(record.content, demail_evidence::Digest::of(&expected));
    assert_eq!(record.size, expected.len() as u64);
    assert_eq!(milter.store().read_blob(&record.content).unwrap(), expected);
    assert_eq!(record.tenant, "Landeshauptstadt Magdeburg");
    assert_eq!(record.account, "info@magdeburg.de-mail.de");
    assert_eq!(record.clerk, "erika.muster@magdeburg.example");
    assert_eq!(
        record.recipients,
        vec!["buerger@example.de-mail.de".to_string()]
    );
    assert_eq!(record.subject, "Bescheid über Wohngeld");
    assert_eq!(record.message_id, "<test-1@client.magdeburg.example>");
    assert_eq!(record.queue_id, "4XyZ1234Q");
    assert_eq!(record.options, vec!["dispatch", "receipt", "retrieve"]);

    milter.stop().await;
}
