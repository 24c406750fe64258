//! Postfix tempfailed after the milter recorded the evidence (say the milter was killed before
//! it answered): the client sends the same message again. The retry must yield the same
//! record (same private id, same generated Message-ID and Date, same bytes), not a second one.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn retried_transaction_reuses_the_record() {
    let milter = Milter::start().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    )
    .without_header("Message-ID")
    .without_header("Date")
    .set_header("Subject", " [Eingangsbestaetigung] Anhoerung");

    let mut first = milter.open().await;
    let out = transact(&mut first, &mail).await;
    let (a1, s1) = out.eom.expect("first attempt reaches end of message");
    assert_eq!(s1, Status::Accept);
    first.close().await.unwrap();

    // Let a second wall-clock second pass, so a fresh Date would differ.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let mut retry = mail.clone();
    retry.queue_id = "5AbC9876R".into();
    let mut second = milter.open().await;
    let out = transact(&mut second, &retry).await;
    let (a2, s2) = out.eom.expect("retry reaches end of message");
    assert_eq!(s2, Status::Accept);
    second.close().await.unwrap();

    for field in ["X-de-mail-private-id", "Message-ID", "Date"] {
        let v1 = added(&a1, field).unwrap_or_else(|| panic!("{field} added"));
        assert_eq!(
            Some(v1),
            added(&a2, field),
            "{field} differs between attempts"
        );
    }
    let bytes1 = postfix_result(&mail, &a1);
    assert_eq!(bytes1, postfix_result(&retry, &a2), "the same bytes leave");

    let record = recorded(&milter, &mail).expect("recorded");
    assert_eq!(
        Some(record.private_id.clone()),
        added(&a1, "X-de-mail-private-id")
    );
    assert_eq!(record.content, demail_evidence::Digest::of(&bytes1));
    assert_eq!(
        record.queue_id, "4XyZ1234Q",
        "the first attempt's record stands"
    );
    assert_eq!(record.options, vec!["dispatch", "receipt"]);
    assert_eq!(submissions(&milter).len(), 1, "one submission, not two");

    // A different message from the same clerk is a new submission.
    let other = mail
        .clone()
        .set_header("Subject", " Anhoerung, zweiter Teil");
    let mut conn = milter.open().await;
    let out = transact(&mut conn, &other).await;
    let (a3, _) = out.eom.expect("end of message");
    assert_ne!(
        added(&a3, "X-de-mail-private-id"),
        added(&a1, "X-de-mail-private-id")
    );
    conn.close().await.unwrap();
    assert_eq!(submissions(&milter).len(), 2);
    milter.stop().await;
}

/// The same bytes to other (Bcc) recipients, from another sender or under another login are
/// other submissions, each with its own record; only the same envelope is a retry.
#[tokio::test]
async fn the_same_bytes_to_other_recipients_are_recorded_for_them() {
    let milter = Milter::start().await;
    let mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    )
    .set_header("Subject", " Einladung");
    let send = |m: Mail| {
        let milter = &milter;
        async move {
            let mut conn = milter.open().await;
            let out = transact(&mut conn, &m).await;
            conn.close().await.unwrap();
            let (actions, status) = out.eom.expect("end of message");
            assert_eq!(status, Status::Accept);
            added(&actions, "X-de-mail-private-id").expect("private id")
        }
    };
    let first = send(mail.clone()).await;
    let mut bcc = mail.clone();
    bcc.rcpts = vec!["nachbarin@example.de-mail.de".into()];
    let mut both = mail.clone();
    both.rcpts.push("nachbarin@example.de-mail.de".into());
    let mut colleague = mail.clone();
    colleague.sender = "max.beispiel@magdeburg.example".into();
    let mut login = mail.clone();
    login.sasl = Some("erika".into());
    let mut ids = vec![first.clone()];
    for other in [bcc.clone(), both, colleague, login] {
        let id = send(other.clone()).await;
        assert!(!ids.contains(&id), "{:?} reused {id}", other.rcpts);
        ids.push(id);
        assert!(
            recorded(&milter, &other).is_some(),
            "recorded under its envelope"
        );
    }
    // The very same envelope again (recipients in another order too) is a retry.
    assert_eq!(send(mail.clone()).await, first);
    let mut reordered = mail.clone();
    reordered.rcpts = vec![
        "nachbarin@example.de-mail.de".into(),
        "buerger@example.de-mail.de".into(),
    ];
    assert_eq!(send(reordered).await, ids[2]);
    let subs = submissions(&milter);
    assert_eq!(subs.len(), 5, "{subs:#?}");
    let to_bcc = subs.iter().find(|s| s.private_id == ids[1]).unwrap();
    assert_eq!(
        to_bcc.recipients,
        vec!["nachbarin@example.de-mail.de".to_string()]
    );
    milter.stop().await;
}
