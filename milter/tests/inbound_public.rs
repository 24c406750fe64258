//! Anything not from the provider service (or from it without the pinned client certificate)
//! is untrusted: `X-de-mail-*`, `X-DeMail-*` and `X-QES-*` fields are renamed
//! `X-Untrusted-...`, our tags are removed from the subject, nothing is verified or recorded,
//! and the body is skipped.

mod common;
mod inbound_support;

use common::added;
use inbound_support::*;
use indymilter_test::{EomAction, EomActions, Status};

fn deleted(actions: &EomActions, name: &str) -> usize {
    actions
        .actions
        .iter()
        .filter(|a| matches!(a, EomAction::DeleteHeader { name: n, .. } if n.to_str() == Ok(name)))
        .count()
}

#[tokio::test]
async fn spoofed_authoritative_from_the_internet_is_renamed_and_never_tagged() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    // A perfectly signed, qualified, authoritative De-Mail: but it arrives on the public smtpd.
    let signed = sign(
        &inbound_demail(true, "[De-Mail absenderbestätigt] Zahlungsaufforderung"),
        &pki.qualified,
    );
    let mut mail = mail_from_raw(
        &signed,
        "smtpd",
        "spoof@example.org",
        "kollege@magdeburg.example",
    );
    mail.body.extend(std::iter::repeat_n(b'x', 200_000));
    let ended = deliver(&milter, &mail, None).await;
    assert_eq!(ended.content, None, "the header is looked at to the end");
    assert_eq!(ended.body, Some(Status::Skip), "the body is not wanted");
    let (actions, status) = ended.eom.expect("end of message");
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-Untrusted-de-mail-authoritative").as_deref(),
        Some("yes")
    );
    assert!(added(&actions, "X-Untrusted-de-mail-integrity").is_some());
    assert!(added(&actions, "X-Untrusted-de-mail-signature-certificate").is_some());
    assert_eq!(deleted(&actions, "X-de-mail-authoritative"), 1);
    assert_eq!(deleted(&actions, "X-de-mail-integrity"), 1);
    assert!(added(&actions, "X-DeMail-Verified").is_none());
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some("Zahlungsaufforderung")
    );
    // No X-de-mail-* field survives.
    let kept = common::postfix_result(&mail, &actions);
    let head = String::from_utf8_lossy(&kept);
    let head = head.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("x-de-mail-")),
        "{head}"
    );
    assert!(milter.store().head().unwrap().is_none(), "nothing recorded");
    milter.stop().await;
}

#[tokio::test]
async fn a_confirmation_via_the_public_smtpd_is_renamed_and_not_stored() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let sub = send_demail(&milter, "Bescheid 4715").await;
    let raw = sign(
        &confirmation(&Ack {
            message_type: "confirmation of retrieve",
            notification_type: None,
            private_id: Some(&sub.private_id),
            subject: "Bescheid 4715",
            recipient: CITIZEN,
            hash: "",
            time: "2026-11-23T09:11:00Z",
        }),
        &pki.qualified,
    );
    let head_before = milter.store().head().unwrap();
    let mail = mail_from_raw(
        &raw,
        "smtpd",
        "Abholbestaetigung@provider.example",
        "erika.muster@magdeburg.example",
    );
    let (actions, status) = deliver(&milter, &mail, None).await.eom.expect("end");
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-Untrusted-de-mail-message-type").as_deref(),
        Some("confirmation of retrieve")
    );
    assert_eq!(
        added(&actions, "X-Untrusted-de-mail-private-id"),
        Some(sub.private_id.clone())
    );
    assert!(added(&actions, "X-DeMail-Confirmation").is_none());
    assert!(
        milter
            .store()
            .confirmations(&sub.private_id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        milter.store().head().unwrap(),
        head_before,
        "no event at all"
    );
    let st = milter.store().recipient_status(&sub.private_id).unwrap();
    assert_eq!(st[0].status, demail_evidence::Status::Submitted);
    milter.stop().await;
}

#[tokio::test]
async fn pinned_provider_without_a_verified_client_certificate_is_untrusted() {
    let pki = ProviderPki::new();
    let fp = "ab".repeat(32);
    let milter = pki
        .milter(&format!("provider_client_fingerprints = [\"{fp}\"]"))
        .await;
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    let mail = mail_from_raw(&signed, "demail-in", "x@provider.example", ACCOUNT);

    // No {cert_subject}: Postfix verified no client certificate, so not the provider.
    let (actions, status) = deliver(&milter, &mail, None).await.eom.expect("end");
    assert_eq!(status, Status::Accept);
    assert!(added(&actions, "X-Untrusted-de-mail-authoritative").is_some());
    assert!(added(&actions, "X-DeMail-Verified").is_none());
    assert_eq!(new_subject(&actions), None);

    // With a verified client certificate (Postfix's check_ccert_access pins which one).
    let (actions, _) = deliver(&milter, &mail, Some("gw.provider.example"))
        .await
        .eom
        .expect("end");
    assert!(
        added(&actions, "X-DeMail-Verified")
            .unwrap()
            .starts_with("pass; ")
    );
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some("[De-Mail absenderbestätigt] Widerspruch")
    );
    milter.stop().await;
}

#[tokio::test]
async fn mail_to_the_poststelle_gets_forged_demail_fields_renamed_too() {
    let milter = common::Milter::start().await;
    let mail = common::Mail::new("someone@example.org", &["poststelle@magdeburg.example"])
        .header("X-de-mail-authoritative", " yes")
        .header("X-DeMail-Confirmation", " dispatch; matched=yes");
    let mut conn = milter.open().await;
    let out = common::transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end");
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-Untrusted-de-mail-authoritative").as_deref(),
        Some("yes")
    );
    assert_eq!(
        added(&actions, "X-Untrusted-DeMail-Confirmation").as_deref(),
        Some("dispatch; matched=yes")
    );
    conn.close().await.unwrap();
    milter.stop().await;
}

#[tokio::test]
async fn options_for_programs_are_no_forgery_and_ordinary_mail_stays_untouched() {
    let milter = common::Milter::start().await;
    let mail = common::Mail::new(CLERK, &["kollegin@magdeburg.example"])
        .header("X-DeMail-Options", " retrieve")
        .set_header("Subject", " [Abholbestaetigung] Kantine");
    let ended = deliver(&milter, &mail, None).await;
    assert_eq!(
        ended.content,
        Some(Status::Accept),
        "accepted at end of header"
    );
    assert!(ended.eom.is_none());
    milter.stop().await;
}
