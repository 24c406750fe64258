//! Confirmations and notifications from the provider service: the XML found by content,
//! matched to the sent De-Mail, stored raw with XML, PDF and verification report, and tagged
//! `X-DeMail-Confirmation`; only a verified one changes the recipient's status.

mod common;
mod inbound_support;

use common::added;
use demail_evidence::{ConfirmationKind, Digest, Status as RecipientStatus};
use inbound_support::*;
use indymilter_test::Status;

fn text_find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}

fn status_of(milter: &common::Milter, private_id: &str) -> RecipientStatus {
    let st = milter.store().recipient_status(private_id).unwrap();
    assert_eq!(st.len(), 1, "{st:?}");
    st[0].status
}

#[tokio::test]
async fn a_signed_versandbestaetigung_is_matched_stored_and_advances_the_status() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 4711").await;
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Submitted
    );
    let hash = dispatched_hash(&sent_bytes(&milter, &sub), &pki.qualified);

    let raw = sign(
        &confirmation(&Ack {
            message_type: "confirmation of dispatch",
            notification_type: None,
            private_id: Some(&sub.private_id),
            subject: "Bescheid 4711",
            recipient: CITIZEN,
            hash: &hash,
            time: "2026-11-23T09:05:00Z",
        }),
        &pki.qualified,
    );
    let (actions, status) = from_provider(&milter, &raw).await;
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-DeMail-Confirmation"),
        Some(format!(
            "dispatch; ref={}; recipient={CITIZEN}; matched=yes",
            sub.private_id
        ))
    );
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(
        verified.starts_with("pass; ") && verified.ends_with("qualified=yes"),
        "{verified}"
    );

    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Dispatched
    );
    let store = milter.store();
    let confirmations = store.confirmations(&sub.private_id).unwrap();
    assert_eq!(confirmations.len(), 1);
    let c = &confirmations[0].data;
    assert_eq!(c.kind, ConfirmationKind::Dispatch);
    assert!(c.trusted);
    assert_eq!(c.indication, "TOTAL_PASSED");
    assert_eq!(c.recipient, CITIZEN);
    assert_eq!(
        c.provider_message_id.as_deref(),
        Some("<orig-1@provider.example>")
    );
    assert_eq!(
        c.stated_time.unwrap().unix_timestamp(),
        time::macros::datetime!(2026-11-23 09:05:00 UTC).unix_timestamp()
    );
    // Exactly the bytes that arrived, the XML and the PDF, each a blob.
    assert_eq!(store.read_blob(&c.raw).unwrap(), raw);
    assert_eq!(c.raw, Digest::of(&raw));
    let xml = store.read_blob(&c.xml.expect("xml blob")).unwrap();
    assert!(xml.starts_with(b"<?xml") && String::from_utf8_lossy(&xml).contains(&hash));
    assert!(
        store
            .read_blob(&c.pdf.expect("pdf blob"))
            .unwrap()
            .starts_with(b"%PDF-1.4")
    );
    assert_eq!(c.report["verification"]["qualification"], "QESig");
    assert_eq!(c.report["match"]["method"], "private-id");
    assert_eq!(
        c.report["match"]["hash"], "body hash matches the sent message",
        "{:#}",
        c.report
    );
    assert_eq!(
        c.report["received"]["tls_client_subject"],
        "gw.provider.example"
    );

    // The provider retries the same message: recorded once.
    let (actions, status) = from_provider(&milter, &raw).await;
    assert_eq!(status, Status::Accept);
    assert!(
        added(&actions, "X-DeMail-Confirmation")
            .unwrap()
            .ends_with("matched=yes")
    );
    assert_eq!(store.confirmations(&sub.private_id).unwrap().len(), 1);
    milter.stop().await;
}

#[tokio::test]
async fn without_a_private_id_the_hash_matches() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let other = send_demail(&milter, "Bescheid 1").await;
    let sub = send_demail(&milter, "Bescheid 2").await;
    assert_ne!(other.private_id, sub.private_id);
    let hash = dispatched_hash(&sent_bytes(&milter, &sub), &pki.qualified);
    let raw = sign(
        &confirmation(&Ack {
            message_type: "confirmation of receipt",
            notification_type: None,
            private_id: None,
            subject: "Bescheid 2",
            recipient: CITIZEN,
            hash: &hash,
            time: "2026-11-23T09:06:00Z",
        }),
        &pki.qualified,
    );
    let (actions, _) = from_provider(&milter, &raw).await;
    assert_eq!(
        added(&actions, "X-DeMail-Confirmation"),
        Some(format!(
            "receipt; ref={}; recipient={CITIZEN}; matched=yes",
            sub.private_id
        ))
    );
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Received
    );
    assert_eq!(
        status_of(&milter, &other.private_id),
        RecipientStatus::Submitted
    );
    let c = &milter.store().confirmations(&sub.private_id).unwrap()[0].data;
    assert_eq!(c.report["match"]["method"], "hash");

    // A hash of other content matches nothing, even with the same subject.
    let wrong = dispatched_hash(&sent_bytes(&milter, &other), &pki.qualified);
    let raw = sign(
        &confirmation(&Ack {
            message_type: "confirmation of retrieve",
            notification_type: None,
            private_id: None,
            subject: "Bescheid 2",
            recipient: CITIZEN,
            hash: &wrong,
            time: "2026-11-23T09:07:00Z",
        }),
        &pki.qualified,
    );
    let (actions, _) = from_provider(&milter, &raw).await;
    assert_eq!(
        added(&actions, "X-DeMail-Confirmation").as_deref(),
        Some(format!("retrieve; recipient={CITIZEN}; matched=no").as_str())
    );
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Received
    );
    milter.stop().await;
}

#[tokio::test]
async fn a_forged_confirmation_is_kept_untrusted_and_changes_nothing() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 4712").await;
    let signed = sign(
        &confirmation(&Ack {
            message_type: "confirmation of retrieve",
            notification_type: None,
            private_id: Some(&sub.private_id),
            subject: "Bescheid 4712",
            recipient: CITIZEN,
            hash: "v=1; a=sha256/rsa; bh=AAAA; b=AAAA",
            time: "2026-11-23T09:08:00Z",
        }),
        &pki.qualified,
    );
    // The signature value altered: SIG_CRYPTO_FAILURE.
    let text = String::from_utf8(signed).unwrap();
    let mut forged = text.into_bytes();
    // The first base64 character of b= (the value may start after a fold).
    let b = (text_find(&forged, b" b=") + 3..forged.len())
        .find(|&i| forged[i].is_ascii_alphanumeric())
        .unwrap();
    forged[b] = if forged[b] == b'A' { b'B' } else { b'A' };

    let (actions, status) = from_provider(&milter, &forged).await;
    assert_eq!(status, Status::Accept);
    assert!(
        added(&actions, "X-DeMail-Verified")
            .unwrap()
            .starts_with("fail; ")
    );
    assert_eq!(
        added(&actions, "X-DeMail-Confirmation"),
        Some(format!(
            "retrieve; ref={}; recipient={CITIZEN}; matched=yes",
            sub.private_id
        ))
    );
    let store = milter.store();
    let c = &store.confirmations(&sub.private_id).unwrap()[0].data;
    assert!(!c.trusted);
    assert_eq!(c.indication, "TOTAL_FAILED");
    assert!(
        store.read_blob(&c.raw).unwrap() == forged,
        "the exact bytes that arrived are stored"
    );
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Submitted
    );
    milter.stop().await;
}

#[tokio::test]
async fn a_notification_fails_the_recipient() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 4713").await;
    let raw = sign(
        &confirmation(&Ack {
            message_type: "notification",
            notification_type: Some("unknown-recipient"),
            private_id: Some(&sub.private_id),
            subject: "Bescheid 4713",
            recipient: CITIZEN,
            hash: "",
            time: "2026-11-23T09:09:00Z",
        }),
        &pki.qualified,
    );
    let (actions, _) = from_provider(&milter, &raw).await;
    assert_eq!(
        added(&actions, "X-DeMail-Confirmation"),
        Some(format!(
            "notification; ref={}; recipient={CITIZEN}; matched=yes",
            sub.private_id
        ))
    );
    assert_eq!(status_of(&milter, &sub.private_id), RecipientStatus::Failed);
    let c = &milter.store().confirmations(&sub.private_id).unwrap()[0].data;
    assert_eq!(
        c.kind,
        ConfirmationKind::Notification("unknown-recipient".into())
    );
    assert_eq!(c.report["statement"]["root"], "Notification-Message");
    milter.stop().await;
}

#[tokio::test]
async fn evidence_only_discards_after_storing() {
    let pki = ProviderPki::new();
    let milter = pki
        .milter("deliver_confirmations = \"evidence-only\"")
        .await;
    let sub = send_demail(&milter, "Bescheid 4714").await;
    let raw = sign(
        &confirmation(&Ack {
            message_type: "confirmation of dispatch",
            notification_type: None,
            private_id: Some(&sub.private_id),
            subject: "Bescheid 4714",
            recipient: CITIZEN,
            hash: "",
            time: "2026-11-23T09:10:00Z",
        }),
        &pki.qualified,
    );
    let (actions, status) = from_provider(&milter, &raw).await;
    assert_eq!(status, Status::Discard);
    assert!(actions.actions.is_empty(), "{actions:?}");
    assert_eq!(
        status_of(&milter, &sub.private_id),
        RecipientStatus::Dispatched
    );
    assert_eq!(
        milter.store().confirmations(&sub.private_id).unwrap()[0]
            .data
            .raw,
        Digest::of(&raw)
    );

    // An ordinary inbound De-Mail is still delivered.
    let signed = sign(&inbound_demail(false, "Frage"), &pki.qualified);
    let (_, status) = from_provider(&milter, &signed).await;
    assert_eq!(status, Status::Accept);
    milter.stop().await;
}

#[tokio::test]
async fn an_unreadable_trust_setup_is_a_tempfail() {
    let pki = ProviderPki::new();
    std::fs::write(pki.dir.path().join("tl").join("broken.json"), b"{").unwrap();
    let milter = pki.milter("").await;
    // Who the provider is cannot be told: the provider's mail waits from MAIL on.
    let mut conn = milter.open().await;
    conn.macros(
        indymilter_test::MacroStage::Connect,
        [("{daemon_name}", "demail-in")],
    )
    .await
    .unwrap();
    let connect = conn
        .connect("gw.provider.example", [192, 0, 2, 77])
        .await
        .unwrap();
    assert!(common::goes_on(&connect), "{connect:?}");
    conn.macros(
        indymilter_test::MacroStage::Mail,
        [
            ("{cert_subject}", PROVIDER_CLIENT),
            ("{cert_issuer}", PROVIDER_CLIENT_ISSUER),
        ],
    )
    .await
    .unwrap();
    let status = conn.mail(["<x@provider.example>"]).await.unwrap();
    assert_eq!(status, Status::Tempfail { message: None });
    conn.close().await.unwrap();
    milter.stop().await;
}

#[tokio::test]
async fn a_confirmation_that_cannot_be_stored_is_a_tempfail() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    // The blob directory replaced by a regular file: no one (not even root) can write a blob.
    let blobs = milter.dir.path().join("evidence/blobs");
    let _ = std::fs::remove_dir_all(&blobs);
    std::fs::create_dir_all(blobs.parent().unwrap()).unwrap();
    std::fs::write(&blobs, b"a file").unwrap();
    for (message_type, notification_type) in [
        ("confirmation of dispatch", None),
        ("confirmation of receipt", None),
        ("notification", Some("unknown-recipient")),
    ] {
        let raw = sign(
            &confirmation(&Ack {
                message_type,
                notification_type,
                private_id: Some("01UNKNOWN.stadt"),
                subject: "Bescheid 4715",
                recipient: CITIZEN,
                hash: "",
                time: "2026-11-23T09:11:00Z",
            }),
            &pki.qualified,
        );
        let (actions, status) = from_provider(&milter, &raw).await;
        // Postfix keeps it and the provider retries: never delivered without its evidence.
        assert_eq!(status, Status::Tempfail { message: None }, "{message_type}");
        assert!(actions.actions.is_empty(), "{message_type}: {actions:?}");
    }
    // An inbound De-Mail that is no confirmation records nothing and is still delivered.
    let signed = sign(&inbound_demail(false, "Frage"), &pki.qualified);
    let (_, status) = from_provider(&milter, &signed).await;
    assert_eq!(status, Status::Accept);
    milter.stop().await;
}
