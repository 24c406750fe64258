//! Who counts as the provider: only a pinned configuration, only the pinned TLS client
//! certificate (by the names Postfix reports), only a pinned qualified seal. A citizen with a
//! certificate from the gateway's CA and a qualified signature card of his own gets nothing.

mod common;
mod inbound_support;

use common::added;
use inbound_support::*;
use indymilter_test::Status;

const TAG: &str = "[De-Mail absenderbestätigt]";

/// The provider's mail is treated as untrusted: vocabulary renamed, no verdict, no tag.
fn assert_untrusted(actions: &indymilter_test::EomActions, status: &Status) {
    assert_eq!(*status, Status::Accept);
    assert!(
        added(actions, "X-Untrusted-de-mail-authoritative").is_some(),
        "{actions:?}"
    );
    assert!(added(actions, "X-DeMail-Verified").is_none(), "{actions:?}");
    assert_eq!(new_subject(actions), None);
}

#[tokio::test]
async fn only_the_pinned_client_certificate_names_are_the_provider() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    let mail = mail_from_raw(&signed, "demail-in", "x@provider.example", ACCOUNT);
    for (subject, issuer) in [
        // A certificate of the gateway's CA, or the right name from another CA.
        ("buerger.example", PROVIDER_CLIENT_ISSUER),
        (PROVIDER_CLIENT, "Some Public CA"),
        (PROVIDER_CLIENT, SERVER_CA),
        ("GW.PROVIDER.EXAMPLE", PROVIDER_CLIENT_ISSUER),
        (&format!("{PROVIDER_CLIENT} "), PROVIDER_CLIENT_ISSUER),
        ("", PROVIDER_CLIENT_ISSUER),
    ] {
        let (actions, status) = deliver_as(&milter, &mail, Some((subject, issuer)))
            .await
            .eom
            .expect("end");
        assert_untrusted(&actions, &status);
    }
    // The pinned certificate: verified and tagged.
    let (actions, _) = deliver_as(
        &milter,
        &mail,
        Some((PROVIDER_CLIENT, PROVIDER_CLIENT_ISSUER)),
    )
    .await
    .eom
    .expect("end");
    assert!(
        added(&actions, "X-DeMail-Verified")
            .unwrap()
            .starts_with("pass;")
    );
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some(format!("{TAG} Widerspruch").as_str())
    );
    milter.stop().await;
}

#[tokio::test]
async fn an_unpinned_configuration_trusts_nobody_on_the_provider_service() {
    let pki = ProviderPki::new();
    // The sample's old shape: no client CA, no client certificates, no seals.
    let milter = pki
        .milter_unpinned("provider_client_fingerprints = []\n")
        .await;
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    let mail = mail_from_raw(&signed, "demail-in", "x@provider.example", ACCOUNT);
    let (actions, status) = deliver(&milter, &mail, Some(PROVIDER_CLIENT))
        .await
        .eom
        .expect("end");
    assert_untrusted(&actions, &status);
    milter.stop().await;
}

#[tokio::test]
async fn a_qualified_signature_by_anyone_but_the_pinned_seal_counts_for_nothing() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    // A citizen's own qualified card under the same listed CA, and a non-qualified one.
    for signer in [&pki.other_qualified, &pki.plain] {
        let signed = sign(&inbound_demail(true, "Widerspruch"), signer);
        let (actions, status) = from_provider(&milter, &signed).await;
        assert_eq!(status, Status::Accept);
        let verified = added(&actions, "X-DeMail-Verified").expect("verdict");
        assert!(verified.starts_with("fail;"), "{verified}");
        assert!(verified.contains("qualified=no"), "{verified}");
        assert_eq!(new_subject(&actions), None, "{verified}");
    }
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.other_qualified);
    let (actions, _) = from_provider(&milter, &signed).await;
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(
        verified.contains("CHAIN_CONSTRAINTS_FAILURE") && verified.contains("provider_signers"),
        "{verified}"
    );
    milter.stop().await;
}
