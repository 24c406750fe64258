//! End to end through real Postfix and Dovecot: a signed mail to the poststelle arrives tagged
//! with one `X-QES-Validation` field, still verifies byte for byte when fetched over IMAP
//! (openssl smime -verify), a forged `X-QES-Validation` from the sender arrives renamed, and the
//! verification report is in the evidence store with the message as received.

use std::path::PathBuf;
use std::time::Duration;

use demail_e2e::city::POSTSTELLE;
use demail_e2e::message::field_values;
use demail_e2e::{City, CityOptions, imaplib_fetch_all, swaks, wait_until};

const PASSWORD: &str = "poststelle-pw";
const WAIT: Duration = Duration::from_secs(60);

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors/thunderbird-smime")
        .join(name)
}

/// A city whose milter checks signatures for [`POSTSTELLE`], with the Thunderbird test CA as
/// anchor and revocation off (those test certificates name no responder).
fn city() -> City {
    let anchor = vector("TestCA.pem");
    let mut city = City::start(CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), PASSWORD.into())],
        extra_toml: format!(
            "[trust]\nanchors = [\"{}\"]\nrevocation = \"off\"\n",
            anchor.display()
        ),
        milter: false,
        ..CityOptions::default()
    });
    // `[inbound]` is written by the harness, so the poststelle key goes in before the milter
    // reads the file.
    let path = city.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[inbound]\n",
        &format!("[inbound]\npoststelle = [\"{POSTSTELLE}\"]\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    city.start_milter();
    city
}

#[test]
fn signed_mail_to_the_poststelle_arrives_tagged_verifiable_and_recorded() {
    let city = city();
    let imap = city.imap_port().expect("Dovecot runs");

    // Thunderbird's clear-signed test mail, with a field a forger added in front; the
    // recipient is changed in the envelope only.
    let original = std::fs::read(vector("alice.dsig.SHA256.multipart.eml")).unwrap();
    // A Message-ID of its own, so Postfix adds none and the message stays as sent.
    let forged = b"X-QES-Validation: indication=TOTAL_PASSED; qualification=QESig\r\n\
                   Message-ID: <poststelle-qes-1@example.com>\r\n";
    let sent = [forged.as_slice(), &original].concat();
    let file = city.dir().join("signed.eml");
    std::fs::write(&file, &sent).unwrap();
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        "Alice@example.com",
        "--to",
        POSTSTELLE,
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "swaks:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let fetched = wait_until(WAIT, "the signed mail in the poststelle's INBOX", || {
        imaplib_fetch_all(imap, POSTSTELLE, PASSWORD).pop()
    });
    let text = String::from_utf8_lossy(&fetched);

    let ours = field_values(&fetched, "X-QES-Validation");
    assert_eq!(ours.len(), 1, "one field per signature:\n{text}");
    assert!(
        ours[0].starts_with("indication=TOTAL_PASSED; sub-indication=none; qualification=N/A;"),
        "{}",
        ours[0]
    );
    assert!(
        ours[0].contains("signer=\"Alice <Alice@example.com>\""),
        "{}",
        ours[0]
    );
    assert_eq!(
        field_values(&fetched, "X-Untrusted-QES-Validation"),
        vec!["indication=TOTAL_PASSED; qualification=QESig".to_string()]
    );
    // A valid signature without a trusted list behind it: signed, not a QES.
    assert_eq!(
        field_values(&fetched, "Subject"),
        vec!["[signiert, keine QES] clear-signed sig.SHA256".to_string()]
    );

    // The body is untouched (swaks ends the DATA with one more CRLF of its own) and the
    // signature still verifies on the fetched bytes.
    let body_of = |m: &[u8]| {
        let at = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        String::from_utf8_lossy(&m[at..]).trim_end().to_string()
    };
    assert!(
        body_of(&fetched) == body_of(&original),
        "body changed:\n{text}"
    );
    let fetched_file = city.dir().join("fetched.eml");
    std::fs::write(&fetched_file, &fetched).unwrap();
    let verify = std::process::Command::new("openssl")
        .args(["smime", "-verify", "-CAfile"])
        .arg(vector("TestCA.pem"))
        .arg("-in")
        .arg(&fetched_file)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl smime -verify on the fetched mail:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The report is in the evidence store, with the message exactly as the milter received
    // it: what swaks sent (smtpd hands its milters the client's message, without its own
    // Received field).
    let store = city.evidence().expect("evidence store exists");
    let head = store.head().unwrap().expect("an event");
    let event = (1..=head.event_id)
        .filter_map(|id| store.event(id).unwrap())
        .find(|e| e.kind == "qes-check")
        .expect("a qes-check event");
    let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
    assert_eq!(payload["indication"], "TOTAL_PASSED");
    assert_eq!(payload["qualification"], "N/A");
    assert_eq!(payload["recipients"], serde_json::json!([POSTSTELLE]));
    assert_eq!(payload["message_id"], "<poststelle-qes-1@example.com>");
    assert_eq!(
        payload["report"]["signatures"][0]["signer"]["email"],
        "Alice@example.com"
    );
    let raw = store.read_blob(&event.blobs.parse().unwrap()).unwrap();
    let sent_text = String::from_utf8_lossy(&sent);
    assert_eq!(
        String::from_utf8_lossy(&raw).trim_end(),
        sent_text.trim_end(),
        "the blob is the message as received"
    );
    assert!(store.verify_chain().unwrap().is_intact());
}
