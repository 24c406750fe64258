//! A confirmation counts only when its integrity signature covers every header field the
//! decision reads, each occurs once, the header's private-id agrees with the signed XML, and
//! the sent De-Mail belongs to the account that received the confirmation.

mod common;
mod inbound_support;

use common::added;
use demail_evidence::Status as RecipientStatus;
use inbound_support::*;
use indymilter_test::Status;

fn status_of(milter: &common::Milter, private_id: &str) -> RecipientStatus {
    milter.store().recipient_status(private_id).unwrap()[0].status
}

/// The confirmations recorded for `private_id`: (trusted, binding problems).
fn recorded(milter: &common::Milter, private_id: &str) -> Vec<(bool, String)> {
    milter
        .store()
        .confirmations(private_id)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.data.trusted,
                c.data.report["binding_problems"].to_string(),
            )
        })
        .collect()
}

fn ack<'a>(message_type: &'a str, private_id: Option<&'a str>, subject: &'a str) -> Ack<'a> {
    Ack {
        message_type,
        notification_type: None,
        private_id,
        subject,
        recipient: CITIZEN,
        hash: "v=1; a=sha256/rsa; bh=AAAA; b=AAAA",
        time: "2026-11-23T09:05:00Z",
    }
}

#[tokio::test]
async fn fields_prepended_to_a_genuine_signed_message_count_for_nothing() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 5001").await;
    // A genuine, correctly signed inbound De-Mail: no message type or private-id of its own.
    let unsigned = inbound_demail(false, "Frage").replace("X-de-mail-message-type: normal\r\n", "");
    let genuine = String::from_utf8(sign(&unsigned, &pki.qualified)).unwrap();
    for prefix in [
        format!(
            "X-de-mail-message-type: notification\r\nX-de-mail-private-id: {}\r\n",
            sub.private_id
        ),
        format!(
            "X-de-mail-message-type: confirmation of retrieve\r\nX-de-mail-private-id: {}\r\n",
            sub.private_id
        ),
        format!(
            "X-de-mail-private-id: {}\r\nX-de-mail-message-type: Notification\r\n",
            sub.private_id
        ),
    ] {
        let relayed = format!("{prefix}{genuine}");
        let (actions, status) = from_provider(&milter, relayed.as_bytes()).await;
        assert_eq!(status, Status::Accept);
        // The signature itself still verifies (the prepended fields are not in h=)...
        assert!(
            added(&actions, "X-DeMail-Verified")
                .unwrap()
                .starts_with("pass; "),
            "{actions:?}"
        );
    }
    // ...but nothing it claims moved the De-Mail: it stays submitted, and the Zustellfiktion
    // is not lost to a forged "failed".
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Submitted
    );
    let kept = recorded(&milter, &sub.private_id);
    assert!(!kept.is_empty());
    for (trusted, problems) in kept {
        assert!(!trusted, "{problems}");
        assert!(
            problems.contains("not covered by the integrity signature"),
            "{problems}"
        );
    }
    milter.stop().await;
}

#[tokio::test]
async fn a_second_private_id_or_one_the_xml_contradicts_counts_for_nothing() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 5002").await;
    let other = send_demail(&milter, "Bescheid 5003").await;

    // Signed and covering its private-id, with a second one prepended on the way.
    let signed = String::from_utf8(sign(
        &confirmation(&ack(
            "confirmation of retrieve",
            Some(&sub.private_id),
            "Bescheid 5002",
        )),
        &pki.qualified,
    ))
    .unwrap();
    let twice = format!("X-de-mail-private-id: {}\r\n{signed}", other.private_id);
    from_provider(&milter, twice.as_bytes()).await;

    // Signed by the provider, but header and XML name different De-Mails.
    let xml_says_other = confirmation(&ack(
        "confirmation of retrieve",
        Some(&other.private_id),
        "Bescheid 5003",
    ))
    .replacen(
        &format!("X-de-mail-private-id: {}\r\n", other.private_id),
        &format!("X-de-mail-private-id: {}\r\n", sub.private_id),
        1,
    );
    from_provider(&milter, &sign(&xml_says_other, &pki.qualified)).await;

    for id in [&sub.private_id, &other.private_id] {
        assert_eq!(status_of(&milter, id), RecipientStatus::Submitted, "{id}");
        for (trusted, problems) in recorded(&milter, id) {
            assert!(!trusted, "{problems}");
        }
    }
    let all: Vec<String> = [&sub.private_id, &other.private_id]
        .iter()
        .flat_map(|id| recorded(&milter, id))
        .map(|(_, p)| p)
        .collect();
    assert!(all.iter().any(|p| p.contains("occurs 2 times")), "{all:?}");
    assert!(
        all.iter()
            .any(|p| p.contains("is not the one of the signed XML")),
        "{all:?}"
    );

    // The genuine confirmation still counts.
    let good = sign(
        &confirmation(&ack(
            "confirmation of retrieve",
            Some(&sub.private_id),
            "Bescheid 5002",
        )),
        &pki.qualified,
    );
    from_provider(&milter, &good).await;
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Retrieved
    );
    milter.stop().await;
}

#[tokio::test]
async fn a_confirmation_for_another_tenant_never_moves_this_tenants_de_mail() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    // Magdeburg sends; the confirmation arrives for the Hausverwaltung's account.
    let sub = send_demail(&milter, "Bescheid 5004").await;
    let other_account = "info@demail.provider.example";
    for private_id in [Some(sub.private_id.as_str()), None] {
        let raw = sign(
            &confirmation(&ack(
                "confirmation of retrieve",
                private_id,
                "Bescheid 5004",
            )),
            &pki.qualified,
        );
        let mut mail = mail_from_raw(
            &raw,
            "demail-in",
            "Versandbestaetigung@provider.example",
            other_account,
        );
        mail.queue_id = "IN9".into();
        let (actions, status) = deliver(&milter, &mail, Some(PROVIDER_CLIENT))
            .await
            .eom
            .expect("end");
        assert_eq!(status, Status::Accept);
        let note = added(&actions, "X-DeMail-Confirmation").unwrap();
        assert!(note.ends_with("matched=no"), "{note}");
    }
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Submitted
    );
    assert!(recorded(&milter, &sub.private_id).is_empty());
    milter.stop().await;
}
