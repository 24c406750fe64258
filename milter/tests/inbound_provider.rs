//! De-Mail from the provider service: `X-de-mail-integrity` verified against the imported
//! trusted list, `X-DeMail-Verified` added, and the authoritative subject tag only for a
//! qualified signature that verifies and covers `X-de-mail-authoritative: yes`.

mod common;
mod inbound_support;

use common::added;
use inbound_support::*;
use indymilter_test::Status;

const TAG: &str = "[De-Mail absenderbestätigt]";

#[tokio::test]
async fn authoritative_and_qualified_gets_the_tag_and_pass() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    let (actions, status) = from_provider(&milter, &signed).await;
    assert_eq!(status, Status::Accept);
    let verified = added(&actions, "X-DeMail-Verified").expect("verified field");
    assert!(
        verified.starts_with("pass; signer=\"CN=De-Mail Provider Signing"),
        "{verified}"
    );
    assert!(verified.ends_with("; qualified=yes"), "{verified}");
    assert_eq!(
        new_subject(&actions).as_deref(),
        Some(format!("{TAG} Widerspruch").as_str())
    );
    // Nothing is recorded for an ordinary inbound De-Mail.
    assert!(milter.store().head().unwrap().is_none());
    milter.stop().await;
}

#[tokio::test]
async fn a_bad_signature_fails_and_gets_no_tag() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let signed = sign(&inbound_demail(true, "Widerspruch"), &pki.qualified);
    // One changed character in the body after signing.
    let text = String::from_utf8(signed).unwrap();
    let forged = text.replace("widerspreche", "widersprache");
    let (actions, status) = from_provider(&milter, forged.as_bytes()).await;
    assert_eq!(status, Status::Accept);
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(
        verified.starts_with("fail; signer=\"CN=De-Mail Provider Signing"),
        "{verified}"
    );
    assert!(
        verified.contains("qualified=no; reason=\"TOTAL_FAILED/HASH_FAILURE:"),
        "{verified}"
    );
    assert_eq!(new_subject(&actions), None);
    milter.stop().await;
}

#[tokio::test]
async fn not_qualified_or_not_covered_or_not_asked_gets_no_tag() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;

    // A valid signature under the listed CA, but the certificate is neither qualified nor
    // the pinned seal.
    let signed = sign(&inbound_demail(true, "A"), &pki.plain);
    let (actions, _) = from_provider(&milter, &signed).await;
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(verified.starts_with("fail; "), "{verified}");
    assert!(verified.contains("; qualified=no; "), "{verified}");
    assert!(verified.contains("provider_signers"), "{verified}");
    assert_eq!(new_subject(&actions), None);

    // Qualified, but X-de-mail-authoritative was added after signing: the signature still
    // verifies (the field is not in h=), yet it proves nothing about the option.
    let signed = sign(&inbound_demail(false, "B"), &pki.qualified);
    let text = String::from_utf8(signed).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let added_later = format!("{head}\r\nX-de-mail-authoritative: yes\r\n\r\n{body}");
    let (actions, _) = from_provider(&milter, added_later.as_bytes()).await;
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(verified.ends_with("; qualified=yes"), "{verified}");
    assert_eq!(new_subject(&actions), None);

    // Qualified and valid, not authoritative; a forged tag in the subject is removed.
    let signed = sign(&inbound_demail(false, &format!("{TAG} C")), &pki.qualified);
    let (actions, _) = from_provider(&milter, &signed).await;
    assert!(
        added(&actions, "X-DeMail-Verified")
            .unwrap()
            .starts_with("pass; ")
    );
    assert_eq!(new_subject(&actions).as_deref(), Some("C"));
    milter.stop().await;
}

#[tokio::test]
async fn unsigned_or_unanchored_is_none_or_fail_and_our_fields_are_renamed() {
    let pki = ProviderPki::new();
    let milter = pki.milter("").await;
    let unsigned = inbound_demail(true, "D").replace(
        "MIME-Version",
        "X-DeMail-Verified: pass; qualified=yes\r\nMIME-Version",
    );
    let (actions, status) = from_provider(&milter, unsigned.as_bytes()).await;
    assert_eq!(status, Status::Accept);
    assert_eq!(
        added(&actions, "X-DeMail-Verified").as_deref(),
        Some("none; qualified=no; reason=\"no X-de-mail-integrity field\"")
    );
    assert_eq!(
        added(&actions, "X-Untrusted-DeMail-Verified").as_deref(),
        Some("pass; qualified=yes")
    );
    assert_eq!(new_subject(&actions), None);

    // Signed by a certificate from a CA nobody trusts: indeterminate, reported as fail.
    let other = ProviderPki::new();
    let signed = sign(&inbound_demail(true, "E"), &other.qualified);
    let (actions, _) = from_provider(&milter, &signed).await;
    let verified = added(&actions, "X-DeMail-Verified").unwrap();
    assert!(
        verified.contains("reason=\"INDETERMINATE/NO_CERTIFICATE_CHAIN_FOUND"),
        "{verified}"
    );
    assert!(verified.starts_with("fail; "), "{verified}");
    assert_eq!(new_subject(&actions), None);
    milter.stop().await;
}
