//! Nobody but the milter puts a tag of ours in front of a clerk: on ordinary inbound mail and
//! on the provider's traffic, a look-alike of any configured tag (zero-width or bidi
//! characters, NFD, NBSP, other case, fullwidth brackets, after `AW: `, in an encoded-word) is
//! removed and a second `Subject` renamed `X-Untrusted-Subject`; ordinary mail carrying either
//! is not accepted at end of header. (The poststelle's cases are in `poststelle.rs`.)

mod common;
mod inbound_support;

use common::{Mail, added, postfix_result};
use demail_policy::Tags;
use inbound_support::*;
use indymilter_test::Status;

fn tags() -> Tags {
    Tags::default()
}

/// Raw `Subject` values (after the colon) a forger writes, and what the clerk sees instead.
const FORGED: &[(&str, &str)] = &[
    (" [QES gültig] Antrag", "Antrag"),
    (" [QES g\u{200b}ültig] Antrag", "Antrag"),
    (" \u{200f}[QES gültig]\u{200e} Antrag", "Antrag"),
    (" \u{202e}[QES gültig]\u{202c} Antrag", "Antrag"),
    (" [QES gu\u{308}ltig] Antrag", "Antrag"),
    (" [QES\u{a0}gültig] Antrag", "Antrag"),
    (" [qes GÜLTIG] Antrag", "Antrag"),
    (" AW: [QES gültig] Antrag", "AW: Antrag"),
    (" Re: Antrag [Signatur  unbestimmt]", "Re: Antrag"),
    (" \u{ff3b}QES gültig\u{ff3d} Antrag", "Antrag"),
    (" =?UTF-8?Q?[QES_g=C3=BCltig]?= Antrag", "Antrag"),
    (" =?UTF-8?B?W1FFUyBnw7xsdGlnXQ==?= Antrag", "Antrag"),
    (" [QES gültig: Max Mustermann] Antrag", "Antrag"),
    (" [De-Mail absenderbestaetigt] Mahnung", "Mahnung"),
    (" Mahnung [DeMail Absenderbestätigt]", "Mahnung"),
];

fn subjects(delivered: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(delivered)
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .map(str::to_string)
        .collect()
}

fn ordinary(subject: &str) -> Mail {
    let mut mail = Mail::new("forger@example.org", &["kollege@magdeburg.example"])
        .set_header("Subject", subject);
    mail.daemon = "smtpd".into();
    mail
}

#[tokio::test]
async fn ordinary_mail_with_a_look_alike_tag_is_held_to_the_end_and_cleaned() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    for (subject, want) in FORGED {
        let mail = ordinary(subject);
        let ended = deliver(&milter, &mail, None).await;
        assert_eq!(
            ended.content, None,
            "not accepted at end of header: {subject:?}"
        );
        let (actions, status) = ended.eom.expect("end of message");
        assert_eq!(status, Status::Accept);
        let shown = new_subject(&actions).unwrap_or_else(|| panic!("unchanged: {subject:?}"));
        assert_eq!(&shown, want, "{subject:?}");
        assert_eq!(
            tags().subject(&shown, None),
            None,
            "still a look-alike: {shown:?}"
        );
        assert_eq!(subjects(&postfix_result(&mail, &actions)).len(), 1);
    }
    // Without anything to neutralise, ordinary mail is still accepted at end of header.
    for subject in [
        " Antrag",
        " AW: Gültigkeit der QES",
        " Über Straße und Gebühr",
    ] {
        let ended = deliver(&milter, &ordinary(subject), None).await;
        assert_eq!(ended.content, Some(Status::Accept), "{subject:?}");
    }
    milter.stop().await;
}

#[tokio::test]
async fn ordinary_mail_keeps_exactly_one_subject() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    for (first, second) in [
        (" Antrag", " [QES gültig] Antrag"),
        (" Antrag", " Antrag"),
        (
            " [QES gültig] Antrag",
            " [De-Mail absenderbestätigt] Antrag",
        ),
    ] {
        let mail = ordinary(first).header("SUBJECT", second);
        let ended = deliver(&milter, &mail, None).await;
        assert_eq!(ended.content, None, "a second Subject is held: {second:?}");
        let (actions, _) = ended.eom.expect("end of message");
        assert_eq!(
            added(&actions, "X-Untrusted-SUBJECT").as_deref(),
            Some(second.trim_start())
        );
        let delivered = postfix_result(&mail, &actions);
        let kept = subjects(&delivered);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0], "Subject: Antrag", "{first:?} {second:?}");
    }
    milter.stop().await;
}

#[tokio::test]
async fn provider_traffic_loses_look_alikes_unless_the_tag_is_earned() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    // Not authoritative, yet the sender wrote the tag: removed, in every spelling.
    for (subject, want) in FORGED {
        let signed = sign(&inbound_demail(false, subject.trim_start()), &pki.qualified);
        let (actions, status) = from_provider(&milter, &signed).await;
        assert_eq!(status, Status::Accept);
        assert!(
            added(&actions, "X-DeMail-Verified")
                .unwrap()
                .starts_with("pass;")
        );
        assert_eq!(new_subject(&actions).as_deref(), Some(*want), "{subject:?}");
    }
    // Earned: our tag in front of the cleaned subject, once.
    let signed = sign(
        &inbound_demail(
            true,
            "AW: [De-Mail absenderbest\u{e4}tigt\u{200b}] Widerspruch",
        ),
        &pki.qualified,
    );
    let (actions, _) = from_provider(&milter, &signed).await;
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some("[De-Mail absenderbestätigt] AW: Widerspruch")
    );
    // A Subject added on the way after the provider signed: renamed, the tag goes on the first.
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    let text = String::from_utf8(signed).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let raw = format!("{head}\r\nSubject: [QES gültig] Zahlung sofort\r\n\r\n{body}");
    let mail = mail_from_raw(
        raw.as_bytes(),
        "demail-in",
        "Versandbestaetigung@provider.example",
        ACCOUNT,
    );
    let (actions, _) = deliver(&milter, &mail, Some("gw.provider.example"))
        .await
        .eom
        .expect("end of message");
    assert_eq!(
        added(&actions, "X-Untrusted-Subject").as_deref(),
        Some("[QES gültig] Zahlung sofort")
    );
    let kept = subjects(&postfix_result(&mail, &actions));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some("[De-Mail absenderbestätigt] Widerspruch")
    );
    milter.stop().await;
}
